"""Beam pipeline arguments: the local parallel default and the cluster runners' sets.

- `ingest_beam_args(user_args)`: what the AudioExampleGen and the LogMelTransform
  run with by default: Beam's DirectRunner with one worker thread per core, unless
  the user's `--beam-arg`s choose the runner or the DirectRunner's mode or worker
  count themselves.

Threads, not processes, by default: every worker process of Beam's
multi-processing mode starts Python and imports Beam, TensorFlow and the
components before its first song, and each component starts its own. On the
2-core development machine that start-up costs more than ingesting 40 clips in
one process (docs/scale.md has the figures); decoding, resampling, the log-mel
graph and gzip release the GIL, so threads share the work without it.
`--direct_running_mode=multi_processing` remains the choice for long runs on
many cores.
- `CLUSTER_RUNNER_ARGS`: the `--beam-arg` sets for Flink, Spark and Dataflow, with
  `{placeholders}` that `cluster_runner_args` fills; docs/scale.md quotes them and
  a test parses them into Beam's `PipelineOptions`.
"""

from __future__ import annotations

import os
import re
import string
from typing import Dict, List, Sequence, Tuple

from mer_tfx.errors import ParameterError

# Beam's DirectRunner, one worker thread per core (docs/scale.md).
LOCAL_PARALLEL_ARGS = (
    "--direct_running_mode=multi_threading",
    "--direct_num_workers={workers}",
)

# The `--beam-arg` sets of the cluster runners. {image} is this repository's Docker
# image (Dockerfile), which the workers run as Beam's SDK harness.
CLUSTER_RUNNER_ARGS: Dict[str, Tuple[str, ...]] = {
    "flink": (
        "--runner=FlinkRunner",
        "--flink_master={flink_master}",
        "--flink_version=1.18",
        "--flink_submit_uber_jar",
        "--parallelism={parallelism}",
        "--environment_type=DOCKER",
        "--environment_config={image}",
    ),
    "spark": (
        "--runner=SparkRunner",
        "--spark_master_url={spark_master_url}",
        "--spark_version=3",
        "--environment_type=DOCKER",
        "--environment_config={image}",
    ),
    "dataflow": (
        "--runner=DataflowRunner",
        "--project={project}",
        "--region={region}",
        "--temp_location={temp_location}",
        "--sdk_container_image={image}",
        "--sdk_location=container",
        "--max_num_workers={max_num_workers}",
    ),
}


def option_names(args: Sequence[str]) -> List[str]:
    """The option names in Beam arguments: `["--runner=X", "--a", "b"]` -> `["runner", "a"]`."""
    names = []
    for arg in args:
        match = re.match(r"--([A-Za-z0-9_-]+)", str(arg))
        if match:
            names.append(match.group(1).replace("-", "_"))
    return names


def local_parallel_args(workers: int) -> List[str]:
    """DirectRunner args for `workers` worker threads.

    0 means one per core of the machine that runs the component (Beam's own rule);
    1 gives [] (one process, Beam's default in-memory mode).
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ParameterError(f"workers must be an integer >= 0. Received: workers={workers!r}")
    if workers == 1:
        return []
    return [arg.format(workers=workers) for arg in LOCAL_PARALLEL_ARGS]


# Below this many songs the ingest runs in one worker (Beam's in-memory mode). Worker
# threads cost a fixed ~2-3 s per run (their gRPC data plane and bundles) and save about a
# quarter of the per-song work on 2 cores: warm, 40 4Q clips took 7.8 s with two threads
# against 6.1 s in one worker, 400 clips 24.1 s against 32.8 s (medians, 2-core AMD EPYC,
# `benchmarks/ingest_benchmark.py --repeats`; docs/scale.md).
THREADS_MIN_SONGS = 50


def ingest_beam_args(
    user_args: Sequence[str] = (), *, workers: int | None = None, songs: int | None = None
) -> List[str]:
    """The default Beam args of the AudioExampleGen and the LogMelTransform.

    DirectRunner with `workers` worker threads (by default one per core
    of this machine, `os.cpu_count()`; nothing on a one-core machine, nor for a
    dataset of fewer than `THREADS_MIN_SONGS` songs, where threads cost more than
    they save). The user's
    args decide instead when they set `--runner` or `--direct_running_mode` (then
    nothing is added) or `--direct_num_workers` (then only the multi-threading mode
    is added, unless they asked for one worker).

    Args:
        user_args: the pipeline's Beam args (`mer pipeline --beam-arg ...`).
        workers: worker threads; 0 = one per core where the component runs.
            Defaults to `os.cpu_count()`.
        songs: the dataset's number of songs when known (a local dataset); with no
            `workers` given, fewer than `THREADS_MIN_SONGS` mean one worker.
    """
    names = set(option_names(user_args))
    if names & {"runner", "direct_running_mode"}:
        return []
    if "direct_num_workers" in names:
        from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

        chosen = PipelineOptions(list(user_args)).view_as(DirectOptions).direct_num_workers
        return local_parallel_args(chosen)[:1]  # the mode; their worker count stays
    if workers is None and songs is not None and songs < THREADS_MIN_SONGS:
        workers = 1
    return local_parallel_args(workers if workers is not None else os.cpu_count() or 1)


def cluster_runner_args(runner: str, **values: object) -> List[str]:
    """`CLUSTER_RUNNER_ARGS[runner]` with its placeholders filled from `values`.

    Raises:
        ParameterError: unknown runner, or a placeholder without a value.
    """
    if runner not in CLUSTER_RUNNER_ARGS:
        raise ParameterError(
            f"Unknown runner. Received: runner={runner!r}; known: {sorted(CLUSTER_RUNNER_ARGS)}"
        )
    template = CLUSTER_RUNNER_ARGS[runner]
    missing = sorted(placeholders(template) - set(values))
    if missing:
        raise ParameterError(f"The {runner} arguments need values for {missing}.")
    return [arg.format(**values) for arg in template]


def placeholders(args: Sequence[str]) -> set:
    """The `{names}` in argument templates."""
    return {field for arg in args for _, field, _, _ in string.Formatter().parse(arg) if field}
