"""Unit tests of the Trainer module's data handling (no training)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mer_tfx import presets
from mer_tfx.errors import DatasetError, ParameterError
from pipeline import trainer_module
from pipeline.run_config import RunConfig


def _config(tmp_path, **changes) -> RunConfig:
    return RunConfig(preset=presets.default(), data_root=str(tmp_path / "data"),
                     pipeline_root=str(tmp_path / "root"), serving_model_dir=str(tmp_path / "s"),
                     metadata_path=str(tmp_path / "m.sqlite"), **changes)


def _write_examples(path, rows, preset):
    f = preset.features
    size = f.num_segments * f.num_frames * f.n_mels
    with tf.io.TFRecordWriter(str(path), options="GZIP") as writer:
        for i, (valence, arousal) in enumerate(rows):
            feature = {
                "log_mel": tf.train.Feature(
                    float_list=tf.train.FloatList(value=np.full(size, i, np.float32))
                ),
                "song_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[f"s{i}".encode()])),
                "valence_high": tf.train.Feature(int64_list=tf.train.Int64List(value=[valence])),
                "arousal_high": tf.train.Feature(int64_list=tf.train.Int64List(value=[arousal])),
                "genre": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"Rock"])),
            }
            example = tf.train.Example(features=tf.train.Features(feature=feature))
            writer.write(example.SerializeToString())


def test_load_examples_reads_gzipped_split(tmp_path):
    preset = presets.get("small")
    split = tmp_path / "Split-train"
    split.mkdir()
    rows = [(1, 1), (0, 1), (0, 0)]
    _write_examples(split / "data_tfrecord-00000-of-00001.gz", rows, preset)
    data = trainer_module.load_examples([str(split / "*")], preset=preset)
    f = preset.features
    assert data["log_mel"].shape == (3, f.num_segments, f.num_frames, f.n_mels)
    # Song i was written filled with the value i: order and reshape are preserved.
    np.testing.assert_array_equal(data["log_mel"][:, 0, 0, 0], [0, 1, 2])
    np.testing.assert_array_equal(data["valence_high"], [1, 0, 0])
    np.testing.assert_array_equal(data["arousal_high"], [1, 1, 0])
    assert list(data["song_id"]) == [b"s0", b"s1", b"s2"]


def test_load_examples_without_files_raises(tmp_path):
    with pytest.raises(DatasetError, match="No transformed example files"):
        trainer_module.load_examples([str(tmp_path / "Split-train" / "*")], preset=presets.get("small"))


def test_preset_from_config_applies_overrides():
    small = presets.get("small")
    preset = trainer_module.preset_from_config(
        {"preset": small.to_dict(), "overrides": {"ae_max_epochs": 2, "head_max_epochs": 3}}
    )
    assert preset.training.ae_max_epochs == 2 and preset.training.head_max_epochs == 3
    assert preset.features == small.features
    with pytest.raises(ParameterError, match="names no preset"):
        trainer_module.preset_from_config({"overrides": {"ae_max_epochs": 2}})


def test_the_trainer_trains_with_the_preset_its_examples_record():
    from components.trainer import EXAMPLES_PRESET_KEY

    three = presets.get("4q-3s-small")
    preset = trainer_module.preset_from_config(
        {EXAMPLES_PRESET_KEY: three.to_dict(), "overrides": {"head_max_epochs": 1}})
    assert preset.features == three.features and preset.training.head_max_epochs == 1
    both = {"preset": three.to_dict(), EXAMPLES_PRESET_KEY: three.to_dict()}
    assert trainer_module.preset_from_config(both) == three


def test_a_trainer_given_another_preset_than_its_examples_fails_in_one_line():
    from components.trainer import EXAMPLES_PRESET_KEY

    config = {"preset": presets.get("small").to_dict(),
              EXAMPLES_PRESET_KEY: presets.get("4q-3s-small").to_dict()}
    with pytest.raises(ParameterError) as error:
        trainer_module.preset_from_config(config)
    message = str(error.value)
    assert "\n" not in message
    assert "'small'" in message and "'4q-3s-small'" in message
    # The same name with other settings is caught too, and said so.
    config["preset"] = presets.get("4q-3s-small").replace(n_mels=64).to_dict()
    with pytest.raises(ParameterError, match="'4q-3s-small' with other settings"):
        trainer_module.preset_from_config(config)


def test_hyperparameter_values_from_keras_tuner_config():
    from pipeline import tuner_module

    hp = tuner_module.search_space()
    values = trainer_module.hyperparameter_values(hp.get_config())
    assert set(values) == {"learning_rate", "rnn_units", "dropout"}
    assert trainer_module.hyperparameter_values(None) == {}


def test_the_pipeline_trainer_reads_label_info_through_its_artifact(tmp_path):
    from components.trainer import Executor
    from pipeline import factory

    pipe = factory.create_pipeline(_config(tmp_path))
    (trainer,) = [c for c in pipe.components if c.id == "Trainer"]
    # The executor that adds the examples artifact's label_info.json to custom_config.
    assert trainer.executor_spec.executor_class is Executor


def test_describe_training_data_names_the_dataset(tmp_path):
    from mer_tfx import synthetic

    (tmp_path / "README.txt").write_text(synthetic.README_MARKER + "\nmore text\n")
    describe = trainer_module.describe_training_data
    assert describe({"layout": "4q", "input": str(tmp_path)}, songs=24) == (
        "synthetic (mer_tfx.synthetic, 4Q layout), 24 training songs")
    assert describe({"layout": "4q", "input": str(tmp_path / "4QAED")}, songs=607) == (
        "4Q (Panda et al. 2018), 607 training songs")
    assert describe({"layout": "pmemo", "input": "/data/PMEmo2019"}, songs=600) == (
        "PMEmo (Zhang et al. 2018), 600 training songs")
    assert describe({"layout": "manifest", "input": "/data/songs.csv"}, songs=80) == (
        "CSV manifest songs.csv, 80 training songs")
    assert describe(None, songs=3) == "3 training songs"


def test_describe_gate_states_the_thresholds():
    text = trainer_module.describe_gate({"accuracy": 0.6, "f1": 0.55})
    assert "accuracy >= 0.6" in text and "F1 >= 0.55" in text
    assert trainer_module.describe_gate(None) == "none"


def test_the_pipeline_trainer_is_told_the_evaluators_gate(tmp_path):
    import json

    from pipeline import factory

    pipe = factory.create_pipeline(_config(tmp_path, accuracy_threshold=0.65, f1_threshold=0.5))
    (trainer,) = [c for c in pipe.components if c.id == "Trainer"]
    config = trainer.exec_properties["custom_config"]
    config = json.loads(config) if isinstance(config, str) else config
    assert config["gate"] == {"accuracy": 0.65, "f1": 0.5}
