"""Audio loading: any MP3/WAV/FLAC/OGG file -> mono float32 at a chosen rate.

Decoding uses soundfile (libsndfile >= 1.1 decodes MP3 as well as WAV, FLAC and
OGG/Vorbis) and resampling uses soxr at quality "HQ"; together they are as fast
as `librosa.load` and give the same samples. Only files whose format libsndfile
does not handle (e.g. ``.m4a``) go to audioread, librosa's fallback decoder,
so such formats still load where a system decoder (ffmpeg, GStreamer) exists;
a WAV/MP3/FLAC/OGG file libsndfile cannot decode is reported as corrupt.

`load_clip_with_info` gives the clip and the file's header facts (`audio_info`'s)
from one open, for callers that need both.

Every failure a user can cause with a bad file raises
`mer_tfx.errors.AudioLoadError`, which names the file and says what is wrong:
missing, empty, undecodable, without samples, or with NaN/inf samples.

Example:

    >>> from mer_tfx.audio import load_clip
    >>> clip = load_clip("Q1/MT0000082187.mp3", sample_rate=22050)  # doctest: +SKIP
    >>> clip.shape  # doctest: +SKIP
    (661500,)
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple, Optional, Tuple, Union

import numpy as np
import soundfile
import soxr

from mer_tfx.contract import clip_samples
from mer_tfx.errors import AudioLoadError, ParameterError

PathLike = Union[str, os.PathLike]

#: Extensions the dataset readers treat as audio (all decoded by soundfile).
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg")

#: Extensions libsndfile decodes itself; other files (e.g. .m4a) go to audioread.
SOUNDFILE_EXTENSIONS = frozenset(
    (
        ".wav",
        ".wave",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".mp3",
        ".aif",
        ".aiff",
        ".au",
        ".caf",
        ".w64",
        ".rf64",
    )
)

_CLIP_MARGIN_SECONDS = 0.1

#: soxr quality used for every resampling ("HQ": 20-bit precision, linear phase).
RESAMPLE_QUALITY = "HQ"


class AudioInfo(NamedTuple):
    """Header facts of an audio file (a tuple: ``rate, channels, seconds = info``)."""

    sample_rate: int
    channels: int
    seconds: float


def _header_info(header) -> AudioInfo:
    """The `AudioInfo` of a soundfile header (an open `SoundFile` or `soundfile.info`'s
    answer, both with samplerate, channels and frames); its rate must be > 0."""
    rate = int(header.samplerate)
    return AudioInfo(rate, int(header.channels), float(header.frames) / float(rate))


def _check_sample_rate(sample_rate) -> int:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, np.integer))
        or sample_rate <= 0
    ):
        raise ParameterError(
            f"sample_rate must be a positive integer. Received: sample_rate={sample_rate!r}"
        )
    return int(sample_rate)


def _check_duration(duration) -> Optional[float]:
    if duration is None:
        return None
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float, np.integer, np.floating))
        or not duration > 0
        or not np.isfinite(duration)
    ):
        raise ParameterError(
            f"duration must be a positive number of seconds or None. Received: duration={duration!r}"
        )
    return float(duration)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise AudioLoadError(str(path), "file does not exist")
    if not path.is_file():
        raise AudioLoadError(str(path), "not a regular file")
    if path.stat().st_size == 0:
        raise AudioLoadError(str(path), "file is empty (0 bytes)")


def _soundfile_read(
    source, duration: Optional[float] = None
) -> Tuple[np.ndarray, int, Optional[AudioInfo]]:
    """Decodes with soundfile, the first `duration` seconds (all when None).

    Returns float32 [samples, channels], the native rate and the header facts, all
    from one open (`AudioInfo` as `audio_info` gives it; None for a rate <= 0,
    which `_finish` rejects).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with soundfile.SoundFile(source) as handle:
            rate = int(handle.samplerate)
            info = _header_info(handle) if rate > 0 else None
            frames = -1 if duration is None else int(np.ceil(duration * rate))
            data = handle.read(frames, dtype="float32", always_2d=True)
    return data, rate, info


def _fallback_read(path: str) -> Tuple[np.ndarray, int]:
    """Decodes with audioread (librosa's fallback: ffmpeg, GStreamer or Core Audio when
    installed) at the native rate. Returns float32 [samples, channels] and the rate."""
    import audioread

    with audioread.audio_open(path) as source:
        rate, channels = int(source.samplerate), int(source.channels)
        pcm = b"".join(source)
    data = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return data.reshape(-1, max(channels, 1)), rate


def _soundfile_handles(name: str) -> bool:
    """Whether libsndfile reads files named like `name` (then a failure means corrupt data)."""
    return Path(name).suffix.lower() in SOUNDFILE_EXTENSIONS


def _short_reason(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if "does not exist" in text or "not a regular file" in text:
        # libsndfile's generic "cannot open" text; the file was checked to exist.
        return "libsndfile does not recognise the data as audio"
    return text if len(text) <= 200 else text[:197] + "..."


def _decode_path(
    path: Path, duration: Optional[float]
) -> Tuple[np.ndarray, int, Optional[AudioInfo]]:
    """`_soundfile_read` of the file, or audioread's decode of all of it (no header facts)."""
    try:
        return _soundfile_read(str(path), duration)
    except Exception as primary:  # libsndfile raises LibsndfileError / RuntimeError
        reason = f"cannot decode audio (corrupt or unsupported format): {_short_reason(primary)}"
        if _soundfile_handles(path.name):
            raise AudioLoadError(str(path), reason) from primary
        try:
            return (*_fallback_read(str(path)), None)
        except Exception as fallback:
            raise AudioLoadError(
                str(path), f"{reason}; audioread: {_short_reason(fallback)}"
            ) from primary


def _finish(data: np.ndarray, rate: int, *, sample_rate: int, mono: bool, name: str) -> np.ndarray:
    """[samples, channels] at `rate` -> float32 [samples] (mono) or [channels, samples]."""
    if data.ndim != 2 or data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioLoadError(name, "file contains no audio samples")
    if rate <= 0:
        raise AudioLoadError(name, f"invalid sample rate in header: {rate}")
    if not np.all(np.isfinite(data)):
        bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        raise AudioLoadError(name, f"audio contains {bad} non-finite (NaN or infinite) samples")
    if mono:
        data = data.mean(axis=1, dtype=np.float32)[:, np.newaxis]
    if rate != sample_rate:
        data = np.asarray(
            soxr.resample(data, rate, sample_rate, quality=RESAMPLE_QUALITY), np.float32
        )
        if data.ndim == 1:
            data = data[:, np.newaxis]
        if data.shape[0] == 0:
            raise AudioLoadError(
                name, f"audio too short to resample from {rate} Hz to {sample_rate} Hz"
            )
    data = np.clip(data, -1.0, 1.0)
    if mono:
        return np.ascontiguousarray(data[:, 0], dtype=np.float32)
    return np.ascontiguousarray(data.T, dtype=np.float32)


def load_audio(
    path: PathLike, *, sample_rate: int, mono: bool = True, duration: Optional[float] = None
) -> np.ndarray:
    """Loads an audio file, mixes it to mono and resamples it.

    Args:
        path: an MP3, WAV, FLAC or OGG file (anything libsndfile decodes), at any
            sample rate and with any number of channels.
        sample_rate: rate of the result in Hz.
        mono: average the channels. Defaults to True.
        duration: decode only the first `duration` seconds (faster for long
            files; the samples are the same as the start of the full decode).
            Defaults to None: the whole file.

    Returns:
        float32 [samples] when `mono`, else float32 [channels, samples]; values
        clipped to [-1, 1].

    Raises:
        AudioLoadError: the file is missing, empty, undecodable, has no samples,
            or has non-finite samples. The message names the file.
        ParameterError: `sample_rate` is not a positive integer.
    """
    sample_rate = _check_sample_rate(sample_rate)
    duration = _check_duration(duration)
    return _load(Path(path), sample_rate=sample_rate, mono=mono, duration=duration)[0]


def _load(
    path: Path, *, sample_rate: int, mono: bool, duration: Optional[float]
) -> Tuple[np.ndarray, Optional[AudioInfo]]:
    """`load_audio` of checked arguments, with the header facts of the same open."""
    _check_file(path)
    data, rate, info = _decode_path(path, duration)
    if duration is not None:
        data = data[: int(np.ceil(duration * rate))]  # the audioread fallback decodes it all
    return _finish(data, rate, sample_rate=sample_rate, mono=mono, name=str(path)), info


def decode_audio_bytes(
    data: bytes,
    *,
    sample_rate: int,
    mono: bool = True,
    duration: Optional[float] = None,
    name: str = "<bytes>",
) -> np.ndarray:
    """`load_audio` for an encoded file held in memory (e.g. an upload on the client).

    Args:
        data: the bytes of an MP3, WAV, FLAC or OGG file.
        sample_rate: rate of the result in Hz.
        mono: average the channels. Defaults to True.
        duration: decode only the first `duration` seconds. Defaults to None (all).
        name: how to name the source in error messages. Defaults to "<bytes>".

    Returns:
        float32 [samples] (or [channels, samples] when not `mono`), in [-1, 1].

    Raises:
        AudioLoadError: empty or undecodable bytes, no samples, non-finite samples.
    """
    sample_rate = _check_sample_rate(sample_rate)
    duration = _check_duration(duration)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ParameterError(f"data must be bytes. Received: type(data)={type(data).__name__}")
    data = bytes(data)
    if not data:
        raise AudioLoadError(name, "file is empty (0 bytes)")
    try:
        decoded, rate, _ = _soundfile_read(io.BytesIO(data), duration)
    except Exception as primary:
        reason = f"cannot decode audio (corrupt or unsupported format): {_short_reason(primary)}"
        if name == "<bytes>" or _soundfile_handles(name):
            raise AudioLoadError(name, reason) from primary
        # audioread needs a real file: spill to a temporary one for the fallback.
        with tempfile.TemporaryDirectory() as tmp:
            spill = os.path.join(tmp, "audio" + Path(name).suffix.lower())
            with open(spill, "wb") as handle:
                handle.write(data)
            try:
                decoded, rate = _fallback_read(spill)
            except Exception as fallback:
                raise AudioLoadError(
                    name, f"{reason}; audioread: {_short_reason(fallback)}"
                ) from primary
    if duration is not None:
        decoded = decoded[: int(np.ceil(duration * rate))]
    return _finish(decoded, rate, sample_rate=sample_rate, mono=mono, name=name)


def load_clip(path: PathLike, *, sample_rate: int, clip_seconds: float = 30.0) -> np.ndarray:
    """Loads a file as the paper's fixed-length clip.

    Clips shorter than `clip_seconds` repeat from their start until they are long
    enough; longer ones keep their first `clip_seconds`.

    Args:
        path: an audio file (see `load_audio`).
        sample_rate: rate of the result in Hz.
        clip_seconds: clip duration. Defaults to 30.0 (the paper's).

    Returns:
        float32 [round(clip_seconds * sample_rate)] in [-1, 1].

    Raises:
        AudioLoadError: as `load_audio`.
        ParameterError: `sample_rate` or `clip_seconds` is not positive.
    """
    return load_clip_with_info(path, sample_rate=sample_rate, clip_seconds=clip_seconds)[0]


def load_clip_with_info(
    path: PathLike, *, sample_rate: int, clip_seconds: float = 30.0
) -> Tuple[np.ndarray, Optional[AudioInfo]]:
    """`load_clip` and `audio_info` of a file from one open of it.

    The clip is `load_clip`'s, sample for sample, and a bad file raises its error;
    the header facts are read from the handle that decodes the clip, so a caller
    that needs both (the ExampleGen, `mer score`) opens each file once, not twice.

    Args:
        path: an audio file (see `load_audio`).
        sample_rate: rate of the clip in Hz.
        clip_seconds: clip duration. Defaults to 30.0 (the paper's).

    Returns:
        (clip float32 [round(clip_seconds * sample_rate)] in [-1, 1], `AudioInfo` of
        the file as `audio_info` gives it, or None when only the audioread fallback
        could decode it: then `audio_info` cannot read its header either).

    Raises:
        AudioLoadError: as `load_audio`.
        ParameterError: `sample_rate` or `clip_seconds` is not positive.

    Example:

        >>> clip, info = load_clip_with_info("song.mp3", sample_rate=22050)  # doctest: +SKIP
        >>> clip.shape, info.seconds  # doctest: +SKIP
        ((661500,), 212.4)
    """
    sample_rate = _check_sample_rate(sample_rate)
    if not isinstance(clip_seconds, (int, float, np.floating, np.integer)) or not clip_seconds > 0:
        raise ParameterError(
            f"clip_seconds must be a positive number. Received: clip_seconds={clip_seconds!r}"
        )
    num_samples = clip_samples(clip_seconds=float(clip_seconds), sample_rate=sample_rate)
    if num_samples <= 0:
        raise ParameterError(
            f"clip_seconds * sample_rate must be at least one sample. Received: clip_seconds={clip_seconds!r}"
        )
    # Imported here: mer_tfx.features imports TensorFlow, which plain decoding does not need.
    from mer_tfx.features import loop_to_length_np

    # Decode only what the clip needs, plus a margin so the resampler's filter sees the
    # same neighbourhood as in a full decode (the kept samples are then identical).
    waveform, info = _load(
        Path(path),
        sample_rate=sample_rate,
        mono=True,
        duration=float(clip_seconds) + _CLIP_MARGIN_SECONDS,
    )
    return loop_to_length_np(waveform, num_samples=num_samples), info


def audio_info(path: PathLike) -> AudioInfo:
    """Reads an audio file's header: native rate, channels and duration.

    Cheap (no decoding) for every format libsndfile reads; for MP3 the duration
    is libsndfile's frame count, exact for constant-bitrate files.

    Returns:
        `AudioInfo(sample_rate, channels, seconds)`.

    Raises:
        AudioLoadError: the file is missing, empty or not audio.
    """
    path = Path(path)
    _check_file(path)
    try:
        info = soundfile.info(str(path))
    except Exception as primary:
        raise AudioLoadError(
            str(path),
            f"cannot read audio header (corrupt or unsupported format): {_short_reason(primary)}",
        ) from primary
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioLoadError(
            str(path), f"invalid header: rate={info.samplerate}, channels={info.channels}"
        )
    return _header_info(info)
