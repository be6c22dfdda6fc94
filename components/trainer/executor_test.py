"""The Trainer executor hands run_fn the preset and the label information its examples record."""

import json

import pytest
from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components import artifact_files
from components.trainer import EXAMPLES_PRESET_KEY, LABEL_INFO_KEY, Executor
from mer_tfx import contract, presets
from mer_tfx.errors import ParameterError

PRESET = presets.get("4q-3s-small")


def _examples_dir(uri, *, preset=PRESET):
    """An examples folder with a train split and, unless `preset` is None, its preset."""
    (uri / "Split-train").mkdir(parents=True)
    if preset is not None:
        (uri / contract.PRESET_FILE).write_text(preset.to_json())
    return uri


def _fn_args(tmp_path, examples_uri):
    examples = standard_artifacts.Examples()
    examples.uri = str(examples_uri)
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    model_run = standard_artifacts.ModelRun()
    model_run.uri = str(tmp_path / "model_run")
    return Executor()._GetFnArgs(
        {"examples": [examples]},
        {"model": [model], "model_run": [model_run]},
        {
            "train_args": proto_utils.proto_to_json(trainer_pb2.TrainArgs(num_steps=0)),
            "eval_args": proto_utils.proto_to_json(trainer_pb2.EvalArgs(num_steps=0)),
            "custom_config": json.dumps({"seed": 3}),
        },
    )


def test_what_the_examples_artifact_records_reaches_custom_config(tmp_path):
    uri = _examples_dir(tmp_path / "examples")
    info = {"layout": "4q", "counts": {"examples": 12}}
    (uri / contract.LABEL_INFO_FILE).write_text(json.dumps(info))
    fn_args = _fn_args(tmp_path, uri)
    assert fn_args.custom_config == {"seed": 3, EXAMPLES_PRESET_KEY: PRESET.to_dict(),
                                     LABEL_INFO_KEY: info}
    # The rest is TFX's generic executor: file patterns of the train split, model folders.
    assert fn_args.train_files == [str(uri / "Split-train" / "*")]
    assert fn_args.serving_model_dir.startswith(str(tmp_path / "model"))


def test_an_artifact_without_label_info_gives_an_empty_dict(tmp_path):
    assert artifact_files.read_label_info(str(tmp_path)) == {}
    uri = _examples_dir(tmp_path / "examples")
    assert _fn_args(tmp_path, uri).custom_config[LABEL_INFO_KEY] == {}


def test_examples_without_a_recorded_preset_stop_the_trainer(tmp_path):
    uri = _examples_dir(tmp_path / "examples", preset=None)
    with pytest.raises(ParameterError, match="record no preset"):
        _fn_args(tmp_path, uri)
