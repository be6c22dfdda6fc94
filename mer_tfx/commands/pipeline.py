"""`mer pipeline`: runs the TFX pipeline end to end with LocalDagRunner.

With no `--data`, it first writes the deterministic synthetic 4Q dataset into the
output folder. It prints the data found, each component's start and end with its
wall time (read from MLMD: `ComponentProgress`), the training's progress bars, and
at the end the Evaluator's metrics overall and per slice, the gate's decision (with
the thresholds a model failed), the pushed model's path and the skipped files.
What the libraries print goes to `<output>/mer-pipeline.log` (`mer_tfx.cli`). A
model that is not blessed is a normal outcome (exit code 0); only a failure gives
a non-zero exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List

from mer_tfx import console, presets
from mer_tfx.commands import options
from pipeline import configs, data_validation
from pipeline.layout import Layout
from pipeline.run_config import RunConfig, run_config_from

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
                candidate = Path(uri, "skipped_files.csv")
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


def describe_data(data_root: Path) -> str:
    """One line on the dataset found: its layout, songs per quadrant and skipped entries.

    Raises:
        DatasetError: the folder or manifest has no layout mer-tfx reads (before
            TFX starts, so the error is the dataset's, not a component's).
    """
    from mer_tfx.datasets import read_dataset

    index = read_dataset(data_root)
    counts = ", ".join(f"{q} {n}" for q, n in index.quadrant_counts().items())
    skipped = f", {len(index.skipped)} entries without audio or label" if index.skipped else ""
    return f"{data_root} ({index.layout} layout: {len(index.records)} songs, {counts}{skipped})"


def run_pipeline(config: RunConfig, *, verbose: bool = False) -> PipelineReport:
    """Builds the pipeline of `config` (a local one: it has a `layout`) and runs it with
    LocalDagRunner; returns what it produced."""
    from tfx import v1 as tfx

    from pipeline.factory import create_pipeline

    layout = config.layout
    layout.pipeline_root.mkdir(parents=True, exist_ok=True)
    pipe = create_pipeline(config)
    if verbose or console.log_path() is not None:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.INFO)  # TFX's own account, for the log
    start = time.monotonic()
    with ComponentProgress(layout.metadata_path, layout.pipeline_name) as progress:
        tfx.orchestration.LocalDagRunner().run(pipe)
    return summarise(layout, progress, time.monotonic() - start)


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
        lines.append(f"mer pipeline: serve it with: mer serve --model-base-path "
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset folder (4Q or PMEmo layout) or CSV manifest; "
                        "default: $MER_DATA, else the synthetic 4Q dataset written to the output folder")
    parser.add_argument("--output", metavar="DIR",
                        help="output folder (default: $MER_OUTPUT, else ./outputs)")
    parser.add_argument("--preset", type=options.preset,
                        help=f"preset name or JSON (default: ${configs.ENV_PRESET}, else "
                             f"{presets.DEFAULT_NAME})")
    parser.add_argument("--pipeline-name", default=configs.PIPELINE_NAME,
                        help=f"TFX pipeline name (default: {configs.PIPELINE_NAME})")
    parser.add_argument("--model-name", default=configs.MODEL_NAME,
                        help=f"TF Serving model name (default: {configs.MODEL_NAME})")
    parser.add_argument("--tune", action="store_true", help="run the Tuner before the Trainer")
    parser.add_argument("--trials", type=int, help="Tuner trials (default: 4)")
    parser.add_argument("--accuracy-threshold", type=float,
                        help="lowest accuracy (valence and arousal) that blesses (default: 0.6)")
    parser.add_argument("--f1-threshold", type=float,
                        help="lowest F1 score (valence and arousal) that blesses (default: 0.6)")
    options.add_old_names(parser, parser.add_argument(
        "--max-ae-epochs", type=int, metavar="N",
        help="cap on autoencoder epochs (default: the preset's)"), "--ae-epochs")
    options.add_old_names(parser, parser.add_argument(
        "--max-head-epochs", type=int, metavar="N",
        help="cap on head epochs (default: the preset's)"), "--head-epochs")
    parser.add_argument("--seed", type=int, default=0, help="training and synthetic-data seed")
    parser.add_argument("--unlabeled-data", metavar="DIR", default=None,
                        help="a folder of audio without labels that stage 1 (the autoencoder) "
                             "trains on as well; must not hold the dataset's audio")
    parser.add_argument("--normalize-embeddings", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="standardise the heads' input embeddings, whatever the number of "
                             "training songs (default: the preset's: the -small presets do "
                             "when the heads are fitted on at least 100 songs, the paper's "
                             "never)")
    parser.add_argument("--head-seeds", type=int, default=None, metavar="N",
                        help="train N heads per target from consecutive seeds and serve "
                             "their averaged probabilities (default: the preset's)")
    parser.add_argument("--clips-per-quadrant", type=int, default=8,
                        help="synthetic dataset size when no --data is given (default: 8)")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                        help="Beam pipeline argument, repeatable, e.g. "
                        "--beam-arg=--direct_running_mode=multi_processing")
    parser.add_argument("--verbose", action="store_true",
                        help="also show what TensorFlow, TFX and Beam print (always in the log "
                        "file <output>/mer-pipeline.log)")


def run(args: argparse.Namespace) -> int:
    config = run_config_from(args)
    layout = config.layout
    console.say(f"mer pipeline: data {describe_data(Path(config.data_root))}")
    console.say(f"mer pipeline: output {layout.output}, preset {config.preset.name}")
    report = run_pipeline(config, verbose=args.verbose)
    print_report(report, layout=layout)
    if console.log_path() is not None:
        console.say(f"mer pipeline: what the libraries printed is in {console.log_path()}")
    return 0
