"""The Trainer's executor: TFX's generic Trainer that hands run_fn the examples' label information."""

from components.trainer.executor import LABEL_INFO_KEY, Executor, read_label_info

__all__ = ["LABEL_INFO_KEY", "Executor", "read_label_info"]
