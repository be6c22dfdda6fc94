"""The fault suite's shared run and its table.

Every pipeline case starts from one completed run (`base_run`, made once per session by
the first case: a run killed while it writes the synthetic data, then run again), copied
into the same folder (`Workspace.run_dir`) for each case, because ML Metadata records
absolute paths: a copy elsewhere would point back at the original.

At the end of the session the fault table is printed and written to
`<pytest's base temp>/fault_table.md`, and to `--fault-table PATH` when given.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tests.faults import harness


@dataclasses.dataclass
class Workspace:
    """The session's folders: `run_dir`, where every pipeline case runs (always the same
    path), and `base`, a copy of the completed run that each case starts from."""

    root: Path
    run_dir: Path
    base: Path

    def fresh(self, *, keep_data: bool = False) -> Path:
        """An empty `run_dir`; with `keep_data`, holding only the base run's synthetic data."""
        _empty(self.run_dir)
        if keep_data:
            shutil.copytree(self.base / "synthetic_data", self.run_dir / "synthetic_data")
        return self.run_dir

    def from_base(self) -> Path:
        """`run_dir` holding a copy of the completed base run."""
        _empty(self.run_dir)
        shutil.copytree(self.base, self.run_dir, symlinks=True, dirs_exist_ok=True)
        return self.run_dir

    def song(self) -> Path:
        return next(iter(sorted((self.base / "synthetic_data" / "Q1").glob("SYN_0*.wav"))))


def _empty(folder: Path) -> None:
    if folder.exists():
        for child in folder.iterdir():  # the folder may be a mount point: keep it
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    folder.mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Workspace:
    root = tmp_path_factory.mktemp("faults")
    harness.TABLE.folder = tmp_path_factory.getbasetemp()
    return Workspace(root=root, run_dir=root / "run", base=root / "base")


@pytest.fixture(scope="session")
def base_run(workspace: Workspace) -> Workspace:
    """The first case, and the completed run every later case copies: `mer pipeline`
    without data, killed while it writes the synthetic dataset, then run again."""
    row = harness.TABLE.add(harness.Row("SIGKILL", "synthetic.write (writing the synthetic data)"))
    out = workspace.fresh()
    killed = harness.run(
        ["pipeline", "--output", str(out), *harness.QUICK],
        fault="synthetic.write",
        cwd=workspace.root,
    )
    assert killed.killed_by == "SIGKILL", killed.describe()
    left = harness.leftovers(out)
    row.left = harness.summarise_left(left)
    data = out / "synthetic_data"
    assert not data.exists() or not any(data.iterdir())  # never half a dataset in place
    assert ".synthetic_data.mer-writing" in left
    rerun = harness.run(["pipeline", "--output", str(out), *harness.QUICK], cwd=workspace.root)
    row.seconds = killed.seconds + rerun.seconds
    assert rerun.returncode == 0, rerun.describe()
    states = harness.states_since(out, 0)
    assert states and all(s == "COMPLETE" for s in states.values()), states
    assert harness.blessed_and_pushed(rerun), rerun.describe()
    assert harness.leftovers(out) == []
    shutil.copytree(out, workspace.base, symlinks=True)
    harness.assert_serves(workspace.base / "serving_model" / "mer", workspace.song())
    row.recovered = True
    return workspace


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not harness.TABLE.rows:
        return
    table = harness.TABLE.markdown()
    paths = [Path(harness.TABLE.folder) / "fault_table.md"]
    if config.getoption("fault_table", None):
        paths.append(Path(config.getoption("fault_table")))
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table)
    terminalreporter.write_sep("=", "fault table")
    terminalreporter.write(table)
    terminalreporter.write_line(f"written to {', '.join(str(p) for p in paths)}")
    failed = [row for row in harness.TABLE.rows if not row.recovered]
    if failed:
        terminalreporter.write_line(f"{len(failed)} fault(s) not recovered", red=True)
