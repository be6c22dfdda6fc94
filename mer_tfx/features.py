"""Feature maths, written once: looping a clip to 30 s, segmenting it, log-mel.

Every path that turns audio into model input — the Keras layers, the Beam
transform in the pipeline, the serving signatures and the experiment runner —
calls these functions, so training and serving compute identical features.

They use `keras.ops` only, so they run on every Keras backend (TensorFlow, JAX,
PyTorch). On the TensorFlow backend `keras.ops` emits core TensorFlow ops, so
inside a `tf.function` they make the graph that stock TF Serving runs. Keras is
imported when a function is first called: numpy-only callers (audio loading, the
REST client's `loop_to_length_np`) never pay for it.

The log-mel spectrogram reproduces what the paper computed with librosa:
``np.log10(librosa.feature.melspectrogram(y, sr, n_fft, hop_length, n_mels) + 1).T``
i.e. a centred STFT (zero padding of n_fft // 2 at both ends, librosa >= 0.10),
a periodic Hann window, the power spectrum, librosa's Slaney mel filterbank
(`mel_filterbank`, equal to `librosa.filters.mel`, as a constant matrix) and log10(S + 1).
"""

from __future__ import annotations

import warnings
from typing import Dict, Optional, Tuple

import numpy as np

from mer_tfx.errors import ParameterError
from mer_tfx.presets import FeatureConfig

# (sample_rate, n_fft, n_mels) -> float32 [n_fft // 2 + 1, n_mels].
_FILTERBANKS: Dict[Tuple[int, int, int], np.ndarray] = {}


def _ops():
    from keras import ops

    return ops


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ParameterError(f"{name} must be a positive integer. Received: {name}={value!r}")


def mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int = 128) -> np.ndarray:
    """librosa's Slaney-normalised mel filterbank, transposed for right-multiplication.

    Equal, value for value, to ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft,
    n_mels=n_mels).T`` (fmin 0, fmax sample_rate / 2, htk=False, norm="slaney",
    float32; `features_test` asserts it for every preset's setting), computed
    once per setting and process.

    Kept in NumPy rather than calling librosa: `import librosa.filters` (which
    imports numba and scipy.signal) cost 0.45 s of a 3.8 s LogMelTransform in a
    cProfile of its executor on the synthetic default's 34 songs and made the
    pipeline benchmark's LogMelTransform 12 % slower (2-core AMD EPYC;
    docs/architecture.md); `benchmarks/filterbank_benchmark.py`: 823 ms for
    librosa's, its import included, against 3 ms for this one. It also keeps
    librosa off machines that only run the layers (the JAX GPU script).

    Returns:
        float32 [n_fft // 2 + 1, n_mels] (a read-only array: it is shared).
    """
    _check_positive_int("sample_rate", sample_rate)
    _check_positive_int("n_fft", n_fft)
    _check_positive_int("n_mels", n_mels)
    key = (int(sample_rate), int(n_fft), int(n_mels))
    weights = _FILTERBANKS.get(key)
    if weights is None:
        weights = np.ascontiguousarray(_slaney_mel(*key).T)
        weights.setflags(write=False)
        _FILTERBANKS[key] = weights
    return weights


# Slaney's mel scale as librosa (>= 0.10) computes it: linear below 1 kHz, then
# logarithmic with 27 steps per factor 6.4.
_MEL_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _MEL_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz >= _MIN_LOG_HZ:
        return _MIN_LOG_MEL + np.log(hz / _MIN_LOG_HZ) / _LOGSTEP
    return hz / _MEL_SP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    hz = _MEL_SP * mels
    log_part = mels >= _MIN_LOG_MEL
    hz[log_part] = _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels[log_part] - _MIN_LOG_MEL))
    return hz


def _slaney_mel(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """float32 [n_mels, n_fft // 2 + 1], in librosa.filters.mel's order of operations."""
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_f = _mel_to_hz(
        np.linspace(_hz_to_mel(0.0), _hz_to_mel(float(sample_rate) / 2), n_mels + 2)
    )
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, n_fft // 2 + 1), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, np.newaxis]
    if not np.all((mel_f[:-2] == 0) | (weights.max(axis=1) > 0)):
        warnings.warn(
            f"Empty mel filters: with n_fft={n_fft} at {sample_rate} Hz some of the "
            f"n_mels={n_mels} bands fall between FFT bins and will always be 0. "
            "Use a larger n_fft or fewer mels.",
            UserWarning,
            stacklevel=3,
        )
    return weights


def log_mel_spectrogram(
    waveform,
    *,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    n_mels: int = 128,
):
    """The paper's log-mel spectrogram: log10(mel power spectrogram + 1), frames × mels.

    Args:
        waveform: float32 [..., samples], a tensor of the Keras backend or a
            NumPy array; any number of leading batch dimensions.
        sample_rate: sample rate of `waveform` in Hz.
        n_fft: FFT window length.
        hop_length: samples between frames.
        n_mels: mel bands. Defaults to 128.

    Returns:
        float32 [..., 1 + samples // hop_length, n_mels], a backend tensor.
    """
    ops = _ops()
    _check_positive_int("hop_length", hop_length)
    weights = ops.convert_to_tensor(
        mel_filterbank(sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels), dtype="float32"
    )
    waveform = ops.cast(waveform, "float32")
    rank = len(waveform.shape)
    if rank == 0:
        raise ParameterError("waveform must have a samples axis. Received: a scalar")
    # librosa >= 0.10 centres frames with zeros (pad_mode="constant");
    # keras.ops.stft's own centring reflects, so pad here and stft uncentred.
    pad = n_fft // 2
    padded = ops.pad(waveform, [[0, 0]] * (rank - 1) + [[pad, pad]])
    real, imag = ops.stft(padded, n_fft, hop_length, n_fft, window="hann", center=False)
    power = ops.square(real) + ops.square(imag)
    # tensordot (a reshape and one 2-D product), not matmul: TF 2.16's broadcasting
    # BatchMatMulV2 of [b, s, frames, bins] by [bins, mels] crashes on the CPU.
    mel = ops.tensordot(power, weights, axes=1)
    return ops.log10(mel + 1.0)


def log_mel_for(waveform, features: FeatureConfig):
    """`log_mel_spectrogram` with the settings of a preset's `FeatureConfig`."""
    return log_mel_spectrogram(
        waveform,
        sample_rate=features.sample_rate,
        n_fft=features.n_fft,
        hop_length=features.hop_length,
        n_mels=features.n_mels,
    )


def loop_to_length(waveform, *, num_samples: int):
    """Repeats a clip from its start until it is `num_samples` long, or cuts it.

    The paper pads clips shorter than 30 s "by repeating themselves from the start
    to the end" and keeps the first 30 s of longer ones.

    Args:
        waveform: float32 [..., samples] with samples >= 1; samples may be
            unknown until run time (a TensorFlow graph input).
        num_samples: length of the result.

    Returns:
        float32 [..., num_samples].
    """
    ops = _ops()
    _check_positive_int("num_samples", num_samples)
    waveform = ops.cast(waveform, "float32")
    length = waveform.shape[-1]
    if length == 0:
        raise ParameterError("waveform must have at least one sample. Received: 0 samples")
    if length is not None:
        if length == num_samples:
            return waveform
        if length > num_samples:
            return waveform[..., :num_samples]
        repeats = -(-num_samples // length)
        tiled = ops.tile(waveform, [1] * (len(waveform.shape) - 1) + [repeats])
        return tiled[..., :num_samples]
    # Length known only at run time (a TensorFlow graph input): tile by a run-time
    # count, then cut. Not a gather of `arange(num_samples) % length`, which made the
    # serving graph's feature path about 2x slower (15-16 ms against 7 ms for a 30 s
    # clip in a tf.function with an unknown length; benchmarks/serving_benchmark.py's
    # in-process row shows the same gap).
    length = ops.shape(waveform)[-1]
    repeats = (num_samples + length - 1) // length
    tiled = ops.tile(waveform, [1] * (len(waveform.shape) - 1) + [repeats])
    return tiled[..., :num_samples]


def loop_to_length_np(waveform: np.ndarray, *, num_samples: int) -> np.ndarray:
    """NumPy twin of `loop_to_length` for code that runs outside TensorFlow."""
    _check_positive_int("num_samples", num_samples)
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.shape[-1] == 0:
        raise ParameterError("waveform must have at least one sample. Received: 0 samples")
    repeats = -(-num_samples // waveform.shape[-1])
    tiled = np.tile(waveform, (1,) * (waveform.ndim - 1) + (repeats,))
    return np.ascontiguousarray(tiled[..., :num_samples])


def segment(waveform, *, segment_samples: int, num_segments: Optional[int] = None):
    """Splits [..., samples] into contiguous, non-overlapping segments.

    Args:
        waveform: float32 [..., samples]; samples must be a multiple of
            `segment_samples` (loop or cut the clip first).
        segment_samples: samples per segment.
        num_segments: expected number of segments, if known (sets the static
            shape when the number of samples is not).

    Returns:
        float32 [..., samples // segment_samples, segment_samples].
    """
    ops = _ops()
    _check_positive_int("segment_samples", segment_samples)
    waveform = ops.cast(waveform, "float32")
    static_len = waveform.shape[-1]
    if static_len is not None and static_len % segment_samples:
        raise ParameterError(
            "The number of samples must be a multiple of segment_samples. Received: "
            f"samples={static_len}, segment_samples={segment_samples}"
        )
    if num_segments is None:
        num_segments = -1 if static_len is None else static_len // segment_samples
    leading = tuple(ops.shape(waveform)[:-1])
    return ops.reshape(waveform, leading + (num_segments, segment_samples))


def clip_to_log_mel_segments(waveform, features: FeatureConfig):
    """Whole feature path: loop/cut to the clip length, segment, log-mel.

    Args:
        waveform: float32 [..., samples] at `features.sample_rate`, any length >= 1.
        features: the preset's feature settings.

    Returns:
        float32 [..., num_segments, num_frames, n_mels].
    """
    clip = loop_to_length(waveform, num_samples=features.clip_samples)
    segments = segment(
        clip, segment_samples=features.segment_samples, num_segments=features.num_segments
    )
    return log_mel_for(segments, features)
