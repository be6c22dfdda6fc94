"""Tests for mer_tfx.audio: formats, rates, channels, looping, and every bad-file error."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mer_tfx.audio import (
    AudioInfo,
    audio_info,
    decode_audio_bytes,
    load_audio,
    load_clip,
    load_clip_with_info,
)
from mer_tfx.errors import AudioLoadError, ParameterError
from tests.fixtures.opens import count_opens

TARGET_RATE = 22050

# (format, extension, subtype) written with soundfile; MP3 only where libsndfile can encode it.
FORMATS = [
    ("WAV", "wav", "PCM_16"),
    ("FLAC", "flac", "PCM_16"),
    ("OGG", "ogg", "VORBIS"),
]
if "MP3" in soundfile.available_formats():
    FORMATS.append(("MP3", "mp3", "MPEG_LAYER_III"))
LOSSY = {"OGG", "MP3"}


def _shared_data() -> Path:
    """<repo>/../shared/data, or $MER_SHARED_DATA."""
    env = os.environ.get("MER_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _sine(*, rate: int, seconds: float, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(rate * seconds))) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


@pytest.mark.parametrize("fmt,ext,subtype", FORMATS, ids=[f[0] for f in FORMATS])
@pytest.mark.parametrize("rate", [16000, 32000, 44100])
@pytest.mark.parametrize("channels", [1, 2])
def test_load_audio_any_format_rate_channels(tmp_path, fmt, ext, subtype, rate, channels):
    seconds = 1.0
    tone = _sine(rate=rate, seconds=seconds)
    path = tmp_path / f"tone.{ext}"
    soundfile.write(
        str(path), np.stack([tone] * channels, axis=1), rate, format=fmt, subtype=subtype
    )

    out = load_audio(path, sample_rate=TARGET_RATE)

    assert out.dtype == np.float32 and out.ndim == 1
    expected_len = int(round(seconds * TARGET_RATE))
    # Lossless files keep their exact duration (soxr rounds to within one sample);
    # lossy encoders may add or trim up to one codec frame (MP3: 1152 samples at the source rate).
    slack = 1 if fmt not in LOSSY else int(np.ceil(1152 * TARGET_RATE / rate))
    assert abs(len(out) - expected_len) <= slack
    # A 0.5-amplitude sine has RMS 0.5/sqrt(2). 16-bit PCM and HQ resampling keep it within
    # 0.1 %; OGG/MP3 at default quality change a pure tone's level by < 2 % (measured ~0.7 %).
    tolerance = 0.02 if fmt in LOSSY else 1e-3
    assert _rms(out[2000:-2000]) == pytest.approx(0.5 / np.sqrt(2), rel=tolerance)
    assert np.max(np.abs(out)) <= 1.0


def test_resampled_tone_keeps_its_pitch(tmp_path):
    path = tmp_path / "tone.wav"
    soundfile.write(str(path), _sine(rate=44100, seconds=1.0, freq=1000.0), 44100)
    out = load_audio(path, sample_rate=16000)
    spectrum = np.abs(np.fft.rfft(out))
    peak_hz = np.argmax(spectrum) * 16000 / len(out)
    assert peak_hz == pytest.approx(1000.0, abs=2.0)  # 1 Hz FFT bins over 1 s


def test_stereo_is_averaged_and_mono_false_keeps_channels(tmp_path):
    tone = _sine(rate=TARGET_RATE, seconds=0.5)
    path = tmp_path / "left_only.wav"
    soundfile.write(
        str(path), np.stack([tone, np.zeros_like(tone)], axis=1), TARGET_RATE, subtype="FLOAT"
    )

    mono = load_audio(path, sample_rate=TARGET_RATE)
    np.testing.assert_allclose(mono, tone / 2, atol=1e-7)  # float WAV at the same rate: exact

    both = load_audio(path, sample_rate=TARGET_RATE, mono=False)
    assert both.shape == (2, len(tone))
    np.testing.assert_allclose(both[0], tone, atol=1e-7)
    assert np.all(both[1] == 0)


def test_values_are_clipped_to_unit_range(tmp_path):
    path = tmp_path / "loud.wav"
    soundfile.write(
        str(path), np.array([0.0, 1.7, -3.0, 0.25], np.float32), TARGET_RATE, subtype="FLOAT"
    )
    out = load_audio(path, sample_rate=TARGET_RATE)
    np.testing.assert_array_equal(out, np.array([0.0, 1.0, -1.0, 0.25], np.float32))


def test_load_clip_loops_short_clips_from_the_start(tmp_path):
    rng = np.random.default_rng(0)
    short = rng.uniform(-0.5, 0.5, size=int(1.5 * TARGET_RATE)).astype(np.float32)
    path = tmp_path / "short.wav"
    soundfile.write(str(path), short, TARGET_RATE, subtype="FLOAT")

    clip = load_clip(path, sample_rate=TARGET_RATE, clip_seconds=4.0)

    assert clip.shape == (4 * TARGET_RATE,) and clip.dtype == np.float32
    n = len(short)
    np.testing.assert_array_equal(clip[:n], short)
    np.testing.assert_array_equal(clip[n : 2 * n], short)
    np.testing.assert_array_equal(clip[2 * n :], short[: 4 * TARGET_RATE - 2 * n])


def test_load_clip_cuts_long_clips(tmp_path):
    rng = np.random.default_rng(1)
    long = rng.uniform(-0.5, 0.5, size=3 * 16000).astype(np.float32)
    path = tmp_path / "long.flac"
    soundfile.write(str(path), long, 16000, subtype="PCM_24")

    full = load_audio(path, sample_rate=TARGET_RATE)
    clip = load_clip(path, sample_rate=TARGET_RATE, clip_seconds=1.0)

    assert clip.shape == (TARGET_RATE,)
    np.testing.assert_array_equal(clip, full[:TARGET_RATE])


def test_load_clip_default_is_thirty_seconds(tmp_path):
    path = tmp_path / "one_second.wav"
    soundfile.write(str(path), _sine(rate=8000, seconds=1.0), 8000)
    assert load_clip(path, sample_rate=TARGET_RATE).shape == (30 * TARGET_RATE,)


def test_duration_decodes_only_the_start(tmp_path):
    rng = np.random.default_rng(2)
    noise = rng.uniform(-0.5, 0.5, size=(5 * 44100, 2)).astype(np.float32)
    path = tmp_path / "five_seconds.flac"
    soundfile.write(str(path), noise, 44100, subtype="PCM_24")

    full = load_audio(path, sample_rate=TARGET_RATE)
    start = load_audio(path, sample_rate=TARGET_RATE, duration=2.0)
    assert len(start) == 2 * TARGET_RATE
    # soxr sees the same input up to the cut; only its last ~filter length differs.
    np.testing.assert_array_equal(
        start[: -TARGET_RATE // 10], full[: 2 * TARGET_RATE - TARGET_RATE // 10]
    )
    assert len(load_audio(path, sample_rate=TARGET_RATE, duration=60.0)) == len(full)
    from_bytes = decode_audio_bytes(path.read_bytes(), sample_rate=TARGET_RATE, duration=2.0)
    np.testing.assert_array_equal(from_bytes, start)
    with pytest.raises(ParameterError, match="duration"):
        load_audio(path, sample_rate=TARGET_RATE, duration=0)


def test_load_clip_equals_the_start_of_a_full_decode(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "long.wav"
    soundfile.write(str(path), rng.uniform(-0.5, 0.5, size=(4 * 32000, 2)), 32000, subtype="FLOAT")
    clip = load_clip(path, sample_rate=TARGET_RATE, clip_seconds=1.5)
    full = load_audio(path, sample_rate=TARGET_RATE)
    np.testing.assert_array_equal(clip, full[: int(1.5 * TARGET_RATE)])


def test_decode_audio_bytes_matches_load_audio(tmp_path):
    path = tmp_path / "tone.flac"
    soundfile.write(str(path), np.stack([_sine(rate=44100, seconds=0.5)] * 2, axis=1), 44100)
    from_file = load_audio(path, sample_rate=TARGET_RATE)
    from_bytes = decode_audio_bytes(path.read_bytes(), sample_rate=TARGET_RATE)
    np.testing.assert_array_equal(from_bytes, from_file)


def test_decode_audio_bytes_errors_name_the_source():
    with pytest.raises(AudioLoadError, match="upload.wav") as info:
        decode_audio_bytes(b"definitely not audio" * 10, sample_rate=TARGET_RATE, name="upload.wav")
    assert info.value.path == "upload.wav"
    with pytest.raises(AudioLoadError, match="empty"):
        decode_audio_bytes(b"", sample_rate=TARGET_RATE)
    with pytest.raises(ParameterError, match="type"):
        decode_audio_bytes("a string", sample_rate=TARGET_RATE)


def test_audio_info_reads_the_header(tmp_path):
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), np.zeros((32000 * 2, 2), np.float32), 32000)
    info = audio_info(path)
    assert isinstance(info, AudioInfo)
    assert tuple(info) == (32000, 2, pytest.approx(2.0))


def _bad_file_cases(tmp_path: Path):
    missing = tmp_path / "missing.wav"
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(
        b"RIFF" + bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8))
    )
    text = tmp_path / "notes.mp3"
    text.write_text("This is a text file with an .mp3 extension.\n" * 20)
    truncated_header = tmp_path / "truncated.flac"
    truncated_header.write_bytes(b"fLaC\x00\x00")
    no_samples = tmp_path / "no_samples.wav"
    soundfile.write(str(no_samples), np.zeros((0, 1), np.float32), TARGET_RATE)
    nan = tmp_path / "nan.wav"
    soundfile.write(
        str(nan), np.array([0.1, np.nan, 0.2, np.inf], np.float32), TARGET_RATE, subtype="FLOAT"
    )
    return [
        (missing, "does not exist"),
        (empty, "empty"),
        (garbage, "cannot decode"),
        (text, "cannot decode"),
        (truncated_header, "cannot decode"),
        (no_samples, "no audio samples"),
        (nan, "non-finite"),
    ]


def test_bad_files_raise_audio_load_error_naming_the_file(tmp_path):
    for path, reason in _bad_file_cases(tmp_path):
        for load in (load_audio, load_clip):
            with pytest.raises(AudioLoadError) as info:
                load(path, sample_rate=TARGET_RATE)
            assert info.value.path == str(path)
            assert path.name in str(info.value)
            assert reason in info.value.reason, (path, info.value.reason)


@pytest.mark.parametrize("fmt,ext,subtype", FORMATS, ids=[f[0] for f in FORMATS])
@pytest.mark.parametrize("rate,channels,seconds", [(16000, 1, 0.7), (44100, 2, 2.5)])
def test_load_clip_with_info_is_load_clip_and_audio_info(
    tmp_path, fmt, ext, subtype, rate, channels, seconds
):
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, size=(int(rate * seconds), channels))
    path = tmp_path / f"noise.{ext}"
    soundfile.write(str(path), noise, rate, format=fmt, subtype=subtype)
    clip, info = load_clip_with_info(path, sample_rate=TARGET_RATE, clip_seconds=1.5)
    np.testing.assert_array_equal(clip, load_clip(path, sample_rate=TARGET_RATE, clip_seconds=1.5))
    assert isinstance(info, AudioInfo)
    assert info == audio_info(path)


def test_load_clip_with_info_opens_the_file_once(tmp_path, monkeypatch):
    path = tmp_path / "stereo.flac"
    soundfile.write(str(path), np.zeros((3 * 32000, 2), np.float32), 32000)
    opens = count_opens(monkeypatch)
    clip, info = load_clip_with_info(path, sample_rate=TARGET_RATE, clip_seconds=1.0)
    assert clip.shape == (TARGET_RATE,)
    assert tuple(info) == (32000, 2, pytest.approx(3.0))
    assert opens[str(path)] == 1


def test_load_clip_with_info_raises_load_clips_error(tmp_path):
    for path, _ in _bad_file_cases(tmp_path):
        with pytest.raises(AudioLoadError) as ours:
            load_clip_with_info(path, sample_rate=TARGET_RATE)
        with pytest.raises(AudioLoadError) as theirs:
            load_clip(path, sample_rate=TARGET_RATE)
        assert (ours.value.path, ours.value.reason) == (theirs.value.path, theirs.value.reason)
        assert "\n" not in str(ours.value)


def test_audio_info_rejects_bad_files(tmp_path):
    for path, _ in _bad_file_cases(tmp_path)[:4]:
        with pytest.raises(AudioLoadError, match=path.name):
            audio_info(path)


def test_formats_libsndfile_lacks_fall_back_to_audioread(tmp_path, monkeypatch):
    import mer_tfx.audio as audio

    # A 16-bit WAV named .m4a, with soundfile made to fail: only audioread can read it
    # (its stdlib backend reads WAV; ffmpeg would read real .m4a files the same way).
    tone = _sine(rate=16000, seconds=0.5)
    path = tmp_path / "song.m4a"
    soundfile.write(str(path), tone, 16000, format="WAV", subtype="PCM_16")

    def fail(source, duration=None):
        raise RuntimeError("Format not recognised.")

    monkeypatch.setattr(audio, "_soundfile_read", fail)
    out = load_audio(path, sample_rate=16000)
    np.testing.assert_allclose(out, tone, atol=1.0 / 32768)  # 16-bit quantisation step
    clip, info = load_clip_with_info(path, sample_rate=16000, clip_seconds=0.5)
    np.testing.assert_array_equal(clip, out)
    assert info is None  # no libsndfile header: the caller goes without the facts

    garbage = tmp_path / "garbage.m4a"
    garbage.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(AudioLoadError, match="audioread") as info:
        load_audio(garbage, sample_rate=16000)
    assert info.value.path == str(garbage)


def test_directory_is_not_audio(tmp_path):
    with pytest.raises(AudioLoadError, match="not a regular file"):
        load_audio(tmp_path, sample_rate=TARGET_RATE)


@pytest.mark.parametrize("bad", [0, -22050, 22050.0, None, True])
def test_bad_sample_rate_is_a_parameter_error(tmp_path, bad):
    with pytest.raises(ParameterError, match="sample_rate"):
        load_audio(tmp_path / "x.wav", sample_rate=bad)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "30"])
def test_bad_clip_seconds_is_a_parameter_error(tmp_path, bad):
    for load in (load_clip, load_clip_with_info):
        with pytest.raises(ParameterError, match="clip_seconds"):
            load(tmp_path / "x.wav", sample_rate=TARGET_RATE, clip_seconds=bad)


@pytest.mark.e2e
@pytest.mark.shared_data
def test_every_shared_clip_loads():
    """Loads all 4Q and PMEmo clips in ../shared/data (433 files) at 22.05 kHz."""
    root = _shared_data()
    if not (root / "4q").is_dir() or not (root / "pmemo" / "chorus").is_dir():
        pytest.skip(f"shared data not found at {root}")
    files = sorted((root / "4q").glob("Q[1-4]/*.mp3")) + sorted(
        (root / "pmemo" / "chorus").glob("*.mp3")
    )
    assert len(files) >= 433
    start = time.perf_counter()
    for path in files:
        clip = load_clip(path, sample_rate=TARGET_RATE)
        assert clip.shape == (30 * TARGET_RATE,)
        assert np.all(np.isfinite(clip)) and np.max(np.abs(clip)) <= 1.0
        assert np.max(np.abs(clip)) > 0.0, path  # no clip in these datasets is silent
    elapsed = time.perf_counter() - start
    print(
        f"\nloaded {len(files)} clips in {elapsed:.1f} s ({1000 * elapsed / len(files):.0f} ms/clip)"
    )


@pytest.mark.e2e
@pytest.mark.shared_data
def test_shared_clips_match_librosa_load():
    """Same samples as librosa.load (which also decodes with soundfile and resamples with soxr_hq)."""
    import librosa

    root = _shared_data()
    if not (root / "4q").is_dir():
        pytest.skip(f"shared data not found at {root}")
    files = [
        sorted((root / "4q" / q).glob("*.mp3"))[i]
        for q in ("Q1", "Q2", "Q3", "Q4")
        for i in range(5)
    ]
    load_audio(files[0], sample_rate=TARGET_RATE)  # warm-up: imports and caches stay out of
    librosa.load(str(files[0]), sr=TARGET_RATE)  # the timings printed below
    ours_s = theirs_s = 0.0
    for path in files:
        t0 = time.perf_counter()
        ours = load_audio(path, sample_rate=TARGET_RATE)
        t1 = time.perf_counter()
        theirs, _ = librosa.load(str(path), sr=TARGET_RATE)
        t2 = time.perf_counter()
        ours_s, theirs_s = ours_s + t1 - t0, theirs_s + t2 - t1
        assert ours.shape == theirs.shape
        # Same decoder and resampler (measured difference: exactly 0 after clipping); the
        # tolerance only allows float32 rounding should the channel mix order change.
        np.testing.assert_allclose(ours, np.clip(theirs, -1, 1), atol=1e-5)
    n = len(files)
    print(
        f"\nper clip: load_audio {1000 * ours_s / n:.0f} ms, librosa.load {1000 * theirs_s / n:.0f} ms"
    )
