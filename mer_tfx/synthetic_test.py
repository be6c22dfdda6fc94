"""Tests for mer_tfx.synthetic: determinism, 4Q layout, deliberate defects, audible cues."""

from __future__ import annotations

import errno
from collections import namedtuple

import numpy as np
import pytest
import soundfile

from mer_tfx import synthetic, write_aside
from mer_tfx.audio import load_audio, load_clip
from mer_tfx.datasets import read_dataset
from mer_tfx.errors import AudioLoadError, NoSpaceError, ParameterError
from mer_tfx.synthetic import GENRES, README_MARKER, make_synthetic_4q, plan_clip

RATE = 22050


def _files(root):
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """4 clips per quadrant of 6 s, one short clip, one corrupt file."""
    root = tmp_path_factory.mktemp("syn") / "data"
    make_synthetic_4q(root, clips_per_quadrant=4, seconds=6.0, seed=0)
    return root


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = make_synthetic_4q(tmp_path / "a", clips_per_quadrant=2, seconds=2.0, seed=7, short_clips=2)
    b = make_synthetic_4q(tmp_path / "b", clips_per_quadrant=2, seconds=2.0, seed=7, short_clips=2)
    files_a, files_b = _files(a), _files(b)
    assert len(files_a) == 4 * 2 + 1 + 1 + 3  # clips, silent, corrupt, two CSVs and README
    assert files_a == files_b
    c = make_synthetic_4q(tmp_path / "c", clips_per_quadrant=2, seconds=2.0, seed=8, short_clips=2)
    files_c = _files(c)
    assert files_c.keys() == files_a.keys()
    assert files_c["Q1/SYN_0000.wav"] != files_a["Q1/SYN_0000.wav"]


def test_layout_is_read_as_4q_with_the_corrupt_file_as_a_record(dataset):
    index = read_dataset(dataset)
    assert index.layout == "4q"
    assert index.skipped == []  # read_dataset lists files; it does not decode them
    assert index.quadrant_counts() == {"Q1": 5, "Q2": 4, "Q3": 5, "Q4": 4}
    corrupt = [r for r in index.records if "CORRUPT" in r.song_id]
    assert [(r.song_id, r.quadrant) for r in corrupt] == [("SYN_CORRUPT_000", "Q1")]
    with pytest.raises(AudioLoadError, match="SYN_CORRUPT_000.wav"):
        load_audio(corrupt[0].path, sample_rate=RATE)
    for quadrant in ("Q1", "Q2", "Q3", "Q4"):  # both fake genres in every quadrant
        genres = {r.metadata["genre"] for r in index.records if r.quadrant == quadrant}
        assert genres == set(GENRES)


def test_clips_decode_and_one_is_short(dataset):
    index = read_dataset(dataset)
    durations = {}
    for record in index.records:
        if "CORRUPT" in record.song_id:
            continue
        info = soundfile.info(record.path)
        assert (info.samplerate, info.channels, info.subtype) == (RATE, 1, "PCM_16")
        durations[record.song_id] = info.frames / info.samplerate
    short = [song for song, seconds in durations.items() if seconds < 6.0]
    assert short == ["SYN_0003"]  # the last clip of Q1
    assert durations["SYN_0003"] == pytest.approx(2.4)  # 40 % of 6 s
    short_path = next(r.path for r in index.records if r.song_id == "SYN_0003")
    clip = load_clip(short_path, sample_rate=RATE, clip_seconds=6.0)
    n = int(2.4 * RATE)
    np.testing.assert_array_equal(clip[n : 2 * n], clip[:n])  # looped from its start


def test_readme_says_synthetic_and_lists_the_defects(dataset):
    text = (dataset / "README.txt").read_text()
    assert text.startswith(README_MARKER)
    assert "NOT REAL MUSIC" in text
    assert "SYN_0003" in text and "Q1/SYN_CORRUPT_000.wav" in text
    assert "major" in text and "minor" in text and "BPM" in text


def _clips_by_quadrant(root):
    out = {}
    for record in read_dataset(root).records:
        if "CORRUPT" not in record.song_id and "SILENT" not in record.song_id:
            out.setdefault(record.quadrant, []).append(load_audio(record.path, sample_rate=RATE))
    return out


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _centroid(x):
    spectrum = np.abs(np.fft.rfft(x))
    freqs = np.fft.rfftfreq(len(x), 1.0 / RATE)
    return float((spectrum * freqs).sum() / spectrum.sum())


def _pitch_class_energy(x):
    """Spectral energy folded onto the 12 pitch classes (60 Hz - 2 kHz)."""
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / RATE)
    band = (freqs > 60) & (freqs < 2000)
    pitch_class = np.round(12 * np.log2(freqs[band] / 440.0) + 69).astype(int) % 12
    return np.bincount(pitch_class, weights=power[band], minlength=12)


def test_high_arousal_is_louder_and_brighter(dataset):
    clips = _clips_by_quadrant(dataset)
    high = clips["Q1"] + clips["Q2"]
    low = clips["Q3"] + clips["Q4"]
    # Target loudness ranges are 0.11-0.22 vs 0.035-0.12 RMS: the means differ by > 1.5x.
    assert np.mean([_rms(x) for x in high]) > 1.5 * np.mean([_rms(x) for x in low])
    # Many harmonics plus noise bursts vs 1-4 weak harmonics: measured ~3.4 kHz vs ~1.2 kHz.
    assert np.mean([_centroid(x) for x in high]) > 1.5 * np.mean([_centroid(x) for x in low])
    # Loudness alone should classify most clips (classes may overlap a little).
    threshold = np.median([_rms(x) for x in high + low])
    correct = sum(_rms(x) > threshold for x in high) + sum(_rms(x) <= threshold for x in low)
    assert correct >= 0.75 * len(high + low)


def test_high_valence_is_major_and_low_valence_is_minor(dataset):
    index = read_dataset(dataset)
    per_quadrant_index = {}
    for record in index.records:
        if "CORRUPT" in record.song_id or "SILENT" in record.song_id:
            continue
        i = per_quadrant_index.get(record.quadrant, 0)
        per_quadrant_index[record.quadrant] = i + 1
        seconds = 6.0 if record.song_id != "SYN_0003" else 2.4
        plan = plan_clip(quadrant=record.quadrant, index=i, seed=0, seconds=seconds)
        energy = _pitch_class_energy(load_audio(record.path, sample_rate=RATE))
        tonic = plan.tonic_midi % 12
        major_third, minor_third = energy[(tonic + 4) % 12], energy[(tonic + 3) % 12]
        # Only scale notes are played, so the other third gets energy only from upper
        # harmonics and drum noise: the smallest ratio over 5 seeds x 32 clips of 6 s was 3.5.
        if record.quadrant in ("Q1", "Q4"):
            assert plan.mode == "major"
            assert major_third > 2 * minor_third, record.song_id
        else:
            assert plan.mode == "minor"
            assert minor_third > 2 * major_third, record.song_id


def test_tempo_ranges_follow_arousal():
    for quadrant in ("Q1", "Q2", "Q3", "Q4"):
        for index in range(20):
            plan = plan_clip(quadrant=quadrant, index=index, seed=3)
            if quadrant in ("Q1", "Q2"):
                assert 140 <= plan.tempo_bpm <= 170 and plan.drums
            else:
                assert 60 <= plan.tempo_bpm <= 80 and not plan.drums


def test_rewriting_a_synthetic_dataset_replaces_it(tmp_path):
    root = make_synthetic_4q(tmp_path / "d", clips_per_quadrant=3, seconds=1.0)
    make_synthetic_4q(
        root, clips_per_quadrant=1, seconds=1.0, short_clips=0, silent_clips=0, corrupt_files=0
    )
    index = read_dataset(root)
    assert len(index.records) == 4 and index.skipped == []


def test_refuses_a_folder_with_other_files(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    (tmp_path / "Q1").mkdir()  # a name the writer uses: listed after the one in the way
    (tmp_path / "Q2").mkdir()
    (tmp_path / "Q3").mkdir()
    with pytest.raises(ParameterError, match="must be empty") as raised:
        make_synthetic_4q(tmp_path, clips_per_quadrant=1, seconds=1.0)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    # The message names what is in the way and what to do about it.
    assert "'mine.txt'" in str(raised.value) and "Pass a new or empty folder" in str(raised.value)


TINY = dict(clips_per_quadrant=1, seconds=1.0, short_clips=0, silent_clips=0, corrupt_files=0)


_siblings = write_aside.siblings


def test_a_write_killed_before_its_rename_does_not_block_the_next(tmp_path):
    out = tmp_path / "synthetic_data"
    staging, _ = _siblings(out)
    (staging / "Q1").mkdir(parents=True)  # what a killed write leaves: an incomplete copy
    (staging / "Q1" / "SYN_0000.wav").write_bytes(b"RIFF")
    make_synthetic_4q(out, **TINY)
    assert len(read_dataset(out).records) == 4
    assert not staging.exists()


def test_a_dataset_cut_short_in_place_is_replaced(tmp_path):
    """Earlier versions wrote in place: a killed run left Q?/SYN_*.wav and no README."""
    out = tmp_path / "synthetic_data"
    (out / "Q1").mkdir(parents=True)
    (out / "Q1" / "SYN_0000.wav").write_bytes(b"RIFF")
    (out / "Q2").mkdir()
    make_synthetic_4q(out, **TINY)
    index = read_dataset(out)
    assert len(index.records) == 4 and index.skipped == []


def test_a_write_killed_during_the_swap_keeps_or_restores_a_dataset(tmp_path):
    out = tmp_path / "synthetic_data"
    make_synthetic_4q(out, **TINY)
    before = _files(out)
    _, replaced = _siblings(out)
    # Killed between renaming the old dataset aside and renaming the new one in.
    out.rename(replaced)
    with pytest.raises(ParameterError):  # a bad argument: the call stops after its recovery
        make_synthetic_4q(out, clips_per_quadrant=0)
    assert not out.exists() and replaced.exists()  # arguments are checked before any change
    make_synthetic_4q(out, **TINY)
    assert _files(out) == before and not replaced.exists()


def test_recovery_returns_what_it_removed_and_not_what_it_put_back(tmp_path):
    out = tmp_path / "data"
    staging, replaced = _siblings(out)
    staging.mkdir()
    replaced.mkdir()  # the new set never reached `out`: the old one goes back
    assert write_aside.recover_interrupted_write(out) == [staging]
    assert out.is_dir() and not replaced.exists() and not staging.exists()
    replaced.mkdir()  # `out` is the new set: the old one is removed
    assert write_aside.recover_interrupted_write(out) == [replaced]
    assert write_aside.recover_interrupted_write(out) == []


def test_an_interrupted_write_leaves_the_previous_dataset(tmp_path, monkeypatch):
    out = tmp_path / "synthetic_data"
    make_synthetic_4q(out, **TINY)
    before = _files(out)
    calls = []

    def write_then_stop(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        soundfile.write(path, *args, **kwargs)

    monkeypatch.setattr(
        synthetic,
        "soundfile",
        namedtuple("Sf", "write LibsndfileError")(write_then_stop, soundfile.LibsndfileError),
    )
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_4q(out, **{**TINY, "seed": 1})
    assert _files(out) == before
    assert not any(p.exists() for p in _siblings(out))


def _failing_write(error):
    def write(path, *args, **kwargs):
        raise error

    return namedtuple("Sf", "write LibsndfileError")(write, soundfile.LibsndfileError)


def test_a_full_disk_says_where_and_how_much_space_is_needed(tmp_path, monkeypatch):
    out = tmp_path / "synthetic_data"
    error = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(synthetic, "soundfile", _failing_write(error))
    with pytest.raises(NoSpaceError) as raised:
        make_synthetic_4q(out, clips_per_quadrant=10, seconds=30.0, sample_rate=22050)
    message = str(raised.value)
    # 39 clips, one short (40 %) and one silent: 40.4 x 30 s x 22050 Hz x 2 bytes, and headers.
    assert message.startswith(f"No space left on device while writing {str(out)!r}")
    assert "need about 53.5 MB" in message and "MB free" in message
    assert isinstance(raised.value, OSError)  # file system handlers still catch it
    assert out.is_dir() and not any(out.iterdir())
    assert not any(p.exists() for p in _siblings(out))


def test_libsndfile_system_error_is_a_full_disk_only_when_space_is_short(tmp_path, monkeypatch):
    out = tmp_path / "synthetic_data"
    monkeypatch.setattr(synthetic, "soundfile", _failing_write(soundfile.LibsndfileError(2)))
    with pytest.raises(soundfile.LibsndfileError):  # enough space: the error is something else
        make_synthetic_4q(out, **TINY)
    usage = namedtuple("Usage", "total used free")(10**9, 10**9 - 1000, 1000)
    monkeypatch.setattr(write_aside.shutil, "disk_usage", lambda path: usage)
    with pytest.raises(NoSpaceError, match=r"need about 0\.\d MB \(0\.0 MB free\)"):
        make_synthetic_4q(out, **TINY)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"clips_per_quadrant": 0}, "clips_per_quadrant"),
        ({"seconds": 0.0}, "seconds"),
        ({"short_clips": 5, "clips_per_quadrant": 1}, "short_clips"),
        ({"corrupt_files": -1}, "corrupt_files"),
        ({"silent_clips": -1}, "silent_clips"),
        ({"sample_rate": 22050.5}, "sample_rate"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        make_synthetic_4q(tmp_path / "x", **kwargs)


def test_mer_synth_command(tmp_path, capsys):
    from mer_tfx.cli import main

    out = tmp_path / "demo"
    code = main(["synth", str(out), "--clips-per-quadrant", "1", "--seconds", "1", "--seed", "3"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "Q1=2" in printed and "Q1/SYN_CORRUPT_000.wav" in printed
    assert read_dataset(out).quadrant_counts() == {"Q1": 2, "Q2": 1, "Q3": 2, "Q4": 1}
    # Errors come back as exit code 1 with the message, not a traceback.
    assert main(["synth", str(out / "x"), "--clips-per-quadrant", "0"]) == 1
    assert "clips_per_quadrant" in capsys.readouterr().err


def test_the_silent_clip_is_digital_silence_of_full_length_in_q3(dataset):
    index = read_dataset(dataset)
    silent = [r for r in index.records if "SILENT" in r.song_id]
    assert [(r.song_id, r.quadrant) for r in silent] == [("SYN_SILENT_000", "Q3")]
    clip = load_audio(silent[0].path, sample_rate=RATE)
    assert clip.shape == (6 * RATE,) and not clip.any()
    assert "SYN_SILENT_000" in (dataset / "README.txt").read_text()
