"""Shared test fixtures: the location of ../shared/data and small 4Q layouts built from it;
the fault suite's `--fault-table PATH` option (tests/faults)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, List

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")


def pytest_addoption(parser):
    parser.addoption(
        "--fault-table",
        metavar="PATH",
        default=None,
        help="also write the fault suite's table (tests/faults) to PATH",
    )


def shared_data_dir() -> Path:
    """$MER_SHARED_DATA, else <repo>/../shared/data (may not exist)."""
    env = os.environ.get("MER_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder; skips the test when it is absent."""
    path = shared_data_dir()
    if not (path / "4q").is_dir():
        pytest.skip(f"shared data not found at {path} (set MER_SHARED_DATA)")
    return path


def pick_4q_clips(root: Path, *, per_quadrant: int = 4) -> Dict[str, List[Path]]:
    """`per_quadrant` clips of each quadrant, chosen to mix sample rates.

    Within each quadrant, files are sorted by name and taken round-robin over
    their header sample rates (soundfile.info), so every rate present appears.
    """
    import soundfile

    chosen: Dict[str, List[Path]] = {}
    for quadrant in QUADRANTS:
        by_rate: Dict[int, List[Path]] = {}
        for path in sorted((root / quadrant).glob("*.mp3")):
            try:
                rate = soundfile.info(str(path)).samplerate
            except RuntimeError:
                continue
            by_rate.setdefault(rate, []).append(path)
        picks: List[Path] = []
        queues = [by_rate[r] for r in sorted(by_rate)]
        while len(picks) < per_quadrant and any(queues):
            for queue in queues:
                if queue and len(picks) < per_quadrant:
                    picks.append(queue.pop(0))
        chosen[quadrant] = picks
    return chosen


def make_4q_subset(source: Path, target: Path, *, per_quadrant: int = 4) -> Path:
    """A 4Q-layout folder of symlinks to `per_quadrant` clips per quadrant of `source`.

    Writes the annotations CSV and the metadata rows (genres, for slicing) of the
    chosen songs.
    """
    chosen = pick_4q_clips(source, per_quadrant=per_quadrant)
    songs = set()
    for quadrant, paths in chosen.items():
        (target / quadrant).mkdir(parents=True, exist_ok=True)
        for path in paths:
            (target / quadrant / path.name).symlink_to(path)
            songs.add(path.stem)
    with open(target / "panda_dataset_taffc_annotations.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Song", "Quadrant"])
        for quadrant, paths in chosen.items():
            for path in paths:
                writer.writerow([path.stem, quadrant])
    metadata = source / "panda_dataset_taffc_metadata.csv"
    if metadata.exists():
        with open(metadata, newline="") as src, open(
            target / metadata.name, "w", newline=""
        ) as dst:
            reader = csv.DictReader(src)
            writer = csv.DictWriter(dst, fieldnames=reader.fieldnames, quoting=csv.QUOTE_ALL)
            writer.writeheader()
            for row in reader:
                if row.get("Song") in songs:
                    writer.writerow(row)
    return target


@pytest.fixture
def real_4q_subset(shared_data, tmp_path) -> Path:
    """16 real 4Q clips (4 per quadrant, mixed sample rates) in a temporary 4Q layout."""
    return make_4q_subset(shared_data / "4q", tmp_path / "4q", per_quadrant=4)
