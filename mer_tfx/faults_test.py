"""The fault hook does nothing unless MER_FAULT_AT names the point, then acts on the n-th pass."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

from mer_tfx import faults


def test_nothing_happens_without_the_variable(monkeypatch):
    monkeypatch.delenv(faults.ENV_FAULT_AT, raising=False)
    faults.fault_point("score.write")


def test_another_point_is_left_alone(monkeypatch):
    monkeypatch.setenv(faults.ENV_FAULT_AT, "score.write,SIGKILL")
    faults.fault_point("score.song")  # would kill this test's process group otherwise


def test_enospc_is_raised_on_the_nth_pass(monkeypatch):
    monkeypatch.setenv(faults.ENV_FAULT_AT, "faults_test.enospc,ENOSPC,2")
    faults.fault_point("faults_test.enospc")
    with pytest.raises(OSError) as raised:
        faults.fault_point("faults_test.enospc")
    assert raised.value.errno == errno.ENOSPC
    faults.fault_point("faults_test.enospc")  # the third pass: only the second acts


@pytest.mark.parametrize(
    "value, expected",
    [
        ("trainer.between_stages", ("trainer.between_stages", "SIGKILL", 1)),
        ("score.song,sigint,3", ("score.song", "SIGINT", 3)),
        ("score.write,,2", ("score.write", "SIGKILL", 2)),
    ],
)
def test_parse(value, expected):
    assert faults.parse(value) == expected


@pytest.mark.parametrize("value", ["x,SIGSTOP", "x,SIGKILL,0"])
def test_parse_refuses_what_it_cannot_do(value):
    with pytest.raises(ValueError, match="MER_FAULT_AT"):
        faults.parse(value)


def test_sigkill_takes_the_whole_process_group(tmp_path):
    """A child of the killed process dies with it: Beam's workers do under `kill -9 -<pgid>`."""
    script = (
        "import subprocess, sys, time\n"
        "from mer_tfx import faults\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(tmp_path / 'child')!r}, 'w').write(str(child.pid))\n"
        "faults.fault_point('faults_test.kill')\n"
        "print('still alive')\n"
    )
    env = dict(os.environ, **{faults.ENV_FAULT_AT: "faults_test.kill"})
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert "still alive" not in result.stdout
    child = int((tmp_path / "child").read_text())
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # reaped by init; give it a moment
            os.kill(child, 0)
            time.sleep(0.1)
