"""What a killed run left is cleaned, and only that: the unfinished execution is marked
CANCELED and its folders go; a completed execution's artifacts and any folder an
artifact records stay. The real kill -9 runs are in tests/faults/."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import recovery
from pipeline.layout import Layout

PIPELINE = "mer-tfx"


def _store(path: Path):
    from ml_metadata.metadata_store import metadata_store
    from tfx import v1 as tfx

    path.parent.mkdir(parents=True, exist_ok=True)
    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(path))
    return metadata_store.MetadataStore(config)


def _record(store, *, node: str, state: str, outputs=(), inputs=()):
    """One execution of `node` in `state` (as TFX's launcher records it), with output
    artifacts at `outputs` and input artifacts at `inputs`; returns its id."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    def type_id(kind, name):
        put = getattr(store, f"put_{kind}_type")
        message = getattr(pb, f"{kind.capitalize()}Type")(name=name)
        return put(message, can_add_fields=True)

    contexts = []
    for context_type, name in (("pipeline", PIPELINE), ("node", f"{PIPELINE}.{node}")):
        found = store.get_context_by_type_and_name(context_type, name)
        contexts.append(found or pb.Context(type_id=type_id("context", context_type), name=name))
    execution = pb.Execution(
        type_id=type_id("execution", node), last_known_state=pb.Execution.State.Value(state)
    )
    artifacts = [
        (
            pb.Artifact(type_id=type_id("artifact", "Model"), uri=str(uri)),
            pb.Event(type=pb.Event.OUTPUT),
        )
        for uri in outputs
    ] + [
        (
            pb.Artifact(type_id=type_id("artifact", "Model"), uri=str(uri)),
            pb.Event(type=pb.Event.INPUT),
        )
        for uri in inputs
    ]
    execution_id, _, _ = store.put_execution(execution, artifacts, contexts)
    return execution_id


@pytest.fixture
def killed_trainer(tmp_path):
    """A store with a completed Trainer (its model on disk) and a RUNNING one, killed."""
    layout = Layout(output=tmp_path, pipeline_name=PIPELINE)
    store = _store(layout.metadata_path)
    root = layout.pipeline_root
    done = _record(store, node="Trainer", state="COMPLETE", outputs=[root / "Trainer/model/1"])
    killed = _record(store, node="Trainer", state="RUNNING")
    (root / f"Trainer/model/{done}/Format-Serving").mkdir(parents=True)
    (root / f"Trainer/model/{done}/Format-Serving/saved_model.pb").write_bytes(b"model")
    (root / f"Trainer/model/{killed}").mkdir(parents=True)  # empty: killed before export
    (root / f"Trainer/model_run/{killed}/beam-temp-x").mkdir(parents=True)
    (root / f"Trainer/.system/executor_execution/{killed}/.temp").mkdir(parents=True)
    (root / f"Trainer/.system/executor_execution/{done}").mkdir(parents=True)
    (root / "Trainer/.system/stateful_working_dir/0b5e").mkdir(parents=True)
    (root / f"Evaluator/evaluation/{killed}").mkdir(parents=True)  # another node's: kept
    return layout, store, done, killed


def test_the_killed_execution_is_canceled_and_its_folders_removed(killed_trainer):
    from ml_metadata.proto import metadata_store_pb2 as pb

    layout, store, done, killed = killed_trainer
    root = layout.pipeline_root
    cleanup = recovery.clean_killed_runs(layout)

    states = {e.id: pb.Execution.State.Name(e.last_known_state) for e in store.get_executions()}
    assert states == {done: "COMPLETE", killed: "CANCELED"}
    assert cleanup.marked == [(killed, "Trainer", "RUNNING")]
    assert sorted(cleanup.removed) == sorted(
        [
            f"Trainer/model/{killed}",
            f"Trainer/model_run/{killed}",
            f"Trainer/.system/executor_execution/{killed}",
            "Trainer/.system/stateful_working_dir/0b5e",
        ]
    )
    assert cleanup.beam_temp == 1
    assert (root / f"Trainer/model/{done}/Format-Serving/saved_model.pb").read_bytes() == b"model"
    assert (root / f"Trainer/.system/executor_execution/{done}").is_dir()
    assert (root / f"Evaluator/evaluation/{killed}").is_dir()
    line = cleanup.line()
    assert line.startswith("mer pipeline: cleaned up after an interrupted run: marked 1 ")
    assert f"Trainer (running, execution {killed})" in line and "and 1 more" in line

    again = recovery.clean_killed_runs(layout)  # nothing is left to do
    assert again.line() is None


def test_a_folder_an_artifact_records_is_never_removed(killed_trainer):
    """Belt and braces: even a folder named like the killed execution stays when ML
    Metadata records an artifact there."""
    layout, store, _, killed = killed_trainer
    kept = layout.pipeline_root / f"Trainer/model/{killed}"
    _record(store, node="Pusher", state="COMPLETE", outputs=[kept])
    cleanup = recovery.clean_killed_runs(layout)
    assert kept.is_dir()
    assert f"Trainer/model/{killed}" not in cleanup.removed


def test_nothing_to_do_on_a_new_output(tmp_path):
    assert recovery.clean_killed_runs(Layout(output=tmp_path)).line() is None


def test_a_cut_synthetic_write_is_removed(tmp_path):
    layout = Layout(output=tmp_path)
    staging = tmp_path / ".synthetic_data.mer-writing"
    (staging / "Q1").mkdir(parents=True)
    cleanup = recovery.clean_killed_runs(layout)
    assert not staging.exists()
    assert cleanup.removed == [".synthetic_data.mer-writing"]


def _model_files(folder: Path, *, complete: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    if complete:
        (folder / "variables").mkdir()
        (folder / "variables" / "variables.index").write_bytes(b"index")
    return folder


def test_a_push_cut_while_copying_is_removed_and_a_complete_one_stays(tmp_path):
    """TFX's Pusher copies saved_model.pb first, so a half-copied version has one."""
    import os

    layout = Layout(output=tmp_path, pipeline_name=PIPELINE)
    store = _store(layout.metadata_path)
    model = layout.pipeline_root / "Trainer/model/1"
    _model_files(model / "Format-Serving")
    older = _model_files(layout.serving_base / "100", complete=False)  # before the push: kept
    os.utime(older, (1, 1))
    _record(store, node="Pusher", state="RUNNING", inputs=[model])
    half = _model_files(layout.serving_base / "200", complete=False)
    whole = _model_files(layout.serving_base / "201")

    cleanup = recovery.clean_killed_runs(layout)
    assert not half.exists()
    assert whole.is_dir() and older.is_dir()
    assert cleanup.removed == ["serving_model/mer/200"]
