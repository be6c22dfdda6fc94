"""TFX's generic Trainer executor, with what the examples artifact records in `custom_config`.

TFX 1.16's `FnArgs` carries the examples' file patterns but not the artifact, so a
`run_fn` could only find the artifact's files by walking up from a file pattern.
This executor reads them from the `examples` input artifact
(`components.artifact_files`) and adds them to `fn_args.custom_config`:

- `EXAMPLES_PRESET_KEY`: the preset the examples were made with (`preset.json`, as
  `Preset.to_dict()`): the Trainer trains with it;
- `LABEL_INFO_KEY`: `label_info.json` (thresholds, class counts), {} when absent.

Everything else is TFX's `GenericExecutor`. Wire it with
`Trainer(custom_executor_spec=executor_spec.ExecutorClassSpec(Executor))`.
"""

from __future__ import annotations

from typing import Any, Dict, List

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.components.trainer import fn_args_utils
from tfx.types import artifact_utils, standard_component_specs

from components import artifact_files

EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
LABEL_INFO_KEY = "label_info"
EXAMPLES_PRESET_KEY = "examples_preset"


class Executor(trainer_executor.GenericExecutor):
    """`GenericExecutor` whose `fn_args.custom_config` also holds `EXAMPLES_PRESET_KEY` and
    `LABEL_INFO_KEY`.

    Raises:
        ParameterError: the examples record no preset.
    """

    def _GetFnArgs(
        self,
        input_dict: Dict[str, List[types.Artifact]],
        output_dict: Dict[str, List[types.Artifact]],
        exec_properties: Dict[str, Any],
    ) -> fn_args_utils.FnArgs:
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        uri = artifact_utils.get_single_uri(input_dict[EXAMPLES_KEY])
        fn_args.custom_config = {
            **(fn_args.custom_config or {}),
            EXAMPLES_PRESET_KEY: artifact_files.read_preset(uri).to_dict(),
            LABEL_INFO_KEY: artifact_files.read_label_info(uri),
        }
        return fn_args
