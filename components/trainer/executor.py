"""TFX's generic Trainer executor, with the examples' label information in `custom_config`.

TFX 1.16's `FnArgs` carries the examples' file patterns but not the artifact, so a
`run_fn` could only find the artifact's `label_info.json` (thresholds, class
counts) by walking up from a file pattern. This executor reads the file from the
`examples` input artifact and adds it to `fn_args.custom_config[LABEL_INFO_KEY]`
(an empty dict when the artifact holds none); everything else is TFX's
`GenericExecutor`. Wire it with
`Trainer(custom_executor_spec=executor_spec.ExecutorClassSpec(Executor))`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

from tfx import types
from tfx.components.trainer import executor as trainer_executor
from tfx.components.trainer import fn_args_utils
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs

from mer_tfx import contract

EXAMPLES_KEY = standard_component_specs.EXAMPLES_KEY
LABEL_INFO_KEY = "label_info"


def read_label_info(examples_uri: str) -> dict:
    """The examples artifact's `label_info.json` as a dict, or {} when it has none."""
    path = os.path.join(examples_uri, contract.LABEL_INFO_FILE)
    if not fileio.exists(path):
        return {}
    with fileio.open(path, "r") as handle:
        return json.load(handle)


class Executor(trainer_executor.GenericExecutor):
    """`GenericExecutor` whose `fn_args.custom_config` also holds `LABEL_INFO_KEY`."""

    def _GetFnArgs(
        self,
        input_dict: Dict[str, List[types.Artifact]],
        output_dict: Dict[str, List[types.Artifact]],
        exec_properties: Dict[str, Any],
    ) -> fn_args_utils.FnArgs:
        fn_args = super()._GetFnArgs(input_dict, output_dict, exec_properties)
        label_info = read_label_info(artifact_utils.get_single_uri(input_dict[EXAMPLES_KEY]))
        fn_args.custom_config = {**(fn_args.custom_config or {}), LABEL_INFO_KEY: label_info}
        return fn_args
