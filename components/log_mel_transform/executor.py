"""Executor of `LogMelTransform`: waveform Examples -> log-mel Examples, per split.

For every split of the input Examples, each song's `waveform` is cut into the
segments of the preset the input records (`components.artifact_files`) and turned
into log-mel spectrograms with `mer_tfx.features.clip_to_log_mel_segments` (the same function the Keras layer
and the serving signature call). Songs are batched (`beam.BatchElements`) so
that one TensorFlow call computes several songs. The output Example keeps every
input feature except `waveform` and adds `log_mel`: float list of
`num_segments * num_frames * n_mels` values, row-major
[segments, frames, mels]. It is written like an ExampleGen's output (gzipped
TFRecords under `Split-<name>/`), so Trainer and Evaluator read it unchanged.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Iterator, List, Sequence

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components import artifact_files, example_codec, gzip_tfrecord, local_beam
from mer_tfx import contract, faults
from mer_tfx import features as mer_features
from mer_tfx.errors import ParameterError
from mer_tfx.presets import FeatureConfig

_LOGGER = logging.getLogger(__name__)

# Artifact and parameter keys.
# TFX names a component's inputs and outputs in one namespace, so the input
# (waveform Examples, passed as the `examples` constructor argument) and the
# output (log-mel Examples, what Trainer and Evaluator read) need two keys.
EXAMPLES_KEY = "examples"
WAVEFORM_EXAMPLES_KEY = "waveform_examples"
BATCH_SIZE_KEY = "batch_size"

DEFAULT_BATCH_SIZE = 8
# Files of the input artifact copied into the output artifact's uri.
COPIED_FILES = (contract.LABEL_INFO_FILE, contract.SKIPPED_FILES_FILE)
_OUTPUT_FILE_PREFIX = "data_tfrecord"


# One traced graph per feature configuration and process: tracing costs seconds,
# and the DirectRunner makes one DoFn instance per split.
_COMPUTE_CACHE: Dict[FeatureConfig, Any] = {}


def log_mel_function(features: FeatureConfig):
    """A tf.function: float32 [batch, clip_samples] -> [batch, segments, frames, mels].

    It is `mer_tfx.features.clip_to_log_mel_segments`, traced once per process.
    """
    compute = _COMPUTE_CACHE.get(features)
    if compute is None:

        @tf.function(
            input_signature=[tf.TensorSpec([None, features.clip_samples], tf.float32)],
            autograph=False,
        )
        def compute(waveforms):
            return mer_features.clip_to_log_mel_segments(waveforms, features)

        _COMPUTE_CACHE[features] = compute
    return compute


class LogMelFn(beam.DoFn):
    """Batch of serialized waveform Examples -> serialized log-mel Examples.

    Input: list of serialized tf.train.Example (one batch). Output: serialized
    tf.train.Example, one per input, in order, without `waveform`, with
    `log_mel` float32 [num_segments * num_frames * n_mels]. The waveform is
    taken out and the log-mel put in at the wire level (`example_codec`), so
    the large features never go through the protobuf map API: 14 ms per 4q-5s
    song against 602 ms with `tf.train.Example` and 168 ms with
    `tf.io.parse_example` for the waveform (`benchmarks/codec_benchmark.py`).

    Args:
        features: the preset's feature settings; every Example's `sample_rate`
            must equal `features.sample_rate` and its waveform must hold
            `features.clip_samples` values (what the audio ExampleGen writes
            with the same preset), otherwise `ParameterError`.
    """

    def __init__(self, *, features: FeatureConfig):
        super().__init__()
        self._features = features
        self._compute = None
        self._songs = beam.metrics.Metrics.counter("mer_tfx", "songs_transformed")

    def setup(self):
        self._compute = log_mel_function(self._features)

    def _waveform(self, rest: bytes, taken: Dict[str, bytes]) -> np.ndarray:
        """Checks one song against the preset; returns its waveform float32 [clip_samples]."""
        feature = tf.train.Example.FromString(rest).features.feature
        song = []
        if contract.SONG_ID in feature:
            song = list(feature[contract.SONG_ID].bytes_list.value[:1])
        if contract.SAMPLE_RATE in feature:
            rate = list(feature[contract.SAMPLE_RATE].int64_list.value)
            if rate != [self._features.sample_rate]:
                raise ParameterError(
                    "The Examples were decoded at another sample rate than the preset's: "
                    "use the same preset for the ExampleGen and LogMelTransform. Received: "
                    f"sample_rate={rate} for song {song}, "
                    f"preset sample_rate={self._features.sample_rate}"
                )
        if contract.WAVEFORM not in taken:
            raise ParameterError(f"Example of song {song} has no {contract.WAVEFORM!r} feature.")
        waveform = example_codec.float_values(tf.train.Feature.FromString(taken[contract.WAVEFORM]))
        if waveform.shape[0] != self._features.clip_samples:
            raise ParameterError(
                f"waveform must hold clip_samples={self._features.clip_samples} values (the "
                f"preset's {self._features.clip_seconds} s at {self._features.sample_rate} Hz). "
                f"Received: {waveform.shape[0]} values for song {song}"
            )
        return waveform

    def process(self, batch: Sequence[bytes]) -> Iterator[bytes]:
        if self._compute is None:
            self.setup()
        faults.fault_point("log_mel.batch")
        rests, waveforms = [], []
        for serialized in batch:
            rest, taken = example_codec.split_example(
                serialized, (contract.WAVEFORM, contract.LOG_MEL)
            )
            waveforms.append(self._waveform(rest, taken))
            rests.append(rest)
        log_mels = self._compute(tf.constant(np.stack(waveforms))).numpy()
        for rest, log_mel in zip(rests, log_mels, strict=True):
            self._songs.inc()
            yield rest + example_codec.feature_entry(
                contract.LOG_MEL, example_codec.float_feature(log_mel)
            )


class ComputeLogMel(beam.PTransform):
    """PCollection of serialized waveform Examples -> serialized log-mel Examples.

    Args:
        features: the preset's feature settings.
        batch_size: most songs per TensorFlow call. Defaults to 8.
    """

    def __init__(self, *, features: FeatureConfig, batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__()
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ParameterError(
                f"batch_size must be a positive integer. Received: batch_size={batch_size!r}"
            )
        self._features = features
        self._batch_size = batch_size

    def expand(self, serialized):
        return (
            serialized
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self._batch_size)
            | "LogMel" >> beam.ParDo(LogMelFn(features=self._features))
        )


def transform_split(
    pipeline: beam.Pipeline,
    *,
    input_uri: str,
    output_uri: str,
    features: FeatureConfig,
    batch_size: int,
    label: str,
) -> None:
    """Adds read -> ComputeLogMel -> write of one split (gzipped TFRecords) to `pipeline`."""
    _ = (
        pipeline
        | f"Read[{label}]" >> beam.io.ReadFromTFRecord(io_utils.all_files_pattern(input_uri))
        | f"ComputeLogMel[{label}]" >> ComputeLogMel(features=features, batch_size=batch_size)
        | f"Write[{label}]"
        >> gzip_tfrecord.WriteToGzipTFRecord(os.path.join(output_uri, _OUTPUT_FILE_PREFIX))
    )


class Executor(local_beam.LocalBeamExecutor):
    """Runs the log-mel transform over every split of the input Examples."""

    def Do(  # noqa: N802 (TFX API)
        self,
        input_dict: Dict[str, List[Any]],
        output_dict: Dict[str, List[Any]],
        exec_properties: Dict[str, Any],
    ) -> None:
        """Reads the splits with the preset they record, writes the log-mel splits and the
        same preset, copies the reports.

        Raises:
            ParameterError: input Examples that record no preset, a bad batch size, or
                Examples that do not match their preset (sample rate, clip length).
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        batch_size = exec_properties.get(BATCH_SIZE_KEY) or DEFAULT_BATCH_SIZE
        source = artifact_utils.get_single_instance(input_dict[WAVEFORM_EXAMPLES_KEY])
        target = artifact_utils.get_single_instance(output_dict[EXAMPLES_KEY])
        preset = artifact_files.read_preset(source.uri)
        split_names = artifact_utils.decode_split_names(source.split_names)
        if not split_names:
            raise ParameterError(f"The input Examples have no splits. Received: uri={source.uri!r}")
        payload = examples_utils.get_payload_format(source)
        if payload != example_gen_pb2.FORMAT_TF_EXAMPLE:
            raise ParameterError(
                "LogMelTransform reads tf.Example payloads. Received: payload_format="
                f"{example_gen_pb2.PayloadFormat.Name(payload)}"
            )
        target.split_names = artifact_utils.encode_split_names(split_names)

        with self._make_beam_pipeline() as pipeline:
            for split in split_names:
                transform_split(
                    pipeline,
                    input_uri=artifact_utils.get_split_uri([source], split),
                    output_uri=artifact_utils.get_split_uri([target], split),
                    features=preset.features,
                    batch_size=int(batch_size),
                    label=split,
                )

        examples_utils.set_payload_format(target, example_gen_pb2.FORMAT_TF_EXAMPLE)
        examples_utils.set_file_format(target, "tfrecords_gzip")
        for name in COPIED_FILES:
            path = os.path.join(source.uri, name)
            if fileio.exists(path):
                fileio.copy(path, os.path.join(target.uri, name), overwrite=True)
        artifact_files.write_preset(target, preset)
        _LOGGER.info("Log-mel Examples written to %s (splits %s).", target.uri, split_names)
