"""The TFX CLI route, `tfx pipeline create` then `tfx run create`, shows the
project's lines as `mer pipeline` does, and the libraries' output goes to a log.

The tfx CLI imports TensorFlow itself before it reads pipeline/local.py, so the lines
its own start-up prints come before its "Creating pipeline" / "Creating a run" line;
everything after that line is pipeline/local.py's and must have a console shape.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mer_tfx import console
from tests.test_console import _frames

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
TFX = Path(sys.executable).parent / "tfx"
# One epoch per stage and an open gate: this checks the route, not the model.
QUICK_FLAGS = "--max-ae-epochs 1 --max-head-epochs 1 --accuracy-threshold 0 --f1-threshold 0"


def _tfx(args, *, env, cwd) -> subprocess.CompletedProcess:
    """The tfx CLI, stdout and stderr in one stream in the order they were written."""
    return subprocess.run([str(TFX), *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)


def _after(output: str, line: str) -> list:
    """The frames written after the tfx CLI's own `line`."""
    frames = list(_frames(output))
    assert line in frames, output[-3000:]
    return frames[frames.index(line) + 1:]


def test_tfx_pipeline_create_and_run_create_print_the_projects_lines(tmp_path):
    name = f"mer-tfx-cli-{os.getpid()}"
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES", "MER_DATA", "MER_PRESET")}
    env.update(MER_OUTPUT=str(out), LOCAL_HOME=str(tmp_path / "tfx_home"),
               MER_PIPELINE_ARGS=f"--pipeline-name {name} {QUICK_FLAGS}")

    created = _tfx(["pipeline", "create", "--engine", "local",
                    "--pipeline_path", str(REPO / "pipeline" / "local.py")], env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stdout[-3000:]
    lines = _after(created.stdout, "Creating pipeline")
    assert lines[-2:] == [f'Pipeline "{name}" created successfully.', ""]
    compile_log = out / "mer-pipeline-compile.log"
    assert [f for f in lines[:-2] if not console.is_console_line(f)] == []
    assert lines[-3].endswith(f"is in {compile_log}") and compile_log.exists()
    assert (tmp_path / "tfx_home" / name / "pipeline_args.json").exists()

    ran = _tfx(["run", "create", "--engine", "local", "--pipeline_name", name],
               env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:]
    frames = _after(ran.stdout, f"Creating a run for pipeline: {name}")
    strays = [f for f in frames if not console.is_console_line(f)]
    assert strays == [], strays[:10]
    lines = [f for f in frames if f]
    for node in ("AudioExampleGen", "Trainer", "Evaluator", "Pusher"):
        assert any(re.search(rf"<== {node}: done in \d", line) for line in lines), node
    assert "=== evaluation (eval split) ===" in lines
    assert "mer pipeline: model BLESSED: it passed every accuracy/F1 threshold " \
           "and did not regress" in lines
    pushed = sorted((out / "serving_model" / "mer").glob("*/saved_model.pb"))
    assert len(pushed) == 1
    assert f"mer pipeline: pushed model {pushed[0].parent}" in lines
    log = out / "mer-pipeline.log"
    assert lines[-1] == f"mer pipeline: what the libraries printed is in {log}"
    assert "Component Trainer is running" in log.read_text()  # TFX's own account
