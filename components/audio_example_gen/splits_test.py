import apache_beam as beam
import numpy as np
import tensorflow as tf
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.utils import proto_utils

from components.audio_example_gen import component, decode, splits
from components.conftest import song_dict


def test_song_and_example_partition_are_tfx_hash_bucket_rule_on_song_id():
    split_config = component.default_output_config().split_config
    buckets = [8, 10]
    seen = set()
    for i in range(60):
        song_id = f"MT{i:07d}"
        example = tf.train.Example.FromString(
            decode.encode_song_example(
                song_dict(song_id, "/a.wav"), np.zeros(3, np.float32), sample_rate=8000
            )
        )
        ours = splits.song_partition(decode.EncodedSong(song_id, "Q1", b""), 2, buckets)
        # The split TFX's own FileBasedExampleGen gives with partition_feature_name="song_id".
        assert ours == base_example_gen_executor._PartitionFn(example, 2, buckets, split_config)
        assert splits.example_partition(example.SerializeToString(), 2, buckets) == ours
        seen.add(ours)
    assert seen == {0, 1}


def test_partition_by_song_puts_each_song_in_its_split_by_name():
    songs = [decode.EncodedSong(f"MT{i:07d}", "Q1", b"") for i in range(30)]
    expected = {"train": [], "eval": []}
    for song in songs:
        expected[("train", "eval")[splits.song_partition(song, 2, [8, 10])]].append(song.song_id)
    assert expected["train"] and expected["eval"]
    with test_pipeline.TestPipeline() as pipeline:
        parts = (
            pipeline
            | beam.Create(songs)
            | splits.PartitionBySong(["train", "eval"], [8, 10])
        )
        assert sorted(parts) == ["eval", "train"]
        for name, part in parts.items():
            assert_that(
                part | f"Id[{name}]" >> beam.Map(lambda song: song.song_id),
                equal_to(expected[name]),
                label=f"Check[{name}]",
            )


def test_partition_examples_puts_each_example_in_its_songs_split():
    examples = [
        decode.encode_song_example(
            song_dict(f"MT{i:07d}", "/a.wav"), np.zeros(3, np.float32), sample_rate=8000
        )
        for i in range(30)
    ]
    expected = {"train": [], "eval": []}
    for i, example in enumerate(examples):
        song = decode.EncodedSong(f"MT{i:07d}", "Q1", b"")
        expected[("train", "eval")[splits.song_partition(song, 2, [8, 10])]].append(example)
    with test_pipeline.TestPipeline() as pipeline:
        parts = (
            pipeline | beam.Create(examples) | splits.PartitionExamples(["train", "eval"], [8, 10])
        )
        for name, part in parts.items():
            assert_that(part, equal_to(expected[name]), label=f"Check[{name}]")


def test_output_splits_reads_names_and_cumulative_buckets():
    properties = {
        "input_config": proto_utils.proto_to_json(example_gen_utils.make_default_input_config()),
        "output_config": proto_utils.proto_to_json(component.default_output_config()),
    }
    assert splits.output_splits(properties) == (["train", "eval"], [8, 10])
