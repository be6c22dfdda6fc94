"""`run_config_from`: the one configuration of `mer pipeline`, pipeline/local.py and the
Kubeflow runner, from flags and the same MER_* environment variables."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from mer_tfx import presets
from mer_tfx.errors import DatasetError, ParameterError
from pipeline import configs
from pipeline.run_config import run_config_from

CLUSTER = {"MER_PIPELINE_ROOT": "gs://b/tfx", "MER_DATA": "/gcs/b/4q",
           "MER_SERVING_DIR": "gs://b/serving"}


@pytest.fixture()
def data(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_the_environment_gives_what_the_flags_leave_out(tmp_path, data):
    environ = {"MER_PRESET": "4q-3s-small", "MER_DATA": str(data),
               "MER_OUTPUT": str(tmp_path / "out")}
    config = run_config_from(None, environ=environ)  # pipeline/local.py: no flags
    assert config.preset == presets.get("4q-3s-small")
    assert config.data_root == str(data.resolve())
    assert config.layout.output == (tmp_path / "out").resolve()
    assert config.pipeline_root == str(config.layout.pipeline_root)
    assert config.metadata_path == str(config.layout.metadata_path)
    assert config.serving_model_dir == str(config.layout.serving_base)
    # A flag wins over its variable; `mer pipeline --preset` hands over a parsed Preset.
    flagged = run_config_from(argparse.Namespace(preset=presets.get("4q-10s-small")),
                              environ=environ)
    assert flagged.preset == presets.get("4q-10s-small")
    assert run_config_from({"preset": "4q-5s"}, environ=environ).preset == presets.get("4q-5s")


def test_the_defaults(tmp_path, data):
    config = run_config_from({"data": str(data), "output": str(tmp_path / "out")}, environ={})
    assert config.preset == presets.default() and config.preset.name == presets.DEFAULT_NAME
    assert (config.accuracy_threshold, config.f1_threshold) == (
        configs.ACCURACY_THRESHOLD, configs.F1_THRESHOLD)
    assert config.overrides == {} and config.seed == 0 and config.enable_cache
    assert config.pipeline_name == configs.PIPELINE_NAME and config.ingest_workers is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1


def test_flags_become_the_trainers_preset_overrides(tmp_path, data):
    config = run_config_from(
        {"data": str(data), "output": str(tmp_path / "out"), "max_ae_epochs": 0,
         "max_head_epochs": 2, "normalize_embeddings": False, "head_seeds": 3,
         "accuracy_threshold": 0.0, "no_cache": True, "beam_arg": ["--a=1"]},
        environ={})
    # 0 is kept: it is the Trainer that refuses it, after the cached examples.
    assert config.overrides == {"ae_max_epochs": 0, "head_max_epochs": 2,
                                "normalize_embeddings": False, "normalize_min_songs": 0,
                                "head_seeds": 3}
    assert config.preset == presets.default()  # the examples' preset has no overrides
    assert config.accuracy_threshold == 0.0 and not config.enable_cache
    assert config.beam_pipeline_args == ("--a=1",)


@pytest.mark.parametrize("values, message", [
    ({"preset": "no-such"}, "no-such"),
    ({"preset": '{"name": '}, "Malformed preset JSON"),
    ({"head_seeds": 0}, "--head-seeds"),
    ({"clips_per_quadrant": 0}, "--clips-per-quadrant"),
])
def test_bad_values_fail_before_any_data_is_written(tmp_path, values, message):
    with pytest.raises(ParameterError, match=message):
        run_config_from({"output": str(tmp_path / "out"), **values}, environ={})
    assert not (tmp_path / "out").exists()


def test_a_missing_dataset_path_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        run_config_from(None, environ={"MER_DATA": str(tmp_path / "missing"),
                                       "MER_OUTPUT": str(tmp_path / "out")})


def test_a_cluster_run_reads_storage_uris_from_the_same_environment():
    config = run_config_from(None, environ={**CLUSTER, "MER_PRESET": "4q-5s"}, cluster=True)
    assert (config.pipeline_root, config.data_root, config.serving_model_dir) == (
        "gs://b/tfx", "/gcs/b/4q", "gs://b/serving")
    assert config.preset == presets.get("4q-5s")
    assert config.layout is None and config.metadata_path == "" and config.ingest_workers == 0
    with pytest.raises(ParameterError, match="missing --serving-dir"):
        run_config_from(None, environ={**CLUSTER, "MER_SERVING_DIR": ""}, cluster=True)
    with pytest.raises(ParameterError, match="--pipeline-root must be a storage URI"):
        run_config_from({"pipeline_root": "/srv/tfx"}, environ=CLUSTER, cluster=True)


def test_only_run_config_turns_a_preset_name_into_a_preset():
    # The pipeline resolves the preset once, in run_config_from; every component takes a
    # Preset or reads the one the ExampleGen recorded. (The Keras library's functions, e.g.
    # ConvAutoencoder.from_preset("4q-5s"), keep accepting names, as keras_hub's do.)
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    lookups = {"resolve", "get"}  # presets.default() parses nothing
    found = []
    for path in sorted([*root.glob("pipeline/*.py"), *root.glob("components/**/*.py")]):
        if path.name.endswith("_test.py") or path.name in {"conftest.py", "run_config.py"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in lookups
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id in {"presets", "presets_lib"}):
                found.append(f"{path.relative_to(root)}:{node.lineno} presets.{node.func.attr}")
    assert found == [], found
