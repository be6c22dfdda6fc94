"""The Trainer's executor: TFX's generic Trainer that hands run_fn what its examples record."""

from components.trainer.executor import EXAMPLES_PRESET_KEY, LABEL_INFO_KEY, Executor

__all__ = ["EXAMPLES_PRESET_KEY", "LABEL_INFO_KEY", "Executor"]
