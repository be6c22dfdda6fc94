"""`mer pipeline` killed at named points, then run again with the same command.

Each case runs `mer pipeline` in a process group of its own with `MER_FAULT_AT` set
(`mer_tfx.faults`), checks that it died and that the component it cut is not COMPLETE in
ML Metadata, runs the same command without the fault, and checks that it ends well: exit
code 0, the cut component ran again, a blessed model in the serving folder answers
`mer predict`'s call, and nothing is left behind (`harness.leftovers`). Also: a full disk
while the Trainer writes, and two runs started at once on one output folder.

The synthetic data is 2 clips per quadrant, each stage trains one epoch (two for the
heads where the Trainer must run again) and the gate's thresholds are 0. Each case
appends a row to the fault table (tests/faults/conftest.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from typing import Optional, Tuple

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

HEADS_AGAIN = ("--max-head-epochs", "2")  # a Trainer setting the base run did not use


@dataclasses.dataclass(frozen=True)
class Case:
    """One fault: where it strikes, what the run starts from, and what it cuts.

    Attributes:
        fault: the `MER_FAULT_AT` value.
        where: the table's "where" cell.
        start: "data" (the base run's synthetic data only) or "base" (the whole run).
        cut: the component the fault interrupts (or keeps from starting).
        cut_states: its states allowed in the killed run (None: no execution).
        reused: a component finished before the fault, reused by the rerun.
        flags: more `mer pipeline` flags, after the suite's quick ones.
        ends_with: "SIGKILL", or the exit code of an interrupted run.
    """

    fault: str
    where: str
    start: str
    cut: str
    cut_states: Tuple[Optional[str], ...]
    reused: Optional[str] = None
    flags: Tuple[str, ...] = ()
    ends_with: object = "SIGKILL"


CASES = [
    Case(
        "example_gen.song,SIGKILL,3",
        "inside AudioExampleGen (the third song decoded)",
        "data",
        cut="AudioExampleGen",
        cut_states=("RUNNING",),
    ),
    Case(
        "pipeline.after.AudioExampleGen",
        "between AudioExampleGen and the next component",
        "data",
        cut="LogMelTransform",
        cut_states=(None,),
        reused="AudioExampleGen",
    ),
    Case(
        "log_mel.batch",
        "inside LogMelTransform (a Beam batch)",
        "data",
        cut="LogMelTransform",
        cut_states=("RUNNING",),
        reused="AudioExampleGen",
    ),
    Case(
        "trainer.between_stages",
        "inside the Trainer, between stage 1 and stage 2",
        "base",
        cut="Trainer",
        cut_states=("RUNNING",),
        reused="LogMelTransform",
        flags=HEADS_AGAIN,
    ),
    Case(
        "trainer.between_stages,SIGINT",
        "inside the Trainer, between stage 1 and stage 2",
        "base",
        cut="Trainer",
        cut_states=("RUNNING", "FAILED"),
        reused="LogMelTransform",
        flags=HEADS_AGAIN,
        ends_with=130,
    ),
    Case(
        "pipeline.before.Pusher",
        "between the Evaluator and the Pusher",
        "base",
        cut="Pusher",
        cut_states=(None,),
        reused="Trainer",
    ),
]


def test_a_run_killed_while_writing_the_synthetic_data_recovers(base_run):
    """The first case is the base run itself (tests/faults/conftest.py): killed while it
    writes the synthetic data, then run again to the end."""
    assert harness.TABLE.rows[0].where.startswith("synthetic.write")
    assert harness.TABLE.rows[0].recovered


def _signal_name(fault: str) -> str:
    parts = fault.split(",")
    return parts[1].upper() if len(parts) > 1 else "SIGKILL"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.fault)
def test_a_killed_run_recovers_when_run_again(base_run, case):
    ws = base_run
    row = harness.TABLE.add(harness.Row(_signal_name(case.fault), case.where))
    out = ws.from_base() if case.start == "base" else ws.fresh(keep_data=True)
    command = ["pipeline", "--output", str(out), *harness.QUICK, *case.flags]
    before = harness.newest_id(out)

    killed = harness.run(command, fault=case.fault, cwd=ws.root)
    if case.ends_with == "SIGKILL":
        assert killed.killed_by == "SIGKILL", killed.describe()
    else:
        assert killed.returncode == case.ends_with, killed.describe()
        assert "mer pipeline: interrupted" in killed.output
    cut = harness.states_since(out, before)
    assert cut.get(case.cut) in case.cut_states, cut
    if case.reused:
        assert harness.states_since(out, 0).get(case.reused) in ("COMPLETE", "CACHED"), cut
    left = harness.leftovers(out)
    row.left = harness.summarise_left(left)

    between = harness.newest_id(out)
    rerun = harness.run(command, cwd=ws.root)
    row.seconds = killed.seconds + rerun.seconds
    assert rerun.returncode == 0, rerun.describe()
    again = harness.states_since(out, between)
    assert again[case.cut] == "COMPLETE", again  # it ran again
    if case.reused:
        assert again[case.reused] == "CACHED", again
    if any("in ML Metadata" in item for item in left):
        assert "mer pipeline: cleaned up after an interrupted run" in rerun.output
    assert harness.blessed_and_pushed(rerun), rerun.describe()
    harness.assert_serves(out / "serving_model" / "mer", ws.song())
    assert harness.leftovers(out) == []
    row.recovered = True


def _mount_tmpfs(folder, size_bytes: int, *, remount: bool = False) -> bool:
    """Mounts (or resizes) a tmpfs of `size_bytes` on `folder`; False when not allowed."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    options = f"{'remount,' if remount else ''}size={size_bytes // 1024}k"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


def _used(folder) -> int:
    usage = shutil.disk_usage(folder)
    return usage.total - usage.free


# Room beyond the synthetic data for the ExampleGen's and the transform's output (~29 MB
# on this data) and the log, not for the Trainer's model as well (~9 MB).
FULL_DISK_HEADROOM = 33 << 20


def test_a_full_disk_recovers_once_space_is_freed(base_run):
    """A real full disk when running as root with `mount`: the run writes on a tmpfs that
    fills up on the way (about where the Trainer writes its model), then the tmpfs is made
    larger, as when space is freed. Otherwise the write hook raises ENOSPC in the Trainer."""
    ws = base_run
    row = harness.TABLE.add(harness.Row("ENOSPC", "full disk"))
    out = ws.fresh()
    mounted = _mount_tmpfs(out, 1 << 30)
    try:
        if mounted:
            ws.fresh(keep_data=True)
            assert _mount_tmpfs(out, _used(out) + FULL_DISK_HEADROOM, remount=True)
            command = ["pipeline", "--output", str(out), *harness.QUICK]
            full = harness.run(command, cwd=ws.root)
        else:
            ws.from_base()
            command = ["pipeline", "--output", str(out), *harness.QUICK, *HEADS_AGAIN]
            full = harness.run(command, fault="trainer.between_stages,ENOSPC", cwd=ws.root)
        assert full.returncode == 1, full.describe()
        # "... no space left on device[ while writing <file> (<N> MB free there)]: ..."
        assert "mer pipeline: error: no space left on device" in full.output, full.describe()
        assert "free some space, then run the same command again" in full.output, full.describe()
        cut = [e for e in harness.executions(out) if e.state not in ("COMPLETE", "CACHED")]
        assert len(cut) == 1, cut  # the component that was writing: FAILED, or RUNNING when
        (cut,) = cut  # the disk was too full for ML Metadata to record its end
        how = "a tmpfs filled up" if mounted else "the write hook raised ENOSPC"
        row.where = f"full disk ({how}) in {cut.node}"
        row.left = harness.summarise_left(harness.leftovers(out))
        if mounted:
            assert _mount_tmpfs(out, _used(out) + (300 << 20), remount=True)  # space freed
        between = harness.newest_id(out)
        rerun = harness.run(command, cwd=ws.root)
        row.seconds = full.seconds + rerun.seconds
        assert rerun.returncode == 0, rerun.describe()
        assert harness.states_since(out, between)[cut.node] == "COMPLETE"
        assert harness.blessed_and_pushed(rerun), rerun.describe()
        harness.assert_serves(out / "serving_model" / "mer", ws.song())
        assert harness.leftovers(out) == []
        row.recovered = True
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=False)


def test_two_runs_at_once_on_one_output_folder(base_run):
    """The second run stops at once naming the first one's pid; the first ends well and
    its log is its own."""
    ws = base_run
    row = harness.TABLE.add(harness.Row("two runs at once", "one output folder"))
    out = ws.from_base()
    runs = harness.run_together(["pipeline", "--output", str(out), *harness.QUICK], cwd=ws.root)
    row.seconds = max(r.seconds for r in runs)
    winners = [r for r in runs if r.returncode == 0]
    assert len(winners) == 1, "\n".join(r.describe() for r in runs)
    (winner,), (loser,) = winners, [r for r in runs if r is not winners[0]]
    refusal = (
        f"mer pipeline: error: another mer pipeline (pid {winner.pid}) is writing {out}: "
        "wait for it to end, or give this one another output"
    )
    assert loser.returncode == 1 and loser.output.splitlines() == [refusal], loser.describe()
    assert loser.seconds < winner.seconds
    row.left = "nothing: the second run stopped at once, naming the first one's pid (exit 1)"
    log = (out / "mer-pipeline.log").read_text(errors="replace")
    assert log.count("mer pipeline: output ") == 1 and "is writing" not in log
    assert harness.blessed_and_pushed(winner), winner.describe()
    harness.assert_serves(out / "serving_model" / "mer", ws.song())
    assert harness.leftovers(out) == []
    row.recovered = True
