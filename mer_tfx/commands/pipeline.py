"""`mer pipeline`: runs the TFX pipeline end to end with LocalDagRunner.

With no `--data`, it first writes the deterministic synthetic 4Q dataset into the
output folder. Component boundaries are printed with their wall time (and
whether TFX reused a cached result); at the end it prints the pushed model's
path, the Evaluator's metrics overall and per slice, whether the model was
blessed, and the skipped-files report. A model that is not blessed is a normal
outcome (exit code 0); only a failure gives a non-zero exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

from mer_tfx.errors import ParameterError
from pipeline import configs
from pipeline.layout import Layout, prepare_data


class ComponentProgress(logging.Handler):
    """Turns LocalDagRunner's log lines into visible component start/finish lines with timings."""

    def __init__(self, stream=None, *, show_errors: bool = False):
        super().__init__(level=logging.INFO)
        self.stream = stream or sys.stdout
        self.show_errors = show_errors
        self.started: Dict[str, float] = {}
        self.timings: Dict[str, float] = {}
        self.cached: set = set()
        self._current: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.show_errors and record.levelno >= logging.ERROR:
            print(f"{record.levelname}: {record.getMessage()}", file=sys.stderr, flush=True)
        msg = record.msg if isinstance(record.msg, str) else ""
        if msg.startswith("Component %s is running") and record.args:
            node = str(record.args[0])
            self._current = node
            self.started[node] = time.monotonic()
            self._print(f"==> {node}: running")
        elif msg.startswith("A cached execution") and self._current:
            self.cached.add(self._current)
        elif msg.startswith("Component %s is finished") and record.args:
            node = str(record.args[0])
            seconds = time.monotonic() - self.started.get(node, time.monotonic())
            self.timings[node] = seconds
            how = "cached, reused" if node in self.cached else "done"
            self._print(f"<== {node}: {how} in {seconds:.1f}s")
        elif msg.startswith("Skipping component") and record.args:
            self._print(f"--- {record.args[0]}: skipped")

    def _print(self, line: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {line}", file=self.stream, flush=True)


def _install_progress(verbose: bool) -> ComponentProgress:
    """Attaches ComponentProgress to absl's logger (TFX logs through absl).

    absl's verbosity is set through its flag, because TensorFlow's SavedModel
    writer temporarily silences absl and then restores the flag's value. Unless
    `verbose`, absl records stop at our handler, which shows only errors besides
    the component lines.
    """
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.INFO)
    absl_logger = logging.getLogger("absl")
    handler = ComponentProgress(show_errors=not verbose)
    absl_logger.addHandler(handler)
    absl_logger.propagate = verbose
    return handler


def _remove_progress(handler: ComponentProgress) -> None:
    from absl import logging as absl_logging

    absl_logger = logging.getLogger("absl")
    absl_logger.removeHandler(handler)
    absl_logger.propagate = True
    if handler.show_errors:  # not verbose: keep the summary free of INFO lines
        absl_logging.set_verbosity(absl_logging.WARNING)


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
        node_ctx = [c for c in store.get_contexts_by_execution(execution.id)
                    if c.type == "node" or store.get_context_types_by_id([c.type_id])[0].name == "node"]
        node_id = node_ctx[0].name.split(".", 1)[-1] if node_ctx else str(execution.id)
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


def run_pipeline(
    *,
    data_root: Path,
    layout: Layout,
    preset: str,
    enable_tuning: bool = False,
    tuner_trials: int | None = None,
    ae_max_epochs: int | None = None,
    head_max_epochs: int | None = None,
    accuracy_threshold: float | None = None,
    f1_threshold: float | None = None,
    seed: int = 0,
    enable_cache: bool = True,
    beam_pipeline_args: Sequence[str] = (),
    verbose: bool = False,
    example_gen_kwargs: dict | None = None,
) -> PipelineReport:
    """Builds and runs the pipeline with LocalDagRunner; returns what it produced."""
    from tfx import v1 as tfx

    from pipeline.factory import create_pipeline

    optional = {
        "tuner_trials": tuner_trials, "ae_max_epochs": ae_max_epochs,
        "head_max_epochs": head_max_epochs, "accuracy_threshold": accuracy_threshold,
        "f1_threshold": f1_threshold,
    }
    layout.pipeline_root.mkdir(parents=True, exist_ok=True)
    pipe = create_pipeline(
        pipeline_name=layout.pipeline_name,
        pipeline_root=layout.pipeline_root,
        data_root=data_root,
        serving_model_dir=layout.serving_base,
        metadata_path=layout.metadata_path,
        preset=preset or configs.DEFAULT_PRESET,
        enable_tuning=enable_tuning,
        seed=seed,
        enable_cache=enable_cache,
        beam_pipeline_args=list(beam_pipeline_args),
        example_gen_kwargs=example_gen_kwargs,
        **{k: v for k, v in optional.items() if v is not None},
    )
    if not verbose:
        logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices etc.
    progress = _install_progress(verbose)
    start = time.monotonic()
    try:
        tfx.orchestration.LocalDagRunner().run(pipe)
    finally:
        _remove_progress(progress)
    return summarise(layout, progress, time.monotonic() - start)


def print_report(report: PipelineReport, *, layout: Layout) -> None:
    print("\n=== mer pipeline: results ===")
    print(f"total wall time: {report.seconds:.1f}s")
    if report.timings:
        for node, seconds in report.timings.items():
            tag = " (cached)" if node in report.cached else ""
            print(f"  {node:<32} {seconds:8.1f}s{tag}")
    if report.evaluation_uri:
        print("evaluation (eval split):")
        for line in evaluation_summary(report.evaluation_uri):
            print(line)
    if report.blessed:
        print("model BLESSED: it passed every accuracy/F1 threshold and did not regress.")
    elif report.blessed is False:
        print("model NOT BLESSED (a normal outcome: it did not pass the gate), so it was not pushed:")
        if report.evaluation_uri:
            for line in validation_failures(report.evaluation_uri):
                print(line)
    if report.pushed_path:
        print(f"pushed model: {report.pushed_path}")
        print(f"serve it with: mer serve --model-base-path {layout.serving_base} "
              f"--model-name {layout.model_name}")
    else:
        print(f"no model pushed in this run (serving base path: {layout.serving_base})")
    if report.skipped_report:
        print(f"skipped files: {report.skipped_count} (report: {report.skipped_report})")
    print(f"artifacts: {layout.pipeline_root}\nmetadata:  {layout.metadata_path}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="dataset folder (4Q or PMEmo layout) or CSV manifest; "
                        "default: $MER_DATA, else the synthetic 4Q dataset written to the output folder")
    parser.add_argument("--output", help="output folder (default: $MER_OUTPUT or <repo>/outputs)")
    parser.add_argument("--preset", default=configs.DEFAULT_PRESET,
                        help=f"preset name (default: {configs.DEFAULT_PRESET})")
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
    parser.add_argument("--ae-epochs", type=int, help="override the autoencoder's max epochs")
    parser.add_argument("--head-epochs", type=int, help="override the heads' max epochs")
    parser.add_argument("--seed", type=int, default=0, help="training and synthetic-data seed")
    parser.add_argument("--clips-per-quadrant", type=int, default=8,
                        help="synthetic dataset size when no --data is given (default: 8)")
    parser.add_argument("--no-cache", action="store_true", help="re-run every component")
    parser.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                        help="Beam pipeline argument, repeatable, e.g. "
                        "--beam-arg=--direct_running_mode=multi_processing")
    parser.add_argument("--verbose", action="store_true", help="show TFX's INFO logs")


def run(args: argparse.Namespace) -> int:
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    if args.clips_per_quadrant < 1:
        raise ParameterError(
            f"--clips-per-quadrant must be at least 1. Received: {args.clips_per_quadrant}")
    layout = Layout.at(args.output, pipeline_name=args.pipeline_name, model_name=args.model_name)
    data_root = prepare_data(args.data or os.environ.get(configs.ENV_DATA), layout=layout,
                             clips_per_quadrant=args.clips_per_quadrant, seed=args.seed)
    print(f"mer pipeline: data {data_root}\n  output {layout.output}\n  preset {args.preset}",
          flush=True)
    report = run_pipeline(
        data_root=data_root, layout=layout, preset=args.preset, enable_tuning=args.tune,
        tuner_trials=args.trials, ae_max_epochs=args.ae_epochs, head_max_epochs=args.head_epochs,
        accuracy_threshold=args.accuracy_threshold, f1_threshold=args.f1_threshold, seed=args.seed,
        enable_cache=not args.no_cache, beam_pipeline_args=args.beam_arg, verbose=args.verbose,
    )
    print_report(report, layout=layout)
    return 0
