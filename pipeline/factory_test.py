"""Unit tests of the pipeline definition (no component runs)."""

from __future__ import annotations

import json

import pytest

from mer_tfx import presets
from pipeline import configs
from pipeline import factory as pipeline_lib
from pipeline.run_config import run_config_from


def _config(tmp_path, **flags):
    """The run configuration of `mer pipeline` with these flags, on an empty dataset folder."""
    (tmp_path / "data").mkdir(exist_ok=True)
    return run_config_from({"data": str(tmp_path / "data"), "output": str(tmp_path / "out"),
                            **flags}, environ={})


def _thresholds(spec):
    """{metric: lower bound} of the thresholds, which must gate the overall slice only."""
    found = {}
    for metric in spec.metrics:
        for per_slice in metric.per_slice_thresholds:
            assert [list(s.feature_keys) for s in per_slice.slicing_specs] == [[]]
            found[metric.class_name] = per_slice.threshold.value_threshold.lower_bound.value
            assert per_slice.threshold.change_threshold.absolute.value == configs.CHANGE_THRESHOLD
    return found


def test_eval_config_gates_accuracy_and_f1_per_output():
    config = pipeline_lib.make_eval_config(accuracy_threshold=0.7, f1_threshold=0.65)
    (model_spec,) = config.model_specs
    assert model_spec.signature_name == "serving_examples"
    assert dict(model_spec.label_keys) == {"valence": "valence_high", "arousal": "arousal_high"}
    by_output = {tuple(spec.output_names): spec for spec in config.metrics_specs}
    assert set(by_output) == {("valence",), ("arousal",)}
    for spec in by_output.values():
        assert _thresholds(spec) == pytest.approx({"BinaryAccuracy": 0.7, "F1Score": 0.65})
    slices = [list(s.feature_keys) for s in config.slicing_specs]
    assert slices == [[], ["genre"]]


def test_create_pipeline_wires_every_component(tmp_path):
    pytest.importorskip("components.audio_example_gen.component")
    pipe = pipeline_lib.create_pipeline(_config(tmp_path, tune=True, max_ae_epochs=2))
    by_id = {c.id: c for c in pipe.components}
    assert set(by_id) == {
        "AudioExampleGen", "LogMelTransform", "StatisticsGen", "CuratedSchemaGen",
        "ExampleValidator", "Tuner", "Trainer",
        "latest_blessed_model_resolver", "Evaluator", "Pusher",
    }
    trainer = by_id["Trainer"]
    assert "hyperparameters" in trainer.inputs
    assert "model_blessing" in by_id["Pusher"].inputs
    custom_config = trainer.exec_properties["custom_config"]
    if isinstance(custom_config, str):  # TFX keeps it JSON-encoded
        custom_config = json.loads(custom_config)
    assert custom_config["overrides"] == {"ae_max_epochs": 2}
    assert presets.Preset.from_dict(custom_config["preset"]) == presets.default()
    # Named by module path: TFX packages nothing (no setuptools build, no test files).
    assert trainer.exec_properties["run_fn"] == pipeline_lib.TRAINER_RUN_FN
    assert not trainer.exec_properties.get("module_file")
    assert by_id["Tuner"].exec_properties["tuner_fn"] == pipeline_lib.TUNER_FN
    assert custom_config["code_version"] == pipeline_lib.training_code_version()
    no_tuner = pipeline_lib.create_pipeline(_config(tmp_path))
    assert "Tuner" not in [c.id for c in no_tuner.components]


def test_unlabeled_data_reaches_the_trainer_by_path(tmp_path):
    pytest.importorskip("components.audio_example_gen.component")
    folder = tmp_path / "unlabelled"
    folder.mkdir()
    pipe = pipeline_lib.create_pipeline(_config(tmp_path, unlabeled_data=str(folder)))
    trainer = {c.id: c for c in pipe.components}["Trainer"]
    custom_config = trainer.exec_properties["custom_config"]
    if isinstance(custom_config, str):
        custom_config = json.loads(custom_config)
    assert custom_config["unlabeled_data"] == str(folder.resolve())


def test_normalize_embeddings_flag_overrides_the_preset(tmp_path):
    pytest.importorskip("components.audio_example_gen.component")
    from pipeline.trainer_module import preset_from_config

    pipe = pipeline_lib.create_pipeline(
        _config(tmp_path, preset="4q-5s", normalize_embeddings=True, head_seeds=3))
    trainer = {c.id: c for c in pipe.components}["Trainer"]
    custom_config = trainer.exec_properties["custom_config"]
    if isinstance(custom_config, str):
        custom_config = json.loads(custom_config)
    assert custom_config["overrides"] == {"normalize_embeddings": True, "normalize_min_songs": 0,
                                          "head_seeds": 3}
    preset = preset_from_config(custom_config)
    assert preset.model.normalize_embeddings is True and preset.training.head_seeds == 3
