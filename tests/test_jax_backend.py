"""The Keras plugin on the JAX backend, in processes where TensorFlow cannot be imported.

`mer_tfx.layers` and `mer_tfx.models` use `keras.ops` only, so a researcher can
use them with JAX or PyTorch and no TensorFlow installed (and the paper-size
model trains on a GPU machine that has JAX but no TensorFlow). These tests run
the layer, model and feature tests, and the GPU script's smoke mode, with
KERAS_BACKEND=jax on the CPU, with tests/no_tensorflow/sitecustomize.py making
`import tensorflow` fail.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NO_TENSORFLOW = REPO / "tests" / "no_tensorflow"


def _jax_without_tensorflow() -> dict:
    env = dict(os.environ)
    env.update(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(NO_TENSORFLOW), str(REPO), env.get("PYTHONPATH", "")) if p
    )
    return env


def _run(args, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=_jax_without_tensorflow(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_tensorflow_cannot_be_imported_there():
    result = _run(["-c", "import tensorflow"], timeout=60)

    assert result.returncode != 0
    assert "blocked by tests/no_tensorflow" in result.stderr


def test_layer_model_and_feature_tests_pass_on_jax_without_tensorflow():
    result = _run(
        ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "mer_tfx/layers", "mer_tfx/models", "mer_tfx/features_test.py"],
        timeout=1200,
    )

    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    assert " passed" in result.stdout and " failed" not in result.stdout
    # Only the tf.data and run-time-length tests skip, for the reason they state.
    assert "TensorFlow backend only" in result.stdout, output


def test_gpu_script_smoke_mode_runs_on_jax_without_tensorflow():
    result = _run(["benchmarks/gpu_run.py", "--smoke"], timeout=900)

    output = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, output
    # The plugin's layers computed the features of the decoded clip 0 as librosa does.
    parity = re.search(r"max \|d\| from librosa on clip 0: (\S+)", result.stdout)
    assert parity and float(parity.group(1)) < 1e-4, output
    for row in ("float32 (default precision)", "float32 (precision highest)", "mixed_bfloat16"):
        assert row in result.stdout, output
    assert "valence: accuracy" in result.stdout and "arousal: accuracy" in result.stdout, output
