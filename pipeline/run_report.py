"""The report of a pipeline run: what `mer pipeline` prints while and after it runs.

While LocalDagRunner runs, `ComponentProgress` reads the pipeline's MLMD store in a
background thread and prints each component's start and end with its wall time. After
the run, `summarise` reads the newest run from MLMD (`latest_run`) into a
`PipelineReport`: the gate's decision, the pushed model, the Evaluator's output and the
skipped files; `report_lines` turns it into the end-of-run lines, with the Evaluator's
metrics per slice (`evaluation_summary`) and the thresholds a model failed
(`validation_failures`), both read from TFMA's output.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

from mer_tfx import console
from mer_tfx.contract import SKIPPED_FILES_FILE
from pipeline import data_validation
from pipeline.layout import Layout

_ENDED = ("COMPLETE", "CACHED", "FAILED", "CANCELED")


def node_id_of(store, execution_id: int, pipeline_name: str) -> str | None:
    """The pipeline node an MLMD execution belongs to (its "node" context), or None."""
    node_type = store.get_context_type("node")
    for context in store.get_contexts_by_execution(execution_id):
        if context.type_id == node_type.id:
            return context.name.removeprefix(f"{pipeline_name}.")
    return None


class ComponentProgress:
    """Prints a console line when a pipeline node starts and when it ends, with its time.

    While a run goes on, a background thread reads the pipeline's MLMD store (read
    only), where LocalDagRunner records every node's execution: a new execution
    is a node starting; COMPLETE, CACHED or FAILED is its end; the execution's
    create and last-update times give its wall time. No library log is parsed.
    Use it around the run: `with ComponentProgress(...) as progress: runner.run(...)`.

    Args:
        metadata_path: the MLMD SQLite file.
        pipeline_name: the TFX pipeline's name.
        interval_seconds: how often the store is read. Defaults to 0.2.
        say: prints one line. Defaults to `mer_tfx.console.say`.

    Attributes:
        timings: node id -> seconds, in the order the nodes ended.
        cached: node ids TFX reused from its cache.
        failed: node ids that failed.
    """

    def __init__(self, metadata_path: os.PathLike, pipeline_name: str, *,
                 interval_seconds: float = 0.2, say: Callable[[str], None] = console.say):
        self.metadata_path = Path(metadata_path)
        self.pipeline_name = pipeline_name
        self.interval_seconds = interval_seconds
        self.say = say
        self.timings: Dict[str, float] = {}
        self.cached: set = set()
        self.failed: set = set()
        self._since_ms = 0
        self._states: Dict[int, str] = {}  # execution id -> the state last reported
        self._store = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ComponentProgress:
        self._since_ms = int(time.time() * 1000)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="mer-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()  # the last node's end

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.poll()

    def poll(self) -> None:
        """Reads the store once and prints the starts and ends not printed yet."""
        try:
            executions = self._executions()
            for execution in sorted(executions, key=lambda e: (e.create_time_since_epoch, e.id)):
                self._report(execution)
        except Exception:  # noqa: BLE001 (store not created yet or busy: read it next time)
            logging.getLogger(__name__).debug("MLMD not readable yet", exc_info=True)

    def _executions(self) -> list:
        from ml_metadata.metadata_store import metadata_store
        from ml_metadata.proto import metadata_store_pb2

        if self._store is None:
            if not self.metadata_path.exists():
                return []
            config = metadata_store_pb2.ConnectionConfig()
            config.sqlite.filename_uri = str(self.metadata_path)
            config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
            self._store = metadata_store.MetadataStore(config)
        pipeline_context = self._store.get_context_by_type_and_name("pipeline", self.pipeline_name)
        if pipeline_context is None:
            return []
        this_run = metadata_store.ListOptions(
            filter_query=f"create_time_since_epoch >= {self._since_ms}")
        return self._store.get_executions_by_context(pipeline_context.id, list_options=this_run)

    def _report(self, execution) -> None:
        from ml_metadata.proto import metadata_store_pb2

        state = metadata_store_pb2.Execution.State.Name(execution.last_known_state)
        before = self._states.get(execution.id)
        if before == state or before in _ENDED:
            return
        node = (node_id_of(self._store, execution.id, self.pipeline_name)
                or f"execution {execution.id}")
        started = execution.create_time_since_epoch / 1000
        if before is None and state != "CACHED":
            self._line(started, "==>", node, "running")
        self._states[execution.id] = state
        if state not in _ENDED:
            return
        ended = execution.last_update_time_since_epoch / 1000
        seconds = max(ended - started, 0.0)
        self.timings[node] = seconds
        if state == "CACHED":
            self.cached.add(node)
            self._line(ended, "<==", node, "reused from TFX's cache")
        elif state == "COMPLETE":
            self._line(ended, "<==", node, f"done in {seconds:.1f}s")
        else:
            self.failed.add(node)
            self._line(ended, "!!!", node, f"{state.lower()} after {seconds:.1f}s")

    def _line(self, when: float, arrow: str, node: str, what: str) -> None:
        self.say(f"[{time.strftime('%H:%M:%S', time.localtime(when))}] {arrow} {node}: {what}")


@dataclasses.dataclass
class NodeRun:
    """One component's execution in a pipeline run (from MLMD)."""

    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, RUNNING, ...
    outputs: Dict[str, List[str]]  # output key -> artifact URIs
    properties: Dict[str, Dict[str, object]]  # output key -> custom properties of the first artifact


def latest_run(metadata_path: os.PathLike, pipeline_name: str) -> Dict[str, NodeRun]:
    """The component executions of the newest run of `pipeline_name`, keyed by node id."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx import v1 as tfx

    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(str(metadata_path))
    store = metadata_store.MetadataStore(config)
    pipeline_ctx = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if pipeline_ctx is None:
        return {}
    pipeline_execs = {e.id for e in store.get_executions_by_context(pipeline_ctx.id)}
    runs = [c for c in store.get_contexts_by_type("pipeline_run")
            if pipeline_execs & {e.id for e in store.get_executions_by_context(c.id)}]
    if not runs:
        return {}
    run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
    state_names = metadata_store_pb2.Execution.State.Name
    result = {}
    for execution in store.get_executions_by_context(run.id):
        node_id = node_id_of(store, execution.id, pipeline_name) or str(execution.id)
        outputs: Dict[str, List[str]] = {}
        properties: Dict[str, Dict[str, object]] = {}
        events = store.get_events_by_execution_ids([execution.id])
        out_events = [e for e in events if e.type in (
            metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
        artifacts = {a.id: a for a in store.get_artifacts_by_id([e.artifact_id for e in out_events])}
        for event in out_events:
            key = next((s.key for s in event.path.steps if s.HasField("key")), "")
            artifact = artifacts[event.artifact_id]
            outputs.setdefault(key, []).append(artifact.uri)
            if key not in properties:
                properties[key] = {
                    name: (v.string_value or v.int_value or v.double_value)
                    for name, v in artifact.custom_properties.items()
                }
        result[node_id] = NodeRun(node_id, state_names(execution.last_known_state), outputs, properties)
    return result


def evaluation_summary(evaluation_uri: str) -> List[str]:
    """Lines: metric values per slice and output, from the Evaluator's output."""
    import tensorflow_model_analysis as tfma

    lines = []
    for record in tfma.load_metrics(evaluation_uri):
        slice_key = tfma.slicer.deserialize_slice_key(record.slice_key)
        name = "overall" if not slice_key else ", ".join(
            f"{k}={v.decode() if isinstance(v, bytes) else v}" for k, v in slice_key)
        values: Dict[str, Dict[str, float]] = {}
        for kv in record.metric_keys_and_values:
            key = kv.key
            if key.HasField("sub_key") or key.is_diff:
                continue
            value = kv.value.double_value.value if kv.value.HasField("double_value") else None
            if value is None:
                continue
            values.setdefault(key.output_name or "-", {})[key.name] = value
        for output in sorted(values):
            metrics = values[output]
            parts = [f"{m}={metrics[m]:.3f}" for m in ("binary_accuracy", "f1_score") if m in metrics]
            if "example_count" in metrics:
                parts.append(f"n={int(metrics['example_count'])}")
            lines.append(f"  {name:<28} {output:<8} " + " ".join(parts))
    return lines


def validation_failures(evaluation_uri: str) -> List[str]:
    """Why a model was not blessed: the failed thresholds from TFMA's validation result."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            key, threshold = failure.metric_key, failure.metric_threshold
            value = failure.metric_value.double_value.value
            if key.is_diff:
                bound = threshold.change_threshold.absolute.value
                why = f"changed by {value:+.3f} vs the latest blessed model (allowed >= {bound:g})"
            else:
                bound = threshold.value_threshold.lower_bound.value
                why = f"{value:.3f} < threshold {bound:g}"
            failures.append(f"  {key.output_name} {key.name}: {why}")
    if result.missing_thresholds:
        failures.append("  a gated metric had no value (e.g. an empty eval split)")
    for spec in result.missing_slices:
        failures.append(f"  slice missing from the eval split: {list(spec.feature_keys) or 'overall'}")
    return failures


@dataclasses.dataclass
class PipelineReport:
    """What one `mer pipeline` run produced."""

    blessed: bool | None
    pushed_path: str | None
    evaluation_uri: str | None
    skipped_report: str | None
    skipped_count: int
    nodes: Dict[str, NodeRun]
    timings: Dict[str, float]
    cached: List[str]
    seconds: float


def summarise(layout: Layout, progress: ComponentProgress | None, seconds: float) -> PipelineReport:
    nodes = latest_run(layout.metadata_path, layout.pipeline_name)
    blessed = pushed = evaluation = skipped = None
    skipped_count = 0
    for node in nodes.values():
        if "blessing" in node.outputs:
            for uri in node.outputs["blessing"]:
                blessed = Path(uri, "BLESSED").exists()
        if "evaluation" in node.outputs:
            evaluation = node.outputs["evaluation"][0]
        if "pushed_model" in node.properties and node.properties["pushed_model"].get("pushed"):
            pushed = str(node.properties["pushed_model"].get("pushed_destination") or "") or None
        if node.node_id.lower().endswith("examplegen") or "skipped" in node.node_id.lower():
            for uri in node.outputs.get("examples", []):
                candidate = Path(uri, SKIPPED_FILES_FILE)
                if candidate.exists():
                    skipped = str(candidate)
                    rows = [r for r in candidate.read_text().splitlines()[1:] if r.strip()]
                    skipped_count = len(rows)
    return PipelineReport(
        blessed=blessed, pushed_path=pushed, evaluation_uri=evaluation, skipped_report=skipped,
        skipped_count=skipped_count, nodes=nodes,
        timings=dict(progress.timings) if progress else {},
        cached=sorted(n for n, r in nodes.items() if r.state == "CACHED"), seconds=seconds,
    )


def mer_command() -> str:
    """How to call `mer` from this shell: "mer" when that name on PATH is this installation's,
    else the path of this interpreter's `mer` (e.g. `.venv/bin/mer`, relative when inside the
    current folder)."""
    here = Path(sys.executable).parent / "mer"
    on_path = shutil.which("mer")
    if not here.exists() or (on_path and Path(on_path).resolve() == here.resolve()):
        return "mer"
    try:
        return str(here.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(here.absolute())


def report_lines(report: PipelineReport, *, layout: Layout) -> List[str]:
    """The end-of-run report: times, evaluation table, the gate's decision, where things are.

    Every line has one of `mer_tfx.console.LINE_FORMATS`' shapes.
    """
    lines = ["", f"=== mer pipeline: finished in {report.seconds:.1f}s ==="]
    for node, seconds in report.timings.items():
        tag = " (cached)" if node in report.cached else ""
        lines.append(f"  {node:<32} {seconds:8.1f}s{tag}")
    lines.extend(data_validation.summary_lines(node.outputs for node in report.nodes.values()))
    if report.evaluation_uri:
        lines.append("=== evaluation (eval split) ===")
        lines.extend(evaluation_summary(report.evaluation_uri))
    if report.blessed:
        lines.append("mer pipeline: model BLESSED: it passed every accuracy/F1 threshold "
                     "and did not regress")
    elif report.blessed is False:
        lines.append("mer pipeline: model NOT BLESSED (a normal outcome: it did not pass the "
                     "gate), so it was not pushed:")
        if report.evaluation_uri:
            lines.extend(validation_failures(report.evaluation_uri))
    if report.pushed_path:
        lines.append(f"mer pipeline: pushed model {report.pushed_path}")
        lines.append(f"mer pipeline: serve it with: {mer_command()} serve --model-base-path "
                     f"{layout.serving_base} --model-name {layout.model_name}")
    else:
        lines.append(f"mer pipeline: no model pushed in this run (serving base path: "
                     f"{layout.serving_base})")
    if report.skipped_report:
        lines.append(f"mer pipeline: skipped {report.skipped_count} file(s), listed in "
                     f"{report.skipped_report}")
    lines.append(f"mer pipeline: artifacts {layout.pipeline_root}")
    lines.append(f"mer pipeline: metadata {layout.metadata_path}")
    return lines


def print_report(report: PipelineReport, *, layout: Layout) -> None:
    """Prints `report_lines` on the console's stdout."""
    print("\n".join(report_lines(report, layout=layout)), file=console.out(), flush=True)
