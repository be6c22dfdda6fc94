"""`pipeline/local.py` runs as a script (as `python pipeline/local.py` and the tfx CLI run it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
    assert "DatasetError: The dataset path does not exist" in result.stderr, result.stderr[-3000:]
