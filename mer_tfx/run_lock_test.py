"""One run at a time per output: a second process is refused with the holder's pid; the
lock goes with its process, kill -9 included; the same process may take it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from mer_tfx import run_lock
from mer_tfx.errors import OutputBusyError

HOLD = (
    "import sys, time\n"
    "from mer_tfx import run_lock\n"
    "with run_lock.hold(sys.argv[1], holder='mer test', what='out'):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(60)\n"
)


def _holder(lock):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_process_is_refused_naming_the_first(tmp_path):
    lock = run_lock.folder_lock(tmp_path / "out", "mer-test")
    holder = _holder(lock)
    try:
        with pytest.raises(OutputBusyError, match=f"another mer test \\(pid {holder.pid}\\)"):
            with run_lock.hold(lock, holder="mer test", what="out"):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_kill_9_releases_it(tmp_path):
    lock = run_lock.file_lock(tmp_path / "scores.csv")
    holder = _holder(lock)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with run_lock.hold(lock, holder="mer test", what="out"):
        assert lock.read_text().strip() == str(os.getpid())


def test_the_same_process_may_hold_it_twice(tmp_path):
    lock = tmp_path / ".lock"
    with run_lock.hold(lock, holder="mer test", what="out"):
        with run_lock.hold(tmp_path / "." / ".lock", holder="mer test", what="out"):
            pass
        holder = subprocess.run(
            [sys.executable, "-c", HOLD, str(lock)], capture_output=True, text=True, timeout=60
        )
        assert "OutputBusyError" in holder.stderr  # still held after the inner block
    started = time.monotonic()
    with run_lock.hold(lock, holder="mer test", what="out"):
        assert time.monotonic() - started < 1
