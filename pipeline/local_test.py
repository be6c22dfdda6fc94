"""`pipeline/local.py` runs as a script (as `python pipeline/local.py` and the tfx CLI run it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import local

LOCAL_PY = Path(__file__).resolve().parent / "local.py"


def test_local_py_imports_the_packages_when_run_as_a_script(tmp_path):
    """Run as a script, pipeline/ comes first on sys.path; the packages must still resolve.

    A dataset path that does not exist stops it right after the imports and the layout,
    before any pipeline runs: the DatasetError shows that everything imported.
    """
    env = dict(os.environ, MER_DATA=str(tmp_path / "missing"), MER_OUTPUT=str(tmp_path / "out"),
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    result = subprocess.run(
        [sys.executable, str(LOCAL_PY)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "ImportError" not in result.stderr and "ModuleNotFoundError" not in result.stderr
    # `mer pipeline`'s error line; the traceback is in its log.
    assert result.stderr.startswith("mer pipeline: error: The dataset path does not exist"), \
        result.stderr[-3000:]
    assert "DatasetError" in (tmp_path / "out" / "mer-pipeline.log").read_text()


def test_pipeline_flags_come_from_the_environment_then_the_command_line(monkeypatch):
    monkeypatch.setenv(local.ENV_PIPELINE_ARGS, "--pipeline-name 'a b' --seed 1")
    assert local.pipeline_flags(["--seed", "2"]) == [
        "--pipeline-name", "a b", "--seed", "1", "--seed", "2"]
    monkeypatch.delenv(local.ENV_PIPELINE_ARGS)
    assert local.pipeline_flags([]) == []


@pytest.mark.e2e
def test_tfx_pipeline_create_stops_with_one_line_on_an_error(tmp_path):
    """`tfx pipeline create` builds the pipeline in the tfx CLI's own process: an error
    there is one console line naming the log that holds the traceback, and exit code 1."""
    out = tmp_path / "out"
    env = dict(os.environ, MER_DATA=str(tmp_path / "missing"), MER_OUTPUT=str(out),
               LOCAL_HOME=str(tmp_path / "tfx_home"))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tfx"), "pipeline", "create", "--engine", "local",
         "--pipeline_path", str(LOCAL_PY)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode != 0
    log = out / local.COMPILE_LOG
    lines = result.stderr.splitlines()
    assert "mer pipeline: error: The dataset path does not exist" in "\n".join(lines)
    assert f"mer pipeline: the traceback is in {log}" in lines
    assert "DatasetError" in log.read_text()
    assert "created successfully" not in result.stdout
