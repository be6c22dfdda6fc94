"""What a killed `mer pipeline` run left behind, cleaned by the next run: `clean_killed_runs`.

A run killed while a component runs (`kill -9`, a reboot, Ctrl-C inside a component)
leaves, in the output folder:

- the component's execution in ML Metadata in state RUNNING, forever;
- the execution's output folders, `<pipeline root>/<node>/<key>/<execution id>/`, empty
  (`Trainer/model/<N>`) or partly written (`beam-temp-*` folders of a cut Beam write);
- TFX's scratch folders of that execution: `<node>/.system/executor_execution/<id>/`
  and `<node>/.system/stateful_working_dir/<uuid>/`;
- `.synthetic_data.mer-writing` when it was writing the synthetic dataset;
- a half-copied `<serving base>/<version>/` when the Pusher was copying the model.

The next run, holding the output folder's lock (`mer_tfx.run_lock`, so no other run is
live), marks such executions CANCELED in ML Metadata and removes those folders before
TFX starts. It only touches executions that are not COMPLETE or CACHED, and never a
folder that holds, or is held by, an artifact ML Metadata records: a completed
component's outputs are never removed.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Dict, List, Tuple

from mer_tfx import write_aside
from pipeline.layout import Layout

# ML Metadata's Execution.State values, by name (metadata_store_pb2.Execution.State).
_FINISHED = ("COMPLETE", "CACHED")
_LIVE = ("UNKNOWN", "NEW", "RUNNING")  # states only a live run may leave
MARK = "CANCELED"
NOTE_PROPERTY = "mer_recovery"
NOTE = "marked CANCELED by the next mer pipeline run: the run it belonged to was killed"
_SYSTEM = ".system"
_EXECUTOR_EXECUTION = "executor_execution"
_STATEFUL_WORKING_DIR = "stateful_working_dir"
_SHOWN = 3  # folders named in the console line
PUSHER_NODE = "Pusher"
PUSHED_DESTINATION = "pushed_destination"  # the PushedModel artifact's property (TFX)
SERVING_MODEL_DIR = "Format-Serving"  # the Trainer's export inside its Model artifact (TFX)
# File times come from the kernel's coarse clock, which trails ML Metadata's millisecond
# create time by a few ms: a folder the Pusher made at once may look older than its start.
_CLOCK_SLACK_SECONDS = 2.0


@dataclasses.dataclass
class Cleanup:
    """What `clean_killed_runs` did.

    Attributes:
        marked: (execution id, node id, state it had) of each execution marked CANCELED.
        removed: the folders removed, relative to the pipeline root (to the output
            folder for those outside it).
        beam_temp: how many `beam-temp-*` folders were among or inside them.
    """

    marked: List[Tuple[int, str, str]] = dataclasses.field(default_factory=list)
    removed: List[str] = dataclasses.field(default_factory=list)
    beam_temp: int = 0

    def line(self) -> str | None:
        """One console line on what was cleaned; None when nothing was."""
        if not self.marked and not self.removed:
            return None
        parts = []
        if self.marked:
            runs = ", ".join(
                f"{node} ({state.lower()}, execution {id_})" for id_, node, state in self.marked
            )
            parts.append(f"marked {len(self.marked)} execution(s) {MARK} in ML Metadata: {runs}")
        if self.removed:
            shown = ", ".join(self.removed[:_SHOWN])
            more = f" and {len(self.removed) - _SHOWN} more" if len(self.removed) > _SHOWN else ""
            temp = f", {self.beam_temp} beam-temp folder(s) among them" if self.beam_temp else ""
            parts.append(f"removed {len(self.removed)} folder(s) it left ({shown}{more}{temp})")
        return "mer pipeline: cleaned up after an interrupted run: " + "; ".join(parts)


def clean_killed_runs(layout: Layout) -> Cleanup:
    """Marks the unfinished executions of `layout`'s pipeline CANCELED and removes the
    folders they left (module docstring). Call it only while holding the output
    folder's lock: an execution of a live run is unfinished too."""
    cleanup = Cleanup()
    # A replaced synthetic set whose successor never landed is put back, not listed.
    removed = write_aside.recover_interrupted_write(layout.synthetic_data)
    cleanup.removed.extend(_relative(p, layout) for p in removed)
    if not layout.metadata_path.exists():
        return cleanup
    store = _store(layout.metadata_path)
    unfinished = _unfinished_executions(store, layout.pipeline_name)
    if not unfinished:
        return cleanup
    _mark_canceled(store, unfinished, cleanup)
    kept = {Path(a.uri) for a in store.get_artifacts() if a.uri}
    for folder in _folders_of(unfinished, layout.pipeline_root):
        if any(_related(folder, artifact) for artifact in kept):
            continue
        cleanup.beam_temp += sum(
            1 for p in [folder, *folder.rglob("beam-temp-*")] if p.name.startswith("beam-temp-")
        )
        shutil.rmtree(folder, ignore_errors=True)
        cleanup.removed.append(_relative(folder, layout))
    for version in _half_copied_pushes(store, unfinished, layout.serving_base):
        shutil.rmtree(version, ignore_errors=True)
        cleanup.removed.append(_relative(version, layout))
    return cleanup


def _store(metadata_path: Path):
    from ml_metadata.metadata_store import metadata_store
    from tfx import v1 as tfx

    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(metadata_path))
    return metadata_store.MetadataStore(config)


def _unfinished_executions(store, pipeline_name: str) -> Dict[int, Tuple[str, object]]:
    """execution id -> (node id, execution) for this pipeline's executions that are not
    COMPLETE or CACHED."""
    from ml_metadata.proto import metadata_store_pb2

    state_name = metadata_store_pb2.Execution.State.Name
    pipeline = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline is None:
        return {}
    ours = {
        e.id: e
        for e in store.get_executions_by_context(pipeline.id)
        if state_name(e.last_known_state) not in _FINISHED
    }
    unfinished = {}
    for context in store.get_contexts_by_type("node"):
        node = context.name.removeprefix(f"{pipeline_name}.")
        for execution in store.get_executions_by_context(context.id):
            if execution.id in ours:
                unfinished[execution.id] = (node, ours[execution.id])
    return unfinished


def _mark_canceled(store, unfinished: Dict[int, Tuple[str, object]], cleanup: Cleanup) -> None:
    from ml_metadata.proto import metadata_store_pb2

    state_name = metadata_store_pb2.Execution.State.Name
    changed = []
    for execution_id, (node, execution) in sorted(unfinished.items()):
        state = state_name(execution.last_known_state)
        if state not in _LIVE:
            continue  # FAILED or CANCELED already: only its folders may be left
        execution.last_known_state = metadata_store_pb2.Execution.State.Value(MARK)
        execution.custom_properties[NOTE_PROPERTY].string_value = NOTE
        changed.append(execution)
        cleanup.marked.append((execution_id, node, state))
    if changed:
        store.put_executions(changed)


def _folders_of(unfinished: Dict[int, Tuple[str, object]], pipeline_root: Path) -> List[Path]:
    """The folders TFX made for the unfinished executions: each output key's
    `<node>/<key>/<id>/`, `.system/executor_execution/<id>/`, and the node's
    `.system/stateful_working_dir/*` (TFX removes an execution's own when it succeeds,
    so whatever is there was left by one that did not)."""
    found = []
    for execution_id, (node, _) in sorted(unfinished.items()):
        node_dir = pipeline_root / node
        if not node_dir.is_dir():
            continue
        for key_dir in sorted(node_dir.iterdir()):
            if key_dir.name == _SYSTEM:
                continue
            candidate = key_dir / str(execution_id)
            if candidate.is_dir():
                found.append(candidate)
        scratch = node_dir / _SYSTEM / _EXECUTOR_EXECUTION / str(execution_id)
        if scratch.is_dir():
            found.append(scratch)
    for node in sorted({node for node, _ in unfinished.values()}):
        stateful = pipeline_root / node / _SYSTEM / _STATEFUL_WORKING_DIR
        if stateful.is_dir():
            found.extend(sorted(p for p in stateful.iterdir() if p.is_dir()))
    return found


def _half_copied_pushes(
    store, unfinished: Dict[int, Tuple[str, object]], serving_base: Path
) -> List[Path]:
    """Version folders under `serving_base` that a killed Pusher left half-copied.

    TFX's Pusher copies the model's files (saved_model.pb first, then variables/) into
    `<serving base>/<version>/` before it records the push, so a Pusher killed while
    copying leaves a version TF Serving cannot load. Such a folder is one made after that
    Pusher execution started, that no artifact records as pushed, and that lacks some of
    the files of the model the execution was pushing. A complete copy stays: it is the
    blessed model, and it may be served already.
    """
    from ml_metadata.proto import metadata_store_pb2

    pushes = [e for node, e in unfinished.values() if node == PUSHER_NODE]
    if not pushes or not serving_base.is_dir():
        return []
    pushed = {
        a.custom_properties[PUSHED_DESTINATION].string_value
        for a in store.get_artifacts()
        if PUSHED_DESTINATION in a.custom_properties
    }
    found = []
    for execution in pushes:
        inputs = [
            e.artifact_id
            for e in store.get_events_by_execution_ids([execution.id])
            if e.type == metadata_store_pb2.Event.INPUT
        ]
        models = [
            a for a in store.get_artifacts_by_id(inputs) if Path(a.uri).parent.name == "model"
        ]
        if len(models) != 1:
            continue
        source = Path(models[0].uri) / SERVING_MODEL_DIR
        started = execution.create_time_since_epoch / 1000 - _CLOCK_SLACK_SECONDS
        expected = _files(source)
        for version in sorted(serving_base.iterdir()):
            if (
                version.is_dir()
                and version.name.isdigit()
                and str(version) not in pushed
                and version.stat().st_mtime >= started
                and _files(version) != expected
            ):
                found.append(version)
    return found


def _files(folder: Path) -> Dict[str, int]:
    """relative path -> size of every file under `folder`."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()
    }


def _related(folder: Path, artifact: Path) -> bool:
    """Whether removing `folder` would remove `artifact`'s files, or `folder` is inside it."""
    return folder == artifact or folder in artifact.parents or artifact in folder.parents


def _relative(path: Path, layout: Layout) -> str:
    try:
        return path.relative_to(layout.pipeline_root).as_posix()
    except ValueError:
        return path.relative_to(layout.output).as_posix()
