import os
from pathlib import Path

import keras
import librosa
import numpy as np
import pytest
from keras import ops

from mer_tfx import presets
from mer_tfx.errors import ParameterError
from mer_tfx.layers.log_mel_spectrogram import LogMelSpectrogram

# tf.data.Dataset.map traces the layer into a TensorFlow graph: TensorFlow backend only.
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.data.Dataset.map runs layers as TensorFlow graphs (TensorFlow backend only)",
)


# librosa computes in float32 too; the two differ only by FFT/summation order.
# Measured max abs difference 4.8e-7 on TensorFlow, 7.2e-7 on JAX (log10 units, every
# paper preset); 1e-4 leaves a wide margin
# while still catching any filterbank, window, padding or log mistake.
PARITY_ATOL = 1e-4


def _test_signal(num_samples: int, sample_rate: int, seed: int = 0) -> np.ndarray:
    """0.5 * sin(2 pi 440 t) + 0.01 * N(0, 1) noise from numpy's default_rng(seed)."""
    t = np.arange(num_samples) / sample_rate
    rng = np.random.default_rng(seed)
    y = 0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.01 * rng.standard_normal(num_samples)
    return y.astype(np.float32)


def _librosa_log_mel(y: np.ndarray, features: presets.FeatureConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=y,
        sr=features.sample_rate,
        n_fft=features.n_fft,
        hop_length=features.hop_length,
        n_mels=features.n_mels,
    )
    return np.log10(mel + 1).T


@pytest.mark.parametrize("preset_name", presets.PAPER_PRESETS)
def test_matches_librosa_for_every_paper_preset(preset_name):
    features = presets.get(preset_name).features
    y = _test_signal(features.segment_samples, features.sample_rate)
    layer = LogMelSpectrogram.from_preset(preset_name)

    out = ops.convert_to_numpy(layer(y[None]))[0]

    assert out.shape == (presets.NUM_FRAMES, presets.NUM_MELS) == features.spectrogram_shape
    expected = _librosa_log_mel(y, features)
    np.testing.assert_allclose(out, expected, rtol=0, atol=PARITY_ATOL)


def test_golden_values():
    # Made once with librosa 0.11 on the 4q-5s settings:
    #   y = _test_signal(5 * 22050, 22050)  (440 Hz sine + default_rng(0) noise)
    #   ref = np.log10(librosa.feature.melspectrogram(y=y, sr=22050, n_fft=1024,
    #                  hop_length=512, n_mels=128) + 1).T
    # and ref[(frame, mel)] printed. Mel 16 holds the 440 Hz peak; frames 0 and
    # 215 are the zero-padded edges.
    golden = {
        (0, 16): 2.226388692855835,
        (100, 16): 2.733200788497925,
        (215, 16): 2.598482131958008,
        (100, 64): 0.00015477051783818752,
        (100, 127): 0.0008758740150369704,
    }
    y = _test_signal(5 * 22050, 22050)
    out = ops.convert_to_numpy(LogMelSpectrogram(sample_rate=22050, n_fft=1024, hop_length=512)(y[None]))[0]
    for (frame, mel), value in golden.items():
        # Same float32 rounding margin as the parity test.
        assert out[frame, mel] == pytest.approx(value, abs=PARITY_ATOL), (frame, mel)


def test_batch_equals_items_one_by_one():
    layer = LogMelSpectrogram.from_preset("4q-3s")
    n = presets.get("4q-3s").features.segment_samples
    batch = np.stack([_test_signal(n, 22050, seed=s) * (s + 1) / 3 for s in range(3)])

    together = ops.convert_to_numpy(layer(batch))
    alone = np.stack([ops.convert_to_numpy(layer(item[None]))[0] for item in batch])

    # Identical ops per item; 1e-6 only absorbs a different reduction order.
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)
    assert not np.allclose(together[0], together[1])


def test_segments_input_gives_one_spectrogram_per_segment():
    features = presets.get("4q-3s").features
    layer = LogMelSpectrogram.from_preset(features)
    items = [_test_signal(features.segment_samples, 22050, seed=s) for s in range(2)]
    segments = np.stack(items)[None]

    out = ops.convert_to_numpy(layer(segments))

    assert out.shape == (1, 2, 216, 128)
    np.testing.assert_allclose(out[0, 1], ops.convert_to_numpy(layer(segments[:, 1]))[0], rtol=0, atol=1e-6)


def test_from_preset_accepts_name_preset_and_feature_config():
    preset = presets.get("pmemo-5s")
    for arg in ("pmemo-5s", preset, preset.features):
        layer = LogMelSpectrogram.from_preset(arg, name="lm")
        assert (layer.sample_rate, layer.n_fft, layer.hop_length, layer.n_mels) == (
            44100,
            2048,
            1024,
            128,
        )
        assert layer.name == "lm"


def test_from_preset_unknown_name_lists_known_names():
    with pytest.raises(ParameterError, match="nope.*4q-5s"):
        LogMelSpectrogram.from_preset("nope")
    with pytest.raises(ParameterError, match="42"):
        LogMelSpectrogram.from_preset(42)


@pytest.mark.parametrize(
    "kwargs, bad",
    [
        ({"sample_rate": 0}, "sample_rate=0"),
        ({"n_fft": -1}, "n_fft=-1"),
        ({"hop_length": 2.5}, "hop_length=2.5"),
        ({"n_mels": None}, "n_mels=None"),
    ],
)
def test_bad_arguments_raise_with_the_value(kwargs, bad):
    args = {"sample_rate": 22050, "n_fft": 1024, "hop_length": 512, **kwargs}
    with pytest.raises(ParameterError, match=bad):
        LogMelSpectrogram(**args)


def test_works_in_functional_model():
    features = presets.get("4q-3s").features
    inputs = keras.Input(shape=(features.segment_samples,))
    spec = LogMelSpectrogram.from_preset(features)(inputs)
    outputs = keras.layers.GlobalAveragePooling1D()(spec)
    model = keras.Model(inputs, outputs)
    y = _test_signal(features.segment_samples, 22050)[None]

    assert spec.shape == (None, 216, 128)
    expected = _librosa_log_mel(y[0], features).mean(axis=0)
    np.testing.assert_allclose(model.predict(y, verbose=0)[0], expected, atol=PARITY_ATOL)


def test_unknown_length_gives_unknown_frames():
    layer = LogMelSpectrogram.from_preset("4q-3s")
    assert layer.compute_output_shape((None, 3, None)) == (None, 3, None, 128)
    assert layer.compute_output_shape((None, 66150)) == (None, 216, 128)


@tensorflow_only
def test_works_in_tf_data_map():
    import tensorflow as tf

    features = presets.get("4q-3s").features
    layer = LogMelSpectrogram.from_preset(features)
    waves = np.stack([_test_signal(features.segment_samples, 22050, seed=s) for s in range(4)])
    ds = tf.data.Dataset.from_tensor_slices(waves).batch(2).map(layer)

    out = np.concatenate([ops.convert_to_numpy(batch) for batch in ds])

    assert out.shape == (4, 216, 128)
    np.testing.assert_allclose(out[3], _librosa_log_mel(waves[3], features), atol=PARITY_ATOL)


def test_config_round_trip_and_keras_file_reload(tmp_path):
    layer = LogMelSpectrogram(sample_rate=22050, n_fft=1024, hop_length=307, n_mels=64, name="lm")
    clone = LogMelSpectrogram.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()

    inputs = keras.Input(shape=(3 * 22050,))
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    y = _test_signal(3 * 22050, 22050)[None]

    assert isinstance(reloaded.get_layer("lm"), LogMelSpectrogram)
    np.testing.assert_array_equal(reloaded.predict(y, verbose=0), model.predict(y, verbose=0))


def _shared_data() -> Path:
    env = os.environ.get("MER_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.shared_data
def test_matches_librosa_on_a_real_4q_clip():
    clips = sorted((_shared_data() / "4q" / "Q1").glob("*.mp3"))
    if not clips:
        pytest.skip("../shared/data/4q is absent")
    features = presets.get("4q-5s").features
    y, _ = librosa.load(clips[0], sr=features.sample_rate, mono=True, duration=5.0)
    y = y[: features.segment_samples]
    if y.size < features.segment_samples:
        pytest.skip(f"{clips[0]} is shorter than 5 s")

    out = ops.convert_to_numpy(LogMelSpectrogram.from_preset(features)(y[None]))[0]

    np.testing.assert_allclose(out, _librosa_log_mel(y, features), rtol=0, atol=PARITY_ATOL)


def test_stays_float32_under_a_mixed_precision_policy():
    features = presets.get("4q-3s").features
    y = _test_signal(features.segment_samples, 22050)[None]
    reference = ops.convert_to_numpy(LogMelSpectrogram.from_preset(features)(y))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = LogMelSpectrogram.from_preset(features)
        out = layer(y)
    finally:
        keras.config.set_dtype_policy(previous)

    assert layer.compute_dtype == "float32"
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    np.testing.assert_array_equal(ops.convert_to_numpy(out), reference)
