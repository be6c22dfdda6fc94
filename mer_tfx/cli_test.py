"""The `mer` command line: help before anything heavy, argument errors before any work,
one name per option (old names kept hidden), `--version`, and output where the user is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mer_tfx
from mer_tfx import cli, console
from pipeline import configs

REPO = Path(__file__).resolve().parents[1]
MER = Path(sys.executable).with_name("mer")  # the installed console script


def _mer(*args: str, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Runs `mer ARGS` as a user does: TF_CPP_MIN_LOG_LEVEL and MER_OUTPUT unset."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("TF_CPP_MIN_LOG_LEVEL", configs.ENV_OUTPUT)}
    command = [str(MER)] if MER.exists() else [sys.executable, "-m", "mer_tfx.cli"]
    return subprocess.run([*command, *args], cwd=cwd, env={**environ, **env},
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_help_is_argparse_help_and_nothing_else(name, tmp_path):
    result = _mer(name, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no TensorFlow start-up lines: nothing heavy was imported
    assert result.stdout.startswith(f"usage: mer {name}")
    assert list(tmp_path.iterdir()) == []  # and no log or output folder written


def test_parsing_every_command_imports_nothing_heavy():
    code = ("import sys; from mer_tfx import cli\n"
            "for name in cli.COMMANDS: cli.command_parser(name).format_help()\n"
            "print(sorted({'tensorflow', 'keras', 'tfx', 'apache_beam'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_version_prints_the_package_version(tmp_path):
    result = _mer("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"mer {mer_tfx.__version__}\n"


@pytest.mark.parametrize("preset, named", [("nope", "'nope'"), ('{"sample_rate": ', "Malformed")])
def test_a_bad_preset_fails_before_any_work(preset, named, tmp_path):
    result = _mer("pipeline", "--preset", preset, "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2
    naming = [line for line in result.stderr.splitlines() if named in line]
    assert len(naming) == 1 and naming[0].startswith("mer pipeline: error: argument --preset: ")
    assert list(tmp_path.iterdir()) == []  # no output folder, no synthetic dataset, no log


def test_a_bad_number_fails_before_any_work(tmp_path):
    result = _mer("pipeline", "--max-ae-epochs", "many", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "mer pipeline: error: argument --max-ae-epochs: invalid int value: 'many'")
    assert list(tmp_path.iterdir()) == []


# (command, arguments with the old name, the same with the new name)
RENAMED = [
    ("pipeline", ["--ae-epochs", "3"], ["--max-ae-epochs", "3"]),
    ("pipeline", ["--head-epochs=2"], ["--max-head-epochs=2"]),
    ("experiment", ["data", "--out", "runs/a"], ["data", "--output", "runs/a"]),
    ("score", ["songs", "--out", "s.csv", "--model-base-path", "m"],
     ["songs", "--output", "s.csv", "--model-base-path", "m"]),
    ("score", ["songs", "--output", "s.csv", "--model-dir", "m"],
     ["songs", "--output", "s.csv", "--model-base-path", "m"]),
    ("predict", ["a.wav", "--model-dir", "m"], ["a.wav", "--model-base-path", "m"]),
]


@pytest.mark.parametrize("name, old, new", RENAMED)
def test_an_old_option_name_works_the_same_and_is_not_shown(name, old, new):
    parser = cli.command_parser(name)
    assert parser.parse_args(old) == parser.parse_args(new)
    old_name = next(a for a in old if a.startswith("--") and a not in new).split("=")[0]
    new_name = next(a for a in new if a.startswith("--") and a not in old).split("=")[0]
    shown = set(re.findall(r"--[\w-]+", parser.format_help()))
    assert new_name in shown and old_name not in shown


def test_an_old_name_satisfies_a_required_option_and_its_errors_use_the_new_name(capsys):
    parser = cli.command_parser("experiment")
    assert parser.parse_args(["data", "--out=runs/a"]).output == "runs/a"
    with pytest.raises(SystemExit):
        parser.parse_args(["data"])
    assert "the following arguments are required: --output" in capsys.readouterr().err


def test_the_log_goes_where_the_user_is(tmp_path, monkeypatch):
    monkeypatch.setattr(console, "std_is_fds", lambda: True)
    monkeypatch.delenv(configs.ENV_OUTPUT, raising=False)
    monkeypatch.chdir(tmp_path)

    def log(name, *args):
        return cli.log_file(name, cli.command_parser(name).parse_args(list(args)))

    assert log("serve", "--model-base-path", "m") == tmp_path / "outputs" / "mer-serve.log"
    assert log("predict", "a.wav", "--model-base-path", "m") == tmp_path / "outputs" / "mer-predict.log"
    assert log("predict", "a.wav", "--url", "http://localhost:8501") is None  # a client only
    assert log("predict", "a.wav", "--url", "http://x", "--log", "p.log") == tmp_path / "p.log"
    assert log("pipeline", "--output", "runs/p") == tmp_path / "runs" / "p" / "mer-pipeline.log"
    assert log("score", "songs", "--output", "scores/s.csv", "--model-base-path", "m") == (
        tmp_path / "scores" / "mer-score.log")
    assert log("synth") is None
    monkeypatch.setenv(configs.ENV_OUTPUT, str(tmp_path / "env"))
    assert log("serve", "--model-base-path", "m") == tmp_path / "env" / "mer-serve.log"
    assert log("pipeline", "--output", "given") == tmp_path / "given" / "mer-pipeline.log"


def _snapshot(folder: Path) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_default_output_is_under_the_current_folder_not_the_checkout(tmp_path):
    before = (sorted(p.name for p in REPO.iterdir()), _snapshot(REPO / "outputs"))
    result = _mer("synth", "--clips-per-quadrant", "1", "--seconds", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "outputs" / configs.SYNTHETIC_DIR / "README.txt").is_file()
    assert (sorted(p.name for p in REPO.iterdir()), _snapshot(REPO / "outputs")) == before


def test_a_full_disk_is_recognised_through_the_chain_of_errors():
    import errno

    def raised(error, *, during=None):
        try:
            try:
                raise during or RuntimeError("first")
            except Exception:
                raise error  # noqa: B904 (the context is what is tested)
        except Exception as caught:
            return caught

    beam = RuntimeError("ResourceExhaustedError: /out/x.gz; No space left on device")
    assert cli.disk_full(raised(ValueError("database or disk is full"), during=beam))
    assert cli.disk_full(raised(KeyError("mlmd"), during=OSError(errno.ENOSPC, "full")))
    assert not cli.disk_full(raised(KeyError("mlmd"), during=OSError(errno.EACCES, "denied")))


def test_a_full_disk_names_the_file_it_stopped_where_the_errors_do(tmp_path):
    import errno

    def during(cause, error):
        try:
            try:
                raise cause
            except Exception:
                raise error  # noqa: B904 (the context is what is tested)
        except Exception as caught:
            return caught

    target = tmp_path / "out" / "model.keras"
    assert cli.full_disk_path(during(OSError(errno.ENOSPC, "full", str(target)),
                                     KeyError("mlmd"))) == str(target)
    beam = RuntimeError("ResourceExhaustedError: /out/x.gz; No space left on device")
    assert cli.full_disk_path(during(beam, ValueError("database or disk is full"))) == "/out/x.gz"
    assert cli.full_disk_path(ValueError("database or disk is full")) is None
    # The free space is that of the nearest folder that exists.
    where = cli._full_disk_where(OSError(errno.ENOSPC, "full", str(target)))
    assert where.startswith(f" while writing {target} (") and where.endswith(" MB free there)")


def test_a_second_pipeline_on_one_output_is_refused_and_leaves_the_log(tmp_path):
    """Refused before its log is opened, with the holder's pid (the fault suite runs two
    real pipelines at once: tests/faults)."""
    from mer_tfx import run_lock

    out = tmp_path / "out"
    out.mkdir()
    (out / "mer-pipeline.log").write_text("the first run's log\n")
    hold = (
        "import sys, time\n"
        "from mer_tfx import run_lock\n"
        "with run_lock.hold(sys.argv[1], holder='mer pipeline', what='out'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    lock = run_lock.folder_lock(out, "mer-pipeline")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(lock)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = _mer("pipeline", "--output", str(out), cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"mer pipeline: error: another mer pipeline (pid {holder.pid}) is writing {out}: "
        "wait for it to end, or give this one another output"
    ]
    assert (out / "mer-pipeline.log").read_text() == "the first run's log\n"
