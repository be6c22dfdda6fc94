"""`mer score` killed while it scores and while it writes its output, then run again:
every song of the catalog ends up exactly once in the output or in the skipped list,
the output of an earlier run is never lost or half-written, and the hidden shard
folders and temporary file of the killed run are gone.

The catalog grows between the two cases (half of the base run's synthetic songs, then
all of them), as a catalog does, so the second case has an earlier output to protect.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.e2e, pytest.mark.faults]


@pytest.fixture(scope="module")
def scoring(base_run):
    """(workspace, catalog folder, output file); the catalog holds Q1 and Q2 to begin with."""
    folder = base_run.root / "score"
    catalog = folder / "catalog"
    for quadrant in ("Q1", "Q2"):
        shutil.copytree(base_run.base / "synthetic_data" / quadrant, catalog / quadrant)
    return base_run, catalog, folder / "scores.csv"


def _command(ws, catalog: Path, out: Path):
    model = ws.base / "serving_model" / "mer"
    return ["score", str(catalog), "--model-base-path", str(model), "--output", str(out)]


def _assert_every_song_once(catalog: Path, out: Path) -> int:
    """Each audio file of `catalog` is in `out` or its skipped list, once; returns the rows."""
    songs = {str(p.resolve()) for p in catalog.rglob("*.wav")}
    with out.open(newline="") as f:
        scored = [row["path"] for row in csv.DictReader(f)]
    with out.with_name(out.name + ".skipped.csv").open(newline="") as f:
        skipped = [row["path"] for row in csv.DictReader(f)]
    assert len(scored) == len(set(scored)), "a song is in the output twice"
    assert not set(scored) & set(skipped)
    assert set(scored) | set(skipped) == songs
    return len(scored)


def _kill_and_rerun(ws, catalog, out, *, fault: str, where: str):
    row = harness.TABLE.add(harness.Row("SIGKILL", where))
    command = _command(ws, catalog, out)
    before = out.read_bytes() if out.exists() else None

    killed = harness.run(command, fault=fault, cwd=ws.root)
    assert killed.killed_by == "SIGKILL", killed.describe()
    assert (out.read_bytes() if out.exists() else None) == before  # never half a file
    left = harness.leftovers(out.parent)
    row.left = harness.summarise_left(left)
    assert left, "the killed run was expected to leave its shards or temporary file"

    rerun = harness.run(command, cwd=ws.root)
    row.seconds = killed.seconds + rerun.seconds
    assert rerun.returncode == 0, rerun.describe()
    assert "mer score: removed what an interrupted run left beside the output" in rerun.output
    rows = _assert_every_song_once(catalog, out)
    assert harness.leftovers(out.parent) == []
    row.recovered = True
    return rows


def test_killed_while_scoring(scoring):
    ws, catalog, out = scoring
    rows = _kill_and_rerun(
        ws, catalog, out, fault="score.song", where="mer score, scoring a song (on a Beam worker)"
    )
    assert rows == 4  # Q1 and Q2's clips; the corrupt file is skipped


def test_killed_during_the_final_write(scoring):
    ws, catalog, out = scoring
    assert out.exists()  # from the case above: the output to protect
    for quadrant in ("Q3", "Q4"):  # the catalog grows
        shutil.copytree(ws.base / "synthetic_data" / quadrant, catalog / quadrant)
    rows = _kill_and_rerun(
        ws, catalog, out, fault="score.write", where="mer score's final write (before the rename)"
    )
    assert rows == 8  # every clip; the corrupt and the silent file are skipped
