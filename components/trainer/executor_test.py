"""The Trainer executor hands run_fn the label information of its examples artifact."""

import json

from tfx.proto import trainer_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components.trainer import LABEL_INFO_KEY, Executor, read_label_info
from mer_tfx import contract


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
            "custom_config": json.dumps({"preset": "small", "seed": 3}),
        },
    )


def test_label_info_of_the_examples_artifact_reaches_custom_config(tmp_path):
    uri = tmp_path / "examples"
    (uri / "Split-train").mkdir(parents=True)
    info = {"layout": "4q", "counts": {"examples": 12}}
    (uri / contract.LABEL_INFO_FILE).write_text(json.dumps(info))
    fn_args = _fn_args(tmp_path, uri)
    assert fn_args.custom_config == {"preset": "small", "seed": 3, LABEL_INFO_KEY: info}
    # The rest is TFX's generic executor: file patterns of the train split, model folders.
    assert fn_args.train_files == [str(uri / "Split-train" / "*")]
    assert fn_args.serving_model_dir.startswith(str(tmp_path / "model"))


def test_an_artifact_without_label_info_gives_an_empty_dict(tmp_path):
    assert read_label_info(str(tmp_path)) == {}
    assert _fn_args(tmp_path, tmp_path).custom_config[LABEL_INFO_KEY] == {}
