import keras
import librosa
import numpy as np
import pytest
from keras import ops

from mer_tfx import features, presets
from mer_tfx.errors import ParameterError

_FFT_SETTINGS = sorted(
    {
        (presets.get(n).features.sample_rate, presets.get(n).features.n_fft)
        for n in presets.PAPER_PRESETS
    }
)


@pytest.mark.parametrize("sample_rate, n_fft", _FFT_SETTINGS)
def test_mel_filterbank_is_librosas_transposed_and_shared(sample_rate, n_fft):
    ours = features.mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=128)

    assert ours.shape == (n_fft // 2 + 1, 128) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, librosa.filters.mel(sr=sample_rate, n_fft=n_fft).T)
    # One read-only matrix per setting: no caller can change another's features.
    assert features.mel_filterbank(sample_rate=sample_rate, n_fft=n_fft) is ours
    assert not ours.flags.writeable


@pytest.mark.parametrize("sample_rate, n_fft, n_mels", [(16000, 64, 8), (44100, 2048, 96),
                                                       (8000, 512, 40), (22050, 1000, 128)])
def test_mel_filterbank_equals_librosa_for_other_settings(sample_rate, n_fft, n_mels):
    ours = features.mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels)

    np.testing.assert_array_equal(
        ours, librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels).T
    )


def test_mel_filterbank_warns_of_empty_bands_as_librosa_does():
    with pytest.warns(UserWarning, match="Empty filters"):
        theirs = librosa.filters.mel(sr=16000, n_fft=64, n_mels=40).T
    with pytest.warns(UserWarning, match=r"Empty mel filters: with n_fft=64 at 16000 Hz"):
        ours = features.mel_filterbank(sample_rate=16000, n_fft=64, n_mels=40)

    np.testing.assert_array_equal(ours, theirs)


def test_mel_filterbank_rejects_bad_values():
    with pytest.raises(ParameterError, match="n_fft=0"):
        features.mel_filterbank(sample_rate=22050, n_fft=0)
    with pytest.raises(ParameterError, match="sample_rate=-5"):
        features.mel_filterbank(sample_rate=-5, n_fft=1024)


@pytest.mark.parametrize("loop", ["ops", "np"])
def test_short_clip_is_repeated_from_its_start(loop):
    x = np.array([[1, 2, 3], [4, 5, 6]], "float32")
    out = _loop(loop, x, 8)

    np.testing.assert_array_equal(out, [[1, 2, 3, 1, 2, 3, 1, 2], [4, 5, 6, 4, 5, 6, 4, 5]])


@pytest.mark.parametrize("loop", ["ops", "np"])
def test_long_clip_is_cut_and_exact_length_is_kept(loop):
    x = np.arange(10, dtype="float32")
    np.testing.assert_array_equal(_loop(loop, x, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(_loop(loop, x, 10), x)
    assert _loop(loop, x, 25).shape == (25,)


@pytest.mark.parametrize("loop", ["ops", "np"])
def test_single_sample_clip_fills_the_length(loop):
    np.testing.assert_array_equal(_loop(loop, np.array([0.5], "float32"), 5), [0.5] * 5)


def test_ops_and_np_loops_agree_on_a_real_length():
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 12345)).astype("float32")
    np.testing.assert_array_equal(_loop("ops", x, 30 * 22050), _loop("np", x, 30 * 22050))


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="a length unknown until run time exists only in TensorFlow graphs",
)
def test_loop_of_a_length_known_only_at_run_time():
    # The serving graph takes waveforms of any length: [batch, None].
    import tensorflow as tf

    loop = tf.function(
        lambda w: features.loop_to_length(w, num_samples=25),
        input_signature=[tf.TensorSpec([None, None], tf.float32)],
    )
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 7)).astype("float32")

    out = loop(x)

    assert out.shape == (2, 25)
    np.testing.assert_array_equal(out.numpy(), _loop("np", x, 25))
    np.testing.assert_array_equal(loop(x[:, :3]).numpy(), _loop("np", x[:, :3], 25))


def test_loop_rejects_bad_lengths():
    with pytest.raises(ParameterError, match="num_samples=0"):
        features.loop_to_length(np.ones(3, "float32"), num_samples=0)
    with pytest.raises(ParameterError, match="num_samples=-2"):
        features.loop_to_length_np(np.ones(3, "float32"), num_samples=-2)
    with pytest.raises(ParameterError, match="0 samples"):
        features.loop_to_length_np(np.zeros((2, 0), "float32"), num_samples=4)
    with pytest.raises(ParameterError, match="0 samples"):
        features.loop_to_length(np.zeros((2, 0), "float32"), num_samples=4)


def test_segment_is_a_contiguous_reshape():
    x = np.arange(24, dtype="float32").reshape(2, 12)
    out = ops.convert_to_numpy(features.segment(x, segment_samples=4))

    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out.reshape(2, 12), x)


def test_segment_errors_when_not_divisible():
    with pytest.raises(ParameterError, match="samples=10, segment_samples=4"):
        features.segment(np.zeros((1, 10), "float32"), segment_samples=4)
    with pytest.raises(ParameterError, match="segment_samples=0"):
        features.segment(np.zeros((1, 10), "float32"), segment_samples=0)


@pytest.mark.parametrize("preset_name", presets.PAPER_PRESETS)
def test_clip_to_log_mel_segments_shape(preset_name):
    config = presets.get(preset_name).features
    # 2 s of noise: looped to 30 s inside, so the shape only depends on the preset.
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, 2 * config.sample_rate))

    out = ops.convert_to_numpy(features.clip_to_log_mel_segments(x.astype("float32"), config))

    assert out.shape == (1, config.num_segments, 216, 128)
    assert np.isfinite(out).all() and out.min() >= 0.0


def test_clip_to_log_mel_segments_equals_librosa_on_each_segment():
    config = presets.get("4q-10s").features
    x = np.random.default_rng(1).uniform(-1, 1, size=7 * config.sample_rate).astype("float32")

    out = ops.convert_to_numpy(features.clip_to_log_mel_segments(x, config))

    clip = np.tile(x, 5)[: config.clip_samples]
    segment = clip[2 * config.segment_samples :]
    expected = np.log10(
        librosa.feature.melspectrogram(
            y=segment, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length
        )
        + 1
    ).T
    # float32 FFT rounding; see mer_tfx/layers/log_mel_spectrogram_test.py.
    np.testing.assert_allclose(out[2], expected, rtol=0, atol=1e-4)


def _loop(kind, x, n):
    if kind == "ops":
        return ops.convert_to_numpy(features.loop_to_length(x, num_samples=n))
    return features.loop_to_length_np(x, num_samples=n)
