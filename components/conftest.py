"""Tiny datasets in the three layouts, written as a few short sine-wave WAVs.

Each fixture folder also holds the awkward cases a real dataset has: a corrupt
file, an empty file and an annotated song whose audio is missing.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import soundfile as sf

from mer_tfx import presets

# A feature configuration small enough for tests: 3 s clips at 8 kHz in three
# 1 s segments (63 frames of 16 mels each).
TINY_FEATURES = presets.FeatureConfig(
    sample_rate=8000, segment_seconds=1, n_fft=256, hop_length=128, n_mels=16, clip_seconds=3
)
TINY_PRESET = presets.Preset(name="tiny-test", features=TINY_FEATURES)

QUADRANT_FREQUENCIES = {"Q1": 440.0, "Q2": 660.0, "Q3": 220.0, "Q4": 330.0}


def write_tone(
    path: Path, *, seconds: float, sample_rate: int, frequency: float, channels: int = 1
) -> Path:
    """Writes a quiet sine wave (16-bit PCM WAV) and returns its path."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = 0.3 * np.sin(2 * np.pi * frequency * t)
    if channels > 1:
        tone = np.stack([tone] * channels, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), tone, sample_rate, subtype="PCM_16")
    return path


def write_corrupt(path: Path) -> Path:
    """A .wav file whose bytes are not audio."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio" + bytes(range(64)))
    return path


def write_csv(path: Path, header: List[str], rows: List[List[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_4q(root: Path, *, per_quadrant: int = 3, corrupt: bool = True) -> Dict[str, object]:
    """4Q layout: Q1..Q4/<song>.wav, the annotations and metadata CSVs.

    Returns:
        dict(root, songs: {song_id: quadrant} of readable songs, bad: set of
        song ids that must be skipped).
    """
    songs: Dict[str, str] = {}
    rows, meta = [], []
    for q_index, (quadrant, frequency) in enumerate(QUADRANT_FREQUENCIES.items()):
        for i in range(per_quadrant):
            song_id = f"MT{q_index}{i:03d}"
            rate = (16000, 8000, 11025)[i % 3]
            write_tone(
                root / quadrant / f"{song_id}.wav",
                seconds=1.0 + 0.5 * i,
                sample_rate=rate,
                frequency=frequency * (1 + 0.1 * i),
                channels=1 + i % 2,
            )
            songs[song_id] = quadrant
            rows.append([song_id, quadrant])
            meta.append(
                [
                    song_id,
                    f"Artist {song_id}",
                    f"Title {song_id}",
                    quadrant,
                    ("Rock", "Jazz")[i % 2],
                ]
            )
    bad = set()
    if corrupt:
        write_corrupt(root / "Q1" / "MTbad001.wav")
        (root / "Q2" / "MTempty01.wav").write_bytes(b"")
        rows += [["MTbad001", "Q1"], ["MTempty01", "Q2"], ["MTmissing", "Q3"]]
        bad = {"MTbad001", "MTempty01", "MTmissing"}
    write_csv(root / "panda_dataset_taffc_annotations.csv", ["Song", "Quadrant"], rows)
    write_csv(
        root / "panda_dataset_taffc_metadata.csv",
        ["Song", "Artist", "Title", "Quadrant", "GenresStr"],
        meta,
    )
    return {"root": root, "songs": songs, "bad": bad}


def make_pmemo(root: Path, *, num_songs: int = 8) -> Dict[str, object]:
    """PMEmo layout: chorus/<musicId>.wav and annotations/static_annotations.csv.

    Valence and arousal form two clear clusters (low and high) so k-means finds
    a threshold between them. Song 999 is annotated without audio and a corrupt
    file, 998, is annotated too.
    """
    rng = np.random.default_rng(0)
    rows, songs = [], {}
    for i in range(num_songs):
        music_id = str(i + 1)
        high = i % 2
        valence = round(0.2 + 0.5 * high + 0.05 * rng.random(), 3)
        arousal = round(0.25 + 0.5 * high + 0.05 * rng.random(), 3)
        write_tone(
            root / "chorus" / f"{music_id}.wav",
            seconds=2.0,
            sample_rate=22050,
            frequency=300 + 50 * i,
        )
        rows.append([music_id, arousal, valence])
        songs[music_id] = (valence, arousal)
    write_corrupt(root / "chorus" / "998.wav")
    rows += [["998", 0.5, 0.5], ["999", 0.5, 0.5]]
    write_csv(
        root / "annotations" / "static_annotations.csv",
        ["musicId", "Arousal(mean)", "Valence(mean)"],
        rows,
    )
    return {"root": root, "songs": songs, "bad": {"998", "999"}}


def make_manifest(root: Path) -> Dict[str, object]:
    """A manifest CSV (path, quadrant, genre) over a few WAVs, one listed file absent."""
    rows, songs = [], {}
    for i, quadrant in enumerate(["Q1", "Q2", "Q3", "Q4", "Q1", "Q3"]):
        path = write_tone(
            root / "audio" / f"clip{i}.wav", seconds=1.5, sample_rate=16000, frequency=200 + 100 * i
        )
        rows.append([os.path.relpath(path, root), quadrant, ("pop", "metal")[i % 2]])
        songs[f"clip{i}"] = quadrant
    rows.append(["audio/absent.wav", "Q2", "pop"])
    manifest = write_csv(root / "manifest.csv", ["path", "quadrant", "genre"], rows)
    return {"root": manifest, "songs": songs, "bad": {"absent"}}


@pytest.fixture
def tiny_preset() -> presets.Preset:
    return TINY_PRESET


@pytest.fixture
def dataset_4q(tmp_path) -> Dict[str, object]:
    return make_4q(tmp_path / "4q")


@pytest.fixture
def dataset_pmemo(tmp_path) -> Dict[str, object]:
    return make_pmemo(tmp_path / "pmemo")


@pytest.fixture
def dataset_manifest(tmp_path) -> Dict[str, object]:
    return make_manifest(tmp_path / "manifest")


def song_dict(song_id: str, path, quadrant: str = "Q1", **extra) -> Dict[str, object]:
    """A song as the ExampleGen's PCollections carry it (`decode.record_to_song`)."""
    song = {
        "song_id": song_id,
        "path": str(path),
        "valence": None,
        "arousal": None,
        "valence_high": 1,
        "arousal_high": 1,
        "quadrant": quadrant,
        "metadata": {"genre": "Rock"},
    }
    song.update(extra)
    return song
