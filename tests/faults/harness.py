"""The fault suite's tools: run a `mer` command in a process group of its own (with or
without `MER_FAULT_AT`), read ML Metadata's executions, list what a killed run left, and
keep the fault table.

Nothing here imports TensorFlow: the commands run in child processes, and the tests
read ML Metadata's SQLite file directly.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from mer_tfx import faults

PIPELINE = "mer-tfx"
# ML Metadata's Execution.State numbers (metadata_store_pb2.Execution.State).
STATES = {
    0: "UNKNOWN",
    1: "NEW",
    2: "RUNNING",
    3: "COMPLETE",
    4: "FAILED",
    5: "CACHED",
    6: "CANCELED",
}
UNFINISHED = ("UNKNOWN", "NEW", "RUNNING")
# One epoch per stage and the gate at 0: the suite checks recovery, not the model.
QUICK = (
    "--clips-per-quadrant",
    "2",
    "--max-ae-epochs",
    "1",
    "--max-head-epochs",
    "1",
    "--accuracy-threshold",
    "0",
    "--f1-threshold",
    "0",
)
RUN_TIMEOUT = 420  # seconds; a run that hangs fails its case instead of the whole suite


@dataclasses.dataclass
class Run:
    """One finished `mer` command."""

    args: List[str]
    returncode: int
    output: str
    seconds: float
    pid: int

    @property
    def killed_by(self) -> Optional[str]:
        """The signal's name when a signal ended it, else None."""
        return signal.Signals(-self.returncode).name if self.returncode < 0 else None

    def describe(self) -> str:
        return f"mer {' '.join(self.args)} -> {self.returncode}\n{self.output[-4000:]}"


def command_env(fault: Optional[str] = None) -> Dict[str, str]:
    """This environment without the MER_* variables (the suite names every path), with
    `MER_FAULT_AT` when a fault is asked for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MER_")}
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if fault:
        env[faults.ENV_FAULT_AT] = fault
    return env


def start(args: Sequence[str], *, fault: Optional[str] = None, cwd: Path) -> subprocess.Popen:
    """`mer <args>` in a new session (its own process group: a fault kills that group)."""
    return subprocess.Popen(
        [sys.executable, "-m", "mer_tfx.cli", *args],
        cwd=cwd,
        env=command_env(fault),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=_as_from_a_terminal,
    )


def _as_from_a_terminal() -> None:
    """Ctrl-C interrupts, as in a terminal: a test run started in the background (`&`
    in a script) has SIGINT ignored, which its children would inherit."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(process: subprocess.Popen, args: Sequence[str], started: float) -> Run:
    """Waits for `process` (killing its group after RUN_TIMEOUT) and returns its `Run`."""
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        output += f"\n[fault suite] killed after {RUN_TIMEOUT} s"
    _reap_group(process.pid)
    return Run(list(args), process.returncode, output, time.monotonic() - started, process.pid)


def run(args: Sequence[str], *, fault: Optional[str] = None, cwd: Path) -> Run:
    started = time.monotonic()
    return finish(start(args, fault=fault, cwd=cwd), args, started)


def run_together(args: Sequence[str], *, cwd: Path, delay: float = 1.0) -> List[Run]:
    """Two `mer <args>` started `delay` seconds apart; each `Run` timed from its own start."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(run, args, cwd=cwd)
        time.sleep(delay)
        second = pool.submit(run, args, cwd=cwd)
        return [first.result(), second.result()]


def _reap_group(pgid: int) -> None:
    """Kills what is left of a finished command's process group (a Beam worker that
    outlived a SIGINT), so no case leaks processes into the next."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ------------------------------------------------------------------ ML Metadata


@dataclasses.dataclass(frozen=True)
class Execution:
    id: int
    node: str
    state: str


def executions(output: Path, pipeline: str = PIPELINE) -> List[Execution]:
    """Every execution of `pipeline`'s nodes recorded in `<output>/tfx/metadata.sqlite`."""
    path = output / "tfx" / "metadata.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT e.id, c.name, e.last_known_state FROM Execution e "
            "JOIN Association a ON a.execution_id = e.id JOIN Context c ON c.id = a.context_id "
            "JOIN Type t ON t.id = c.type_id WHERE t.name = 'node' AND c.name LIKE ? "
            "ORDER BY e.id",
            (f"{pipeline}.%",),
        ).fetchall()
    return [
        Execution(i, name.removeprefix(f"{pipeline}."), STATES.get(s, str(s)))
        for i, name, s in rows
    ]


def newest_id(output: Path) -> int:
    return max((e.id for e in executions(output)), default=0)


def states_since(output: Path, after_id: int) -> Dict[str, str]:
    """node -> state of the executions recorded after execution `after_id` (one run's)."""
    return {e.node: e.state for e in executions(output) if e.id > after_id}


# ------------------------------------------------------------------ what is left


def leftovers(output: Path, *, pipeline: str = PIPELINE) -> List[str]:
    """What an interrupted run left in `output` that a finished one never leaves:
    unfinished executions in ML Metadata, folders of executions that are not COMPLETE,
    TFX's scratch folders, `beam-temp-*` folders, empty `Trainer/model/<N>`, a cut
    synthetic write, a serving version without its saved_model.pb, and `mer score`'s
    `.parts-*` folders and `.tmp` files. [] when there is none of these."""
    found = []
    by_id = {e.id: e for e in executions(output, pipeline)}
    found += [
        f"{e.node} execution {e.id} {e.state} in ML Metadata"
        for e in by_id.values()
        if e.state in UNFINISHED
    ]
    root = output / "tfx" / pipeline
    if root.is_dir():
        for folder in sorted(p for p in root.glob("*/*/*") if p.is_dir() and p.name.isdigit()):
            node, key = folder.parent.parent.name, folder.parent.name
            execution = by_id.get(int(folder.name))
            if key == _SYSTEM_KEY:
                continue
            if execution is None or execution.state != "COMPLETE":
                state = execution.state if execution else "no execution"
                found.append(f"{_rel(folder, output)} ({state}, {_size(folder)})")
            elif node == "Trainer" and key == "model" and not any(folder.iterdir()):
                found.append(f"{_rel(folder, output)} (empty)")
        for scratch in sorted(root.glob("*/.system/executor_execution/*")):
            execution = by_id.get(int(scratch.name)) if scratch.name.isdigit() else None
            if execution is None or execution.state != "COMPLETE":
                found.append(f"{_rel(scratch, output)} (scratch)")
        found += [
            f"{_rel(p, output)} (scratch)"
            for p in sorted(root.glob("*/.system/stateful_working_dir/*"))
        ]
    found += [
        _rel(p, output)
        for p in sorted(output.rglob("beam-temp-*"))
        if not any(part.startswith(".") and ".parts-" in part for part in p.parts)
    ]
    found += [_rel(p, output) for p in sorted(output.glob(".synthetic_data.mer-*"))]
    serving = output / "serving_model"
    if serving.is_dir():
        found += [
            f"{_rel(v, output)} (no saved_model.pb)"
            for v in sorted(serving.glob("*/*"))
            if v.is_dir() and not (v / "saved_model.pb").exists()
        ]
    found += [_rel(p, output) for p in sorted(output.rglob(".*.parts-*"))]
    found += [_rel(p, output) for p in sorted(output.rglob(".*.tmp"))]
    return found


_SYSTEM_KEY = ".system"


def _rel(path: Path, output: Path) -> str:
    return path.relative_to(output).as_posix()


def _size(folder: Path) -> str:
    files = [p for p in folder.rglob("*") if p.is_file()]
    if not files:
        return "no files"
    return "1 file" if len(files) == 1 else f"{len(files)} files"


# ------------------------------------------------------------------ the served model


def newest_version(serving_base: Path) -> Path:
    versions = sorted(
        (p for p in serving_base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )
    assert versions, f"no version under {serving_base}"
    return versions[-1]


def assert_serves(serving_base: Path, song: Path) -> str:
    """The newest version under `serving_base` is complete and answers `mer predict`'s
    call (`mer_tfx.predict`) on `song`; returns its quadrant."""
    import mer_tfx

    version = newest_version(serving_base)
    assert (version / "saved_model.pb").exists() and (version / "variables").is_dir(), version
    (prediction,) = mer_tfx.predict(str(song), model=str(version))
    assert prediction.quadrant in {"Q1", "Q2", "Q3", "Q4"}, prediction
    return prediction.quadrant


def blessed_and_pushed(run_: Run) -> bool:
    return (
        "model BLESSED" in run_.output and re.search(r"pushed model \S+", run_.output) is not None
    )


# ------------------------------------------------------------------ the table


@dataclasses.dataclass
class Row:
    """One case of the fault table."""

    fault: str
    where: str
    recovered: bool = False
    left: str = "(not reached)"
    seconds: float = 0.0
    note: str = ""


class FaultTable:
    """The rows of the session's cases, in the order they ran."""

    def __init__(self) -> None:
        self.rows: List[Row] = []
        self.folder: Optional[Path] = None  # where fault_table.md goes (pytest's base temp)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def markdown(self) -> str:
        lines = [
            "| fault | where | recovered | what the interrupted run left (the rerun cleaned it) | seconds |",
            "|---|---|---|---|---|",
        ]
        for row in self.rows:
            recovered = "yes" if row.recovered else "**NO**"
            left = row.left + (f" ({row.note})" if row.note else "")
            lines.append(
                f"| {row.fault} | {row.where} | {recovered} | {left} | {row.seconds:.0f} |"
            )
        return "\n".join(lines) + "\n"


TABLE = FaultTable()


def summarise_left(items: Sequence[str], *, limit: int = 6) -> str:
    """A table cell: the leftovers, short (paths from the pipeline root, no uuids), the
    `beam-temp-*` folders counted."""
    if not items:
        return "nothing"
    temp = [item for item in items if "beam-temp-" in item]
    short = [
        _UUID.sub("UUID", item.replace(f"tfx/{PIPELINE}/", ""))
        for item in items
        if item not in temp
    ]
    if temp:
        short.append(f"{len(temp)} beam-temp-* folder(s)")
    shown = "; ".join(short[:limit])
    return shown + (f"; and {len(short) - limit} more" if len(short) > limit else "")


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
