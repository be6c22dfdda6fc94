"""Unit tests of the run report's MLMD reading (no pipeline runs)."""

from __future__ import annotations

import re
import time

from mer_tfx import console
from pipeline.layout import Layout
from pipeline.run_report import ComponentProgress, PipelineReport, mer_command, report_lines


def _mlmd_store(path):
    """An MLMD store with a pipeline "p" and its node contexts, as LocalDagRunner makes them."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as pb

    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    store = metadata_store.MetadataStore(config)
    pipeline_type = store.put_context_type(pb.ContextType(name="pipeline"))
    node_type = store.put_context_type(pb.ContextType(name="node"))
    execution_type = store.put_execution_type(pb.ExecutionType(name="Component"))
    contexts = {"p": pb.Context(type_id=pipeline_type, name="p")}
    for node in ("Trainer", "Pusher", "AudioExampleGen"):
        contexts[node] = pb.Context(type_id=node_type, name=f"p.{node}")
    ids = store.put_contexts(list(contexts.values()))
    for context, context_id in zip(contexts.values(), ids, strict=True):
        context.id = context_id

    def execute(node: str, state: str, execution=None):
        execution = execution or pb.Execution(type_id=execution_type)
        execution.last_known_state = pb.Execution.State.Value(state)
        execution_id, _, _ = store.put_execution(execution, [], [contexts["p"], contexts[node]])
        execution.id = execution_id
        return execution

    return execute


def test_component_progress_prints_node_starts_and_ends_from_mlmd(tmp_path):
    execute = _mlmd_store(tmp_path / "metadata.sqlite")
    execute("AudioExampleGen", "COMPLETE")  # an earlier run: not this run's news
    time.sleep(0.01)  # MLMD's clock counts milliseconds
    lines = []
    with ComponentProgress(tmp_path / "metadata.sqlite", "p",
                           interval_seconds=3600, say=lines.append) as progress:
        trainer = execute("Trainer", "RUNNING")
        progress.poll()
        assert len(lines) == 1 and re.fullmatch(r"\[\d\d:\d\d:\d\d\] ==> Trainer: running", lines[0])
        progress.poll()  # nothing new: nothing printed twice
        assert len(lines) == 1
        execute("Trainer", "COMPLETE", trainer)
        execute("Pusher", "CACHED")
    # leaving the block reads the store once more: the ends since the last poll
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] <== Trainer: done in \d+\.\ds", lines[1])
    assert lines[2].endswith("<== Pusher: reused from TFX's cache")
    assert list(progress.timings) == ["Trainer", "Pusher"] and progress.cached == {"Pusher"}
    assert all(console.is_console_line(line) for line in lines)


def test_component_progress_reports_a_failed_node(tmp_path):
    execute = _mlmd_store(tmp_path / "metadata.sqlite")
    lines = []
    with ComponentProgress(tmp_path / "metadata.sqlite", "p",
                           interval_seconds=3600, say=lines.append) as progress:
        execute("Trainer", "FAILED")
    assert "==> Trainer: running" in lines[0] and "!!! Trainer: failed after" in lines[1]
    assert progress.failed == {"Trainer"}


def test_component_progress_waits_for_the_store_to_exist(tmp_path):
    lines = []
    with ComponentProgress(tmp_path / "none.sqlite", "p", say=lines.append):
        pass
    assert lines == [] and not (tmp_path / "none.sqlite").exists()  # read-only: never created



def _report(**fields) -> PipelineReport:
    values = dict(blessed=None, pushed_path=None, evaluation_uri=None, skipped_report=None,
                  skipped_count=0, nodes={}, timings={}, cached=[], seconds=12.34)
    values.update(fields)
    return PipelineReport(**values)


def test_report_lines_name_the_pushed_model_and_how_to_serve_it(tmp_path):
    layout = Layout.at(tmp_path, pipeline_name="p", model_name="m")
    report = _report(blessed=True, pushed_path=str(layout.serving_base / "17"),
                     skipped_report=str(tmp_path / "skipped_files.csv"), skipped_count=2,
                     timings={"AudioExampleGen": 3.0, "Trainer": 8.04}, cached=["AudioExampleGen"])
    lines = report_lines(report, layout=layout)
    assert lines[1] == "=== mer pipeline: finished in 12.3s ==="
    assert lines[2].split() == ["AudioExampleGen", "3.0s", "(cached)"]
    assert lines[3].split() == ["Trainer", "8.0s"]
    assert f"mer pipeline: pushed model {layout.serving_base / '17'}" in lines
    assert (f"mer pipeline: serve it with: {mer_command()} serve --model-base-path {layout.serving_base} "
            "--model-name m") in lines
    assert f"mer pipeline: skipped 2 file(s), listed in {tmp_path / 'skipped_files.csv'}" in lines
    assert lines[-1] == f"mer pipeline: metadata {layout.metadata_path}"
    assert all(console.is_console_line(line) for line in lines if line)


def test_report_lines_say_a_model_that_is_not_blessed_was_not_pushed(tmp_path):
    layout = Layout.at(tmp_path)
    lines = report_lines(_report(blessed=False), layout=layout)
    assert any("model NOT BLESSED" in line for line in lines)
    assert not any("BLESSED: it passed" in line or "pushed model" in line for line in lines)
    assert (f"mer pipeline: no model pushed in this run (serving base path: "
            f"{layout.serving_base})") in lines
    assert all(console.is_console_line(line) for line in lines if line)


def test_mer_command_is_callable_from_this_shell(monkeypatch, tmp_path):
    """The closing hint names a `mer` the user can run: the venv's path unless PATH has it."""
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "mer").write_text("#!/bin/sh\n")
    (venv_bin / "mer").chmod(0o755)
    monkeypatch.setattr("sys.executable", str(venv_bin / "python"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert mer_command() == ".venv/bin/mer"
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")
    assert mer_command() == "mer"
