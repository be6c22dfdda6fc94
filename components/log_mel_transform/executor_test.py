import json
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import BeamAssertException, assert_that
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, channel_utils, standard_artifacts

from components import artifact_files, example_codec
from components.audio_example_gen import decode
from components.conftest import TINY_FEATURES, TINY_PRESET
from components.log_mel_transform import component, executor
from mer_tfx import contract, features, presets
from mer_tfx.errors import ParameterError
from mer_tfx.layers.log_mel_spectrogram import LogMelSpectrogram
from mer_tfx.layers.segmenter import Segmenter

# Reason for 1e-5: the Beam transform and the reference run the same float32
# graph, but batching changes the order of floating-point reductions.
ATOL = 1e-5


def _waveform(seed, feature_config=TINY_FEATURES):
    rng = np.random.default_rng(seed)
    return (0.5 * rng.uniform(-1, 1, feature_config.clip_samples)).astype(np.float32)


def _song_example(song_id, *, seed=0, feature_config=TINY_FEATURES, quadrant="Q1", valence=None):
    song = {
        "song_id": song_id,
        "path": f"/audio/{song_id}.wav",
        "valence": valence,
        "arousal": None if valence is None else 0.5,
        "valence_high": 1,
        "arousal_high": 0,
        "quadrant": quadrant,
        "metadata": {"genre": "Rock", "title": f"Title {song_id}"},
    }
    return tf.train.Example.FromString(
        decode.encode_song_example(
            song, _waveform(seed, feature_config), sample_rate=feature_config.sample_rate
        )
    )


def _reference(waveform, feature_config=TINY_FEATURES):
    return features.clip_to_log_mel_segments(waveform[None], feature_config).numpy()[0]


def _log_mel(example, feature_config=TINY_FEATURES):
    values = example_codec.float_values(example.features.feature["log_mel"])
    return values.reshape(
        feature_config.num_segments, feature_config.num_frames, feature_config.n_mels
    )


def test_log_mel_fn_matches_the_feature_function_and_keeps_other_features():
    fn = executor.LogMelFn(features=TINY_FEATURES)
    fn.setup()
    inputs = [_song_example(f"s{i}", seed=i, valence=0.25 * i) for i in range(3)]
    outputs = [
        tf.train.Example.FromString(s) for s in fn.process([e.SerializeToString() for e in inputs])
    ]
    assert len(outputs) == 3
    for source, result in zip(inputs, outputs, strict=True):
        expected_keys = set(source.features.feature) - {"waveform"} | {"log_mel"}
        assert set(result.features.feature) == expected_keys
        for key in expected_keys - {"log_mel"}:
            assert result.features.feature[key] == source.features.feature[key]
        waveform = example_codec.float_values(source.features.feature["waveform"])
        np.testing.assert_allclose(_log_mel(result), _reference(waveform), atol=ATOL, rtol=0)


def test_log_mel_equals_the_keras_layers_on_a_paper_preset():
    feature_config = presets.get("small").features
    example = _song_example("s0", seed=7, feature_config=feature_config)
    fn = executor.LogMelFn(features=feature_config)
    fn.setup()
    (serialized,) = list(fn.process([example.SerializeToString()]))
    result = tf.train.Example.FromString(serialized)
    values = example_codec.float_values(result.features.feature["log_mel"])
    # The contract: num_segments * 216 * 128 values, row-major [segments, frames, mels].
    assert values.shape == (feature_config.num_segments * 216 * 128,)
    waveform = example_codec.float_values(example.features.feature["waveform"])
    segments = Segmenter.from_preset("small")(waveform[None])
    layer_output = LogMelSpectrogram.from_preset("small")(segments).numpy()[0]
    assert layer_output.shape == (6, 216, 128)
    np.testing.assert_allclose(values.reshape(6, 216, 128), layer_output, atol=ATOL, rtol=0)


def test_log_mel_fn_rejects_examples_of_another_preset():
    fn = executor.LogMelFn(features=TINY_FEATURES)
    fn.setup()
    other = presets.FeatureConfig(
        sample_rate=16000, segment_seconds=1, n_fft=256, hop_length=128, n_mels=16, clip_seconds=3
    )
    with pytest.raises(ParameterError, match="sample_rate=\\[16000\\]"):
        list(fn.process([_song_example("s", feature_config=other).SerializeToString()]))
    longer = presets.FeatureConfig(
        sample_rate=8000, segment_seconds=1, n_fft=256, hop_length=128, n_mels=16, clip_seconds=4
    )
    with pytest.raises(ParameterError, match="Received: 32000 values"):
        list(fn.process([_song_example("s", feature_config=longer).SerializeToString()]))


def test_compute_log_mel_in_a_pipeline_batches_without_changing_results():
    inputs = [_song_example(f"s{i}", seed=i) for i in range(5)]
    expected = {
        f"s{i}": _reference(example_codec.float_values(e.features.feature["waveform"]))
        for i, e in enumerate(inputs)
    }

    def check(serialized):
        results = {}
        for s in serialized:
            example = tf.train.Example.FromString(s)
            results[example.features.feature["song_id"].bytes_list.value[0].decode()] = _log_mel(
                example
            )
        if sorted(results) != sorted(expected):
            raise BeamAssertException(f"songs {sorted(results)} != {sorted(expected)}")
        for song_id, log_mel in results.items():
            np.testing.assert_allclose(log_mel, expected[song_id], atol=ATOL, rtol=0)

    with test_pipeline.TestPipeline() as pipeline:
        outputs = (
            pipeline
            | beam.Create([e.SerializeToString() for e in inputs])
            | executor.ComputeLogMel(features=TINY_FEATURES, batch_size=3)
        )
        assert_that(outputs, check)


def test_compute_log_mel_rejects_a_bad_batch_size():
    with pytest.raises(ParameterError, match="batch_size=0"):
        executor.ComputeLogMel(features=TINY_FEATURES, batch_size=0)


# --------------------------------------------------------------------------- executor


def _write_examples(uri, splits, *, preset=TINY_PRESET):
    """Writes an ExampleGen-like Examples artifact: gzipped TFRecords per split, reports, and
    the preset it records (none when `preset` is None)."""
    artifact = standard_artifacts.Examples()
    artifact.uri = str(uri)
    os.makedirs(uri, exist_ok=True)
    if preset is not None:
        artifact_files.write_preset(artifact, preset)
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    for split, examples in splits.items():
        split_uri = artifact_utils.get_split_uri([artifact], split)
        os.makedirs(split_uri)
        path = os.path.join(split_uri, "data_tfrecord-00000-of-00001.gz")
        with tf.io.TFRecordWriter(path, options="GZIP") as writer:
            for example in examples:
                writer.write(example.SerializeToString())
    with open(os.path.join(uri, contract.LABEL_INFO_FILE), "w") as handle:
        json.dump({"layout": "4q"}, handle)
    with open(os.path.join(uri, contract.SKIPPED_FILES_FILE), "w") as handle:
        handle.write("path,song_id,reason\n/a/bad.wav,bad,file is empty (0 bytes)\n")
    return artifact


def _read_split(artifact, split):
    files = tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*.gz"))
    return [
        tf.train.Example.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(files, compression_type="GZIP")
    ]


def test_do_transforms_every_split_and_records_the_preset(tmp_path):
    splits = {
        "train": [_song_example(f"t{i}", seed=i) for i in range(4)],
        "eval": [_song_example("e0", seed=10)],
        "test": [_song_example("x0", seed=11)],
        # A split can be empty when a dataset has few songs.
        "empty": [],
    }
    source = _write_examples(tmp_path / "in", splits)
    target = standard_artifacts.Examples()
    target.uri = str(tmp_path / "out")
    executor.Executor().Do(
        {executor.WAVEFORM_EXAMPLES_KEY: [source]},
        {executor.EXAMPLES_KEY: [target]},
        {executor.BATCH_SIZE_KEY: 2},
    )
    assert artifact_utils.decode_split_names(target.split_names) == [
        "train",
        "eval",
        "test",
        "empty",
    ]
    for split, inputs in splits.items():
        outputs = {
            e.features.feature["song_id"].bytes_list.value[0]: e for e in _read_split(target, split)
        }
        assert sorted(outputs) == sorted(
            e.features.feature["song_id"].bytes_list.value[0] for e in inputs
        )
        for source_example in inputs:
            result = outputs[source_example.features.feature["song_id"].bytes_list.value[0]]
            assert "waveform" not in result.features.feature
            expected = _reference(
                example_codec.float_values(source_example.features.feature["waveform"])
            )
            np.testing.assert_allclose(_log_mel(result), expected, atol=ATOL, rtol=0)
    # The preset the input records, read from there and recorded again for the Trainer.
    assert artifact_files.read_preset(target.uri) == TINY_PRESET
    assert target.get_string_custom_property(artifact_files.PRESET_PROPERTY) == TINY_PRESET.name
    for name in (contract.LABEL_INFO_FILE, contract.SKIPPED_FILES_FILE):
        with (
            open(os.path.join(target.uri, name)) as copy,
            open(os.path.join(source.uri, name)) as original,
        ):
            assert copy.read() == original.read()
    assert examples_utils.get_payload_format(target) == example_gen_pb2.FORMAT_TF_EXAMPLE
    assert examples_utils.get_file_format(target) == "tfrecords_gzip"


def test_component_wires_input_output_and_parameters():
    examples = channel_utils.as_channel([standard_artifacts.Examples()])
    transform = component.LogMelTransform(examples=examples, batch_size=4)
    assert transform.inputs[executor.WAVEFORM_EXAMPLES_KEY] is examples
    assert transform.outputs[executor.EXAMPLES_KEY].type is standard_artifacts.Examples
    assert transform.exec_properties[executor.BATCH_SIZE_KEY] == 4
    # The preset comes with the input examples, never as a parameter of its own.
    assert "preset" not in transform.exec_properties
    with pytest.raises(ParameterError, match="batch_size"):
        component.LogMelTransform(examples=examples, batch_size=-1)


def test_examples_that_record_no_preset_stop_the_transform(tmp_path):
    source = _write_examples(tmp_path / "in", {"train": [_song_example("t0")]}, preset=None)
    target = standard_artifacts.Examples()
    target.uri = str(tmp_path / "out")
    with pytest.raises(ParameterError, match="record no preset"):
        executor.Executor().Do(
            {executor.WAVEFORM_EXAMPLES_KEY: [source]}, {executor.EXAMPLES_KEY: [target]}, {}
        )
