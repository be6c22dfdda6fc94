"""The model shipped in the package (`mer_tfx.pretrained`) and the commands that fall back to it.

A tiny fixture model stands in for the shipped one through MER_PRETRAINED_DIR, so
these tests need no real weights. Also: `import mer_tfx` stays free of TensorFlow
although `mer_tfx.predict` is one attribute away.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path, PurePosixPath

import pytest
import soundfile

from mer_tfx import cli, pretrained
from mer_tfx.errors import ParameterError
from tests.fixtures.serving import read_until_serving

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
NO_TENSORFLOW = REPO / "tests" / "no_tensorflow"
RATE = 22050  # the fixture's "small" preset
NOTICE_START = "using the shipped 4Q model (trained on the 4Q dataset, Panda et al. 2018;"


@pytest.fixture(scope="module")
def fixture_model(tmp_path_factory):
    """A folder in the shipped layout: `mer/1/` (a tiny model) and WEIGHTS_TERMS.md."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tests.fixtures.serving import write_pushed_model

    folder = tmp_path_factory.mktemp("pretrained")
    write_pushed_model(folder, model_name="mer", version=1, seed=0)
    (folder / "WEIGHTS_TERMS.md").write_text("research use only\n")
    return folder


@pytest.fixture
def shipped(fixture_model, monkeypatch):
    monkeypatch.setenv(pretrained.ENV_PRETRAINED_DIR, str(fixture_model))
    return fixture_model


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    from tests.fixtures.serving import music_like

    path = tmp_path_factory.mktemp("songs") / "song.wav"
    soundfile.write(path, music_like(seconds=3.0, sample_rate=RATE, seed=1), RATE)
    return path


# ------------------------------------------------------------------ mer_tfx.pretrained


def test_the_package_folder_is_the_default_and_the_variable_overrides_it(tmp_path, monkeypatch):
    monkeypatch.delenv(pretrained.ENV_PRETRAINED_DIR, raising=False)
    assert pretrained.model_base_path() == REPO / "mer_tfx" / "pretrained" / "mer"
    assert pretrained.weights_terms_path() == REPO / "mer_tfx" / "pretrained" / "WEIGHTS_TERMS.md"

    monkeypatch.setenv(pretrained.ENV_PRETRAINED_DIR, str(tmp_path))
    assert pretrained.model_base_path() == tmp_path / "mer"
    assert pretrained.model_card_path() == tmp_path / "MODEL_CARD.md"


def test_latest_version_is_the_highest_numeric_folder_holding_a_saved_model(tmp_path, monkeypatch):
    monkeypatch.setenv(pretrained.ENV_PRETRAINED_DIR, str(tmp_path))
    with pytest.raises(ParameterError, match="No model is shipped"):
        pretrained.latest_version_dir()
    assert not pretrained.is_shipped()

    for name in ("2", "10", ".staging-11", "12"):
        (tmp_path / "mer" / name).mkdir(parents=True)
    for name in ("2", "10", ".staging-11"):
        (tmp_path / "mer" / name / "saved_model.pb").write_bytes(b"")

    assert pretrained.versions() == [2, 10]  # 12 holds no SavedModel yet
    assert pretrained.latest_version_dir() == tmp_path / "mer" / "10"


def test_the_notice_is_one_console_line_naming_the_weights_terms(tmp_path, monkeypatch):
    from mer_tfx.console import is_console_line

    monkeypatch.setenv(pretrained.ENV_PRETRAINED_DIR, str(tmp_path))
    line = f"mer predict: {pretrained.notice()}"
    assert "\n" not in line and is_console_line(line)
    assert line.startswith(f"mer predict: {NOTICE_START}")
    assert "research use only" in line and str(tmp_path / "WEIGHTS_TERMS.md") in line


def test_a_wheel_carries_every_file_of_the_shipped_model(fixture_model):
    """The package-data patterns in pyproject.toml match each file a SavedModel export holds."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["mer_tfx"]
    files = [
        PurePosixPath("pretrained", path.relative_to(fixture_model).as_posix())
        for path in fixture_model.rglob("*")
        if path.is_file()
    ]
    assert any(f.name == "saved_model.pb" for f in files)
    assert any(f.parent.name == "variables" for f in files)
    missing = [str(f) for f in files if not any(f.match(p) for p in patterns)]
    assert missing == []


# ------------------------------------------------------------------ no TensorFlow on import


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_mer_tfx_imports_neither_tensorflow_nor_keras():
    result = _python(
        "import sys, mer_tfx\n"
        "assert callable(mer_tfx.predict) and callable(mer_tfx.predict_timeline)\n"
        "heavy = sorted({'tensorflow', 'keras'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    assert result.returncode == 0, result.stderr


def test_the_layers_import_no_tensorflow_on_another_backend():
    """With the TensorFlow backend Keras itself imports TensorFlow; on JAX nothing does."""
    path = os.pathsep.join(p for p in (str(NO_TENSORFLOW), os.environ.get("PYTHONPATH", "")) if p)
    result = _python(
        "import mer_tfx, mer_tfx.layers, sys\n"
        "mer_tfx.predict\n"
        "assert 'tensorflow' not in sys.modules\n",
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=path,
    )
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ the commands


def test_mer_predict_without_a_model_uses_the_shipped_one_and_says_so(shipped, song, capsys):
    code = cli.main(["predict", str(song), "--json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["file"] == str(song) and row["quadrant"] in {"Q1", "Q2", "Q3", "Q4"}
    notices = [line for line in err.splitlines() if NOTICE_START in line]
    assert notices == [f"mer predict: {pretrained.notice()}"]


def test_mer_predict_with_a_model_says_nothing_of_the_shipped_one(shipped, song, capsys):
    code = cli.main(["predict", str(song), "--model-base-path", str(shipped), "--json"])

    _, err = capsys.readouterr()
    assert code == 0, err
    assert NOTICE_START not in err


def test_mer_predict_without_a_shipped_model_is_a_clear_error(song, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pretrained.ENV_PRETRAINED_DIR, str(tmp_path))

    code = cli.main(["predict", str(song)])

    _, err = capsys.readouterr()
    assert code == 1
    assert "mer predict: error: No model is shipped" in err


def test_mer_score_without_a_model_uses_the_shipped_one(shipped, song, tmp_path, capsys):
    out = tmp_path / "scores.csv"

    code = cli.main(
        [
            "score",
            str(song.parent),
            "--output",
            str(out),
            "--beam-arg=--direct_running_mode=in_memory",
        ]
    )

    _, err = capsys.readouterr()
    assert code == 0, err
    from mer_tfx.scoring.catalog import read_scores

    assert [row["song_id"] for row in read_scores(out)] == ["song"]
    assert f"mer score: {pretrained.notice()}" in err.splitlines()


@pytest.mark.e2e
def test_mer_serve_without_a_model_serves_the_shipped_one(shipped, tmp_path):
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="2",
        CUDA_VISIBLE_DEVICES="-1",
        PYTHONUNBUFFERED="1",
        MER_OUTPUT=str(tmp_path),  # the log file
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "mer_tfx.cli", "serve", "--port", "0", "--poll-seconds", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        text = read_until_serving(process)
        assert f"model 'mer' from {shipped / 'mer'}: versions [1]" in text, text
        match = re.search(r"GET  (http://127\.0\.0\.1:\d+)/v1/models/mer\n", text)
        with urllib.request.urlopen(f"{match[1]}/v1/models/mer", timeout=30) as response:
            status = json.load(response)
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert f"mer serve: {pretrained.notice()}" in process.stderr.read().splitlines()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
