"""Data validation: the curated schema flags a silent clip, and the run summary says so."""

import glob
import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx import v1 as tfx

from components import AudioExampleGen
from components.conftest import TINY_PRESET, make_4q
from components.curated_schema_gen import parse_schema
from mer_tfx import contract
from pipeline import data_validation


def _example(rms_dbfs, silence_share, *, valence_high=1, arousal_high=0, quadrant=b"Q1"):
    floats = {
        contract.RMS_DBFS: rms_dbfs,
        contract.SILENCE_SHARE: silence_share,
        contract.CLIPPING_SHARE: 0.0,
        contract.DURATION_SECONDS: 30.0,
    }
    ints = {
        contract.SOURCE_SAMPLE_RATE: 44100,
        contract.SAMPLE_RATE: 22050,
        contract.VALENCE_HIGH: valence_high,
        contract.AROUSAL_HIGH: arousal_high,
    }
    feature = {k: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) for k, v in floats.items()}
    feature.update(
        {k: tf.train.Feature(int64_list=tf.train.Int64List(value=[v])) for k, v in ints.items()}
    )
    feature[contract.QUADRANT] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[quadrant]))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def _statistics(tmp_path, split, examples):
    records = tmp_path / f"{split}.tfrecord"
    with tf.io.TFRecordWriter(str(records)) as writer:
        for example in examples:
            writer.write(example.SerializeToString())
    stats = tfdv.generate_statistics_from_tfrecord(str(records))
    folder = tmp_path / "statistics" / f"Split-{split}"
    folder.mkdir(parents=True)
    (folder / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    return stats


def test_the_curated_schema_names_exactly_the_validated_features():
    schema = parse_schema(data_validation.SCHEMA_FILE.read_text())
    assert sorted(f.name for f in schema.feature) == sorted(contract.VALIDATED_FEATURES)


def test_a_silent_clip_and_a_one_class_split_are_reported(tmp_path):
    normal = [_example(-18.0, 0.0, valence_high=v % 2, arousal_high=v // 2) for v in range(4)]
    stats = _statistics(tmp_path, "train", normal + [_example(contract.RMS_FLOOR_DBFS, 1.0)])
    _statistics(tmp_path, "eval", [_example(-20.0, 0.1, valence_high=1)] * 3)
    schema = parse_schema(data_validation.SCHEMA_FILE.read_text())
    anomalies = tfdv.validate_statistics(stats, schema)
    folder = tmp_path / "anomalies" / "Split-train"
    folder.mkdir(parents=True)
    (folder / "SchemaDiff.pb").write_bytes(anomalies.SerializeToString())

    lines = data_validation.summary_lines(
        [
            {"anomalies": [str(tmp_path / "anomalies")]},
            {"statistics": [str(tmp_path / "statistics")]},
            {"examples": ["/elsewhere"]},
        ]
    )
    assert lines[0] == "=== data validation: 4 anomalies (reported; the run goes on) ==="
    assert any(line.startswith("  train: rms_dbfs:") and "-120" in line for line in lines)
    assert any(line.startswith("  train: silence_share:") for line in lines)
    assert "  eval: valence_high has one class (1) in all 3 examples" in lines
    assert "  eval: arousal_high has one class (0) in all 3 examples" in lines


def test_no_validation_outputs_means_no_lines_and_clean_data_says_so(tmp_path):
    assert data_validation.summary_lines([{"examples": ["/x"]}]) == []
    _statistics(
        tmp_path, "train", [_example(-18.0, 0.0, valence_high=v, arousal_high=v) for v in (0, 1)]
    )
    (tmp_path / "anomalies" / "Split-train").mkdir(parents=True)
    assert data_validation.summary_lines(
        [{"statistics": [str(tmp_path / "statistics")], "anomalies": [str(tmp_path / "anomalies")]}]
    ) == ["=== data validation ===", "  no anomaly in the audio-level features and labels"]


@pytest.mark.e2e
def test_a_silent_song_is_an_anomaly_and_the_pipeline_finishes(tmp_path):
    dataset = make_4q(tmp_path / "4q", per_quadrant=2, corrupt=False)
    silent = dataset["root"] / "Q3" / "MTsilent.wav"
    soundfile.write(str(silent), np.zeros(3 * 8000, np.float32), 8000, subtype="PCM_16")
    with open(dataset["root"] / "panda_dataset_taffc_annotations.csv", "a") as handle:
        handle.write("MTsilent,Q3\n")
    example_gen = AudioExampleGen(str(dataset["root"]), preset=TINY_PRESET)
    components = [example_gen, *data_validation.validation_components(example_gen.outputs["examples"])]
    root = tmp_path / "pipeline"
    tfx.orchestration.LocalDagRunner().run(
        tfx.dsl.Pipeline(
            pipeline_name="data-validation",
            pipeline_root=str(root),
            components=components,
            metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
                str(tmp_path / "metadata.sqlite")
            ),
            enable_cache=False,
        )
    )
    outputs = [
        {"statistics": glob.glob(str(root / "StatisticsGen" / "statistics" / "*"))},
        {"anomalies": glob.glob(str(root / "ExampleValidator" / "anomalies" / "*"))},
    ]
    lines = data_validation.summary_lines(outputs)
    assert any(": rms_dbfs:" in line for line in lines), lines
    assert any(": silence_share:" in line for line in lines), lines
    # Only the allowlisted features have statistics: never the waveform.
    (stats_uri,) = outputs[0]["statistics"]
    for split in ("train", "eval"):
        path = os.path.join(stats_uri, f"Split-{split}", "FeatureStats.pb")
        names = {f.path.step[0] for f in tfdv.load_stats_binary(path).datasets[0].features}
        assert names <= set(contract.VALIDATED_FEATURES) and contract.RMS_DBFS in names
