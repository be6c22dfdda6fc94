"""The console a user sees: the project's own lines on the terminal, the libraries' in a log.

Unit tests check the line shapes (`mer_tfx.console.LINE_FORMATS`) and that
`libraries_to_log` catches what is written to the file descriptors, also by C code
and child processes. The end-to-end test runs `bash scripts/pipeline.sh` as a user
does, without TF_CPP_MIN_LOG_LEVEL or CUDA_VISIBLE_DEVICES, and checks every line
that reaches the terminal.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mer_tfx import console

REPO = Path(__file__).resolve().parents[1]

# Lines the libraries print (copied from real runs), none of which may reach the console.
LIBRARY_LINES = [
    "2026-12-02 03:29:09.995038: E external/local_xla/xla/stream_executor/cuda/cuda_fft.cc:479] "
    "Unable to register cuFFT factory: Attempting to register factory for plugin cuFFT when one "
    "has already been registered",
    "2026-12-02 03:29:10.354318: I tensorflow/core/platform/cpu_feature_guard.cc:210] This "
    "TensorFlow binary is optimized to use available CPU instructions in performance-critical "
    "operations.",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
    "/work/main/.venv/lib/python3.10/site-packages/google/api_core/_python_version_support.py:246:"
    " FutureWarning: You are using a non-supported Python version (3.10.13).",
    "I1202 03:34:51.123456 140234 local_dag_runner.py:105] Component Trainer is running.",
    "WARNING:absl:You are saving your model as an HDF5 file via `model.save()`.",
    "INFO:tensorflow:Assets written to: /tmp/model/assets",
    "running bdist_wheel",
    "copying trainer_module.py -> build/lib",
    "Traceback (most recent call last):",
    "ValueError: something went wrong",
    "Epoch 1/10",
    "1/1 ━━━━━━━━━━━━━━━━━━━━ 0s 52ms/step - loss: 0.6931",
]

PROJECT_LINES = [
    "mer pipeline: data /out/synthetic_data (4q layout: 33 songs, Q1 9, Q2 8, Q3 8, Q4 8)",
    "mer pipeline: warning: Skipping /out/Q1/SYN_CORRUPT_000.wav (song SYN_CORRUPT_000): ...",
    "[03:35:07] ==> Trainer: running",
    "[03:36:56] <== Trainer: done in 108.7s",
    "[03:36:56] <== LogMelTransform: reused from TFX's cache",
    "[03:36:56] !!! Trainer: failed after 3.2s",
    "[mer trainer] 12 training songs: 10 fit, 2 validation; stage 1: 1 epochs in 22.8s",
    "=== evaluation (eval split) ===",
    "  overall                      arousal  binary_accuracy=0.500 f1_score=0.667 n=4",
    "",
    "stage 1 autoencoder: 0epoch [00:00, ?epoch/s]",
    "stage 1 autoencoder:   0%|          | 0/12 [00:00<?, ?epoch/s]",
    "stage 2 valence: 100%|██████████| 2/2 [00:19<00:00,  8.54s/epoch, best epoch 1: "
    "val_accuracy=0.5000]                         ",
    " 50%|#####     | 1/2 [00:16<00:16, 16.40s/epoch]",
]


@pytest.mark.parametrize("line", PROJECT_LINES)
def test_project_lines_have_a_console_shape(line):
    assert console.is_console_line(line)


@pytest.mark.parametrize("line", LIBRARY_LINES)
def test_library_lines_do_not(line):
    assert not console.is_console_line(line)


def _run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=REPO, timeout=120, **kwargs)


REDIRECTED = """
    import os, subprocess, sys
    from mer_tfx import console
    with console.libraries_to_log(sys.argv[1], echo=sys.argv[2] == "echo") as log:
        os.write(2, b"written by C code to fd 2\\n")
        os.write(1, b"written by C code to fd 1\\n")
        print("a library's print")
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('a child process\\\\n')"])
        console.say("mer test: the project's line")
        print("the result", file=console.out())
    print("after: back on stdout")
"""


def test_libraries_to_log_catches_fds_and_child_processes(tmp_path):
    log = tmp_path / "logs" / "mer-test.log"
    result = _run_python(REDIRECTED.replace("sys.argv[1]", repr(str(log)))
                         .replace('sys.argv[2] == "echo"', "False"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "the result\nafter: back on stdout\n"
    assert result.stderr == "mer test: the project's line\n"
    text = log.read_text()
    for line in ("written by C code to fd 2", "written by C code to fd 1", "a library's print",
                 "a child process", "mer test: the project's line"):
        assert line in text, text


def test_verbose_shows_the_libraries_live_and_keeps_the_log(tmp_path):
    log = tmp_path / "mer-test.log"
    result = _run_python(REDIRECTED.replace("sys.argv[1]", repr(str(log)))
                         .replace('sys.argv[2] == "echo"', "True"))
    assert result.returncode == 0, result.stderr
    for line in ("written by C code to fd 2", "a child process", "mer test: the project's line"):
        assert line in result.stderr and line in log.read_text()
    assert "the result" in result.stdout


def test_a_command_error_is_one_line_and_its_traceback_is_in_the_log(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mer_tfx.cli", "pipeline", "--data", str(tmp_path / "missing"),
         "--output", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("mer pipeline: error: The dataset path does not exist")
    assert "Traceback" in (tmp_path / "out" / "mer-pipeline.log").read_text()


def _frames(text: str):
    """The terminal's lines, each progress-bar redraw (after a carriage return) on its own."""
    for line in text.split("\n"):
        yield from line.split("\r")


def _venv_is_current() -> bool:
    """Whether scripts/bootstrap.sh would use .venv as it is (not reinstall it)."""
    stamp = REPO / ".venv" / ".mer-tfx-installed"
    sources = (REPO / "pyproject.toml").read_bytes() + (REPO / "constraints.txt").read_bytes()
    return stamp.exists() and stamp.read_text().strip() == hashlib.sha256(sources).hexdigest()


@pytest.mark.e2e
def test_pipeline_script_prints_only_the_projects_lines(tmp_path):
    if not _venv_is_current():
        pytest.skip(".venv is older than pyproject.toml/constraints.txt: scripts/pipeline.sh "
                    "would reinstall it (run scripts/bootstrap.sh first)")
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "CUDA_VISIBLE_DEVICES")}
    out = tmp_path / "out"
    result = subprocess.run(["bash", "scripts/pipeline.sh", "--output", str(out)], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]

    strays = [f for f in _frames(result.stdout + result.stderr) if not console.is_console_line(f)]
    assert strays == [], strays[:10]
    lines = (result.stdout + result.stderr).splitlines()
    assert any(line.startswith("mer pipeline: data ") for line in lines)
    for node in ("AudioExampleGen", "LogMelTransform", "Trainer", "Evaluator", "Pusher"):
        assert any(re.search(rf"==> {node}: running$", line) for line in lines), node
        assert any(re.search(rf"<== {node}: done in \d", line) for line in lines), node
    bars = [f for f in _frames(result.stderr) if re.search(r"\d+%\|", f)]
    assert any(f.startswith("AudioExampleGen: 100%|") for f in bars)  # one tick per file
    assert any("stage 1" in f for f in bars) and any("stage 2" in f for f in bars)
    assert "=== evaluation (eval split) ===" in lines
    assert any(re.match(r"mer pipeline: model (NOT )?BLESSED", line) for line in lines)
    assert any(re.match(r"mer pipeline: skipped 1 file\(s\)", line) for line in lines)
    log = out / "mer-pipeline.log"
    assert any(line.endswith(str(log)) for line in lines)

    text = log.read_text()
    # TensorFlow's C++ logger (its oneDNN notice; the CUDA lines where CUDA libraries exist)
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] ", text, re.M)
    assert "Component Trainer is running" in text  # TFX's own account, through absl
    # The Trainer's code is imported, not packaged: no setuptools build, no wheel.
    assert "bdist_wheel" not in text and not list(out.rglob("*.whl"))


def test_shared_progress_counts_items_from_child_processes(monkeypatch):
    import io

    drawn = io.StringIO()
    monkeypatch.setattr(console, "stream", lambda: drawn)
    with console.SharedProgress(total=3, desc="AudioExampleGen", unit="file",
                                interval_seconds=0.05) as shared:
        for _ in range(3):
            subprocess.run([sys.executable, "-c", "import sys; from mer_tfx import console; "
                            "console.advance(sys.argv[1])", shared.path], check=True, cwd=REPO)
    last = list(_frames(drawn.getvalue()))[-2]  # the bar's last frame, before its newline
    assert last.startswith("AudioExampleGen: 100%|") and " 3/3 " in last
    assert console.is_console_line(last)
    assert not os.path.exists(shared.path)
