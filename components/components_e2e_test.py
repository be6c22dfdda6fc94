"""Both components in a real TFX pipeline (LocalDagRunner), on a tiny 4Q folder and manifest."""

import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from tfx import v1 as tfx

from components import AudioExampleGen, LogMelTransform, example_codec
from components.conftest import TINY_FEATURES, TINY_PRESET, make_4q, make_manifest


def _count(uri, split):
    files = glob.glob(os.path.join(uri, f"Split-{split}", "*.gz"))
    return sum(1 for _ in tf.data.TFRecordDataset(files, compression_type="GZIP"))


@pytest.mark.e2e
@pytest.mark.parametrize("layout", ["4q", "manifest"])
def test_example_gen_and_log_mel_transform_run_in_a_local_pipeline(tmp_path, layout):
    if layout == "4q":
        dataset = make_4q(tmp_path / "4q", per_quadrant=3)
    else:
        dataset = make_manifest(tmp_path / "manifest")
    root = tmp_path / "pipeline"
    example_gen = AudioExampleGen(str(dataset["root"]), preset=TINY_PRESET)
    transform = LogMelTransform(examples=example_gen.outputs["examples"])
    statistics = tfx.components.StatisticsGen(examples=transform.outputs["examples"])
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="components-e2e",
        pipeline_root=str(root),
        # StatisticsGen reads the output through TFX's own reader (tfx-bsl).
        components=[example_gen, transform, statistics],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(tmp_path / "metadata.sqlite")
        ),
        enable_cache=False,
    )
    tfx.orchestration.LocalDagRunner().run(pipeline)

    (out_uri,) = glob.glob(str(root / "LogMelTransform" / "examples" / "*"))
    assert sorted(os.listdir(out_uri)) == [
        "Split-eval",
        "Split-train",
        "label_info.json",
        "preset.json",
        "skipped_files.csv",
    ]
    song_ids = []
    size = TINY_FEATURES.num_segments * TINY_FEATURES.num_frames * TINY_FEATURES.n_mels
    for split in ("train", "eval"):
        files = glob.glob(os.path.join(out_uri, f"Split-{split}", "*.gz"))
        for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
            example = tf.train.Example.FromString(record.numpy())
            song_ids.append(example.features.feature["song_id"].bytes_list.value[0].decode())
            log_mel = example_codec.float_values(example.features.feature["log_mel"])
            assert log_mel.shape == (size,)
            assert np.isfinite(log_mel).all() and log_mel.max() > 0
            assert "waveform" not in example.features.feature
    assert sorted(song_ids) == sorted(dataset["songs"])
    (stats_uri,) = glob.glob(str(root / "StatisticsGen" / "statistics" / "*"))
    stats = tfdv.load_stats_binary(os.path.join(stats_uri, "Split-train", "FeatureStats.pb"))
    train = stats.datasets[0]
    assert train.num_examples == _count(out_uri, "train") > 0
    assert {f.path.step[0] for f in train.features} >= {"log_mel", "song_id", "quadrant"}
    with open(os.path.join(out_uri, "label_info.json")) as handle:
        assert json.load(handle)["counts"]["examples"] == len(dataset["songs"])
    with open(os.path.join(out_uri, "skipped_files.csv")) as handle:
        skipped = handle.read()
    assert all(song in skipped for song in dataset["bad"])
