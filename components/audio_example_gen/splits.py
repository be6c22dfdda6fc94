"""The ExampleGen's output splits: TFX's hash-bucket rule on each song's `song_id`.

TFX's own partition (`base_example_gen_executor._PartitionFn`) reads the partition
feature through the Example's feature map, whose first access copies the whole map:
18 ms for a 30 s waveform (protobuf's C++ backend, 2-core machine under load; the
map access is described in `components.example_codec`). `example_partition` reads
`song_id` with `tf.io.parse_example`, which parses that feature alone (under 1 ms),
and `song_partition` takes it from a decoded song; both give the split TFX's rule
gives with `partition_feature_name="song_id"` (tested against `_PartitionFn`).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import apache_beam as beam
import tensorflow as tf
from tfx.components.example_gen import utils as example_gen_utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

from components import example_codec
from components.audio_example_gen.decode import EncodedSong
from mer_tfx import contract
from mer_tfx.errors import ParameterError

_SONG_ID_SPEC = {contract.SONG_ID: tf.io.FixedLenFeature([], tf.string)}


def split_configs(exec_properties: Mapping[str, Any]) -> tuple:
    """(example_gen_pb2.Input, example_gen_pb2.Output) parsed from the execution properties."""
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
    )
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
    )
    return input_config, output_config


def output_splits(exec_properties: Mapping[str, Any]) -> Tuple[List[str], List[int]]:
    """The output split names and their cumulative hash buckets, e.g. (["train", "eval"], [8, 10]).

    Raises:
        ParameterError: no output splits, or a partition feature other than
            `song_id` (which could put one song in two splits).
    """
    input_config, output_config = split_configs(exec_properties)
    split_config = output_config.split_config
    if not split_config.splits:
        raise ParameterError(
            "AudioExampleGen needs output splits (hash buckets), e.g. "
            "components.default_output_config(). Received: output_config="
            f"{proto_utils.proto_to_json(output_config)}"
        )
    if split_config.partition_feature_name not in ("", contract.SONG_ID):
        raise ParameterError(
            "AudioExampleGen partitions by song: partition_feature_name must be "
            f"{contract.SONG_ID!r} or empty. Received: "
            f"partition_feature_name={split_config.partition_feature_name!r}"
        )
    names = example_gen_utils.generate_output_split_names(input_config, output_config)
    buckets = list(itertools.accumulate(split.hash_buckets for split in split_config.splits))
    return names, buckets


def _bucket_partition(song_id: bytes, num_partitions: int, buckets: Sequence[int]) -> int:
    if num_partitions != len(buckets):
        raise ParameterError(
            f"num_partitions must equal len(buckets). Received: {num_partitions}, {list(buckets)}"
        )
    key = example_codec.bytes_feature(song_id).SerializeToString(deterministic=True)
    bucket = int(hashlib.sha256(key).hexdigest(), 16) % buckets[-1]
    return bisect.bisect(buckets, bucket)


def song_partition(song: EncodedSong, num_partitions: int, buckets: Sequence[int]) -> int:
    """The split index of a decoded song: TFX's hash-bucket rule applied to its `song_id`.

    sha256 of the serialized `song_id` feature, modulo the total of the hash
    buckets, as `FileBasedExampleGen` computes it.

    Args:
        song: the decoded song.
        num_partitions: number of splits (== len(buckets)).
        buckets: cumulative hash buckets, e.g. [8, 10] for train 8 / eval 2.
    """
    return _bucket_partition(song.song_id.encode("utf-8"), num_partitions, buckets)


def example_partition(example: bytes, num_partitions: int, buckets: Sequence[int]) -> int:
    """The split index of a serialized tf.Example: `song_partition` on its `song_id`."""
    parsed = tf.io.parse_example([example], _SONG_ID_SPEC)
    return _bucket_partition(parsed[contract.SONG_ID].numpy()[0], num_partitions, buckets)


class _Partition(beam.PTransform):
    def __init__(self, partition_fn, split_names: Sequence[str], buckets: Sequence[int]):
        super().__init__()
        if len(split_names) != len(buckets):
            raise ParameterError(
                "split_names and buckets must have the same length. Received: "
                f"{list(split_names)}, {list(buckets)}"
            )
        self._partition_fn = partition_fn
        self._names = list(split_names)
        self._buckets = list(buckets)

    def expand(self, elements) -> Dict[str, beam.PCollection]:
        parts = elements | "Partition" >> beam.Partition(
            self._partition_fn, len(self._buckets), self._buckets
        )
        return dict(zip(self._names, parts, strict=True))


class PartitionBySong(_Partition):
    """PCollection of `EncodedSong` -> {split name: PCollection of `EncodedSong`}: the
    split TFX's rule puts each song in (`song_partition`).

    Args:
        split_names: the output splits, in the order of `buckets`.
        buckets: their cumulative hash buckets.
    """

    def __init__(self, split_names: Sequence[str], buckets: Sequence[int]):
        super().__init__(song_partition, split_names, buckets)


class PartitionExamples(_Partition):
    """PCollection of serialized tf.Examples -> {split name: PCollection of the same}:
    TFX's split on `song_id` (`example_partition`).

    Args:
        split_names: the output splits, in the order of `buckets`.
        buckets: their cumulative hash buckets.
    """

    def __init__(self, split_names: Sequence[str], buckets: Sequence[int]):
        super().__init__(example_partition, split_names, buckets)
