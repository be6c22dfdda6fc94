"""Ingestion speed: AudioExampleGen + LogMelTransform, one worker and N, vs a plain librosa loop.

Takes the first N clips of a 4Q folder (N/4 per quadrant, listed in a temporary
manifest: the audio is not copied), then in the same process, on the same clips,

1. runs the two components end to end with LocalDagRunner (decode, resample,
   loop/cut to 30 s, write waveform Examples, segment, log-mel, write log-mel
   Examples) under Beam's DirectRunner: in one process
   (`--direct_running_mode=in_memory`), then with the pipeline's parallel default
   (`pipeline.beam_args.local_parallel_args`: one worker thread per core), then with
   as many worker processes (`multi_processing`);
2. runs the paper's loop: `librosa.load` + `librosa.feature.melspectrogram` per
   segment + log10(S + 1) (steps 1 and 2 repeat `--repeats` times);
3. times what multi-processing pays before any clip: starting the worker processes
   and importing TensorFlow and the components there, once per component;

and prints clips/second for each, the speed-ups, and the largest difference between
the pipeline's and librosa's log-mels (the runs with several workers must equal the
one-worker run exactly).

Before any timing, both paths are warmed on the first few clips: librosa compiles its
numba kernels on first use (up to ~20 s on the 2-core machine, which an unwarmed loop
counts as its own time), and the first pipeline run of a process pays one-time
imports and graph tracing that later runs do not. `--repeats N` runs every path N
times, interleaved, and reports the medians (a 2-core machine's wall times move
between runs minutes apart).

Usage:
    .venv/bin/python benchmarks/ingest_benchmark.py [--data ../shared/data/4q]
        [--clips 40] [--preset 4q-5s] [--workers N] [--repeats N] [--beam-arg=ARG ...]

`--beam-arg` adds Beam options to every pipeline run (after the mode's own).
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

REPO = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    shared = os.environ.get("MER_SHARED_DATA")
    return Path(shared) / "4q" if shared else REPO.parent / "shared" / "data" / "4q"


def write_manifest(data: Path, clips: int, out: Path) -> Path:
    """A manifest of the first clips//4 files of each quadrant folder."""
    rows = []
    for quadrant in ("Q1", "Q2", "Q3", "Q4"):
        files = sorted((data / quadrant).glob("*.mp3"))[: max(1, clips // 4)]
        rows += [[str(path), quadrant] for path in files]
    if not rows:
        raise SystemExit(f"No 4Q audio under {data} (expected Q1..Q4/*.mp3)")
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "quadrant"])
        writer.writerows(rows)
    return manifest


def run_pipeline(manifest: Path, preset, out: Path, beam_args):
    """Runs AudioExampleGen -> LogMelTransform with LocalDagRunner, both with `beam_args`.

    Returns:
        (log-mel Examples uri, wall seconds of the run, CPU seconds of this process and
        of the worker processes it started).
    """
    from tfx import v1 as tfx

    from components import AudioExampleGen, LogMelTransform

    example_gen = AudioExampleGen(str(manifest), preset=preset)
    transform = LogMelTransform(examples=example_gen.outputs["examples"])
    for component in (example_gen, transform):
        component.with_beam_pipeline_args(list(beam_args))
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="ingest-benchmark",
        pipeline_root=str(out),
        components=[example_gen, transform],
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(out / "metadata.sqlite")
        ),
        enable_cache=False,
    )
    cpu = _cpu_seconds()
    start = time.perf_counter()
    tfx.orchestration.LocalDagRunner().run(pipeline)
    seconds = time.perf_counter() - start
    (uri,) = glob.glob(str(out / "LogMelTransform" / "examples" / "*"))
    return uri, seconds, _cpu_seconds() - cpu


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (Beam's worker processes)."""
    import resource

    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def worker_startup_seconds(beam_args) -> float:
    """Wall time of a Beam pipeline that only makes every worker import the components.

    It is what a multi-processing executor pays before its first clip: starting the
    worker processes, which import Beam, TensorFlow and the executors' modules.
    """
    import importlib

    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    start = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        _ = (
            pipeline
            | beam.Create(["components.log_mel_transform.executor"] * 16)
            | beam.Reshuffle()
            | beam.Map(lambda name: importlib.import_module(name).__name__)
        )
    return time.perf_counter() - start


def read_log_mels(uri: str, features):
    import tensorflow as tf

    from components import example_codec
    from mer_tfx import contract

    out = {}
    files = glob.glob(os.path.join(uri, "Split-*", "*.gz"))
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        song = example.features.feature[contract.AUDIO_PATH].bytes_list.value[0].decode()
        out[song] = example_codec.float_values(example.features.feature["log_mel"]).reshape(
            features.num_segments, features.num_frames, features.n_mels
        )
    return out


def librosa_loop(paths, features):
    import librosa
    import numpy as np

    out = {}
    for path in paths:
        y, _ = librosa.load(path, sr=features.sample_rate, mono=True)
        y = np.tile(y, -(-features.clip_samples // len(y)))[: features.clip_samples]
        segments = y.reshape(features.num_segments, features.segment_samples)
        out[path] = np.stack(
            [
                np.log10(
                    librosa.feature.melspectrogram(
                        y=segment,
                        sr=features.sample_rate,
                        n_fft=features.n_fft,
                        hop_length=features.hop_length,
                        n_mels=features.n_mels,
                    )
                    + 1
                ).T
                for segment in segments
            ]
        )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="a 4Q folder")
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--preset", default="4q-5s")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="workers of the parallel runs (default: the machine's cores, as the pipeline)",
    )
    parser.add_argument("--beam-arg", action="append", default=[], help="a Beam pipeline argument")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of every path, interleaved; medians reported"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1. Received: {args.repeats}")

    # Imports first, so that no timing includes them.
    import librosa  # noqa: F401
    import numpy as np
    import tensorflow  # noqa: F401
    from tfx import v1  # noqa: F401

    import components  # noqa: F401
    import components.log_mel_transform.executor  # noqa: F401
    from mer_tfx import presets
    from pipeline import beam_args as pipeline_beam_args

    preset = presets.resolve(args.preset)
    features = preset.features
    parallel = pipeline_beam_args.local_parallel_args(args.workers)
    if not parallel:
        raise SystemExit(f"--workers must be at least 2. Received: {args.workers}")
    processes = ["--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"]
    modes = [
        ("1 worker (in_memory)", ["--direct_running_mode=in_memory"]),
        (f"{args.workers} worker threads (multi_threading, the pipeline's default)", parallel),
        (f"{args.workers} worker processes (multi_processing)", processes),
    ]
    results = {}
    with tempfile.TemporaryDirectory(prefix="mer-ingest-") as tmp:
        manifest = write_manifest(args.data, args.clips, Path(tmp))
        with open(manifest) as handle:
            paths = [row["path"] for row in csv.DictReader(handle)]
        n = len(paths)
        print(
            f"{n} clips from {args.data}, preset {preset.name}, {os.cpu_count()} CPUs, "
            f"load average {tuple(round(x, 2) for x in os.getloadavg())}",
            flush=True,
        )
        # Warm-up, untimed: librosa's numba kernels, the pipeline's one-time costs.
        (Path(tmp) / "warm-up").mkdir()
        warm = write_manifest(args.data, 4, Path(tmp) / "warm-up")
        librosa_loop(paths[:1], features)
        run_pipeline(warm, preset, Path(tmp) / "warm-up", modes[0][1] + args.beam_arg)
        times: dict = {}
        for repeat in range(args.repeats):
            for index, (name, mode_args) in enumerate(modes):
                out = Path(tmp) / f"run{repeat}-{index}"
                uri, seconds, cpu = run_pipeline(manifest, preset, out, mode_args + args.beam_arg)
                if repeat == 0:
                    results[name] = read_log_mels(uri, features)
                times.setdefault(name, []).append(seconds)
                print(
                    f"pipeline, {name}: {len(results[name])} clips in {seconds:.1f} s = "
                    f"{n / seconds:.2f} clips/s ({cpu:.1f} CPU-s)",
                    flush=True,
                )
            start, cpu = time.perf_counter(), _cpu_seconds()
            reference = librosa_loop(paths, features)
            times.setdefault("librosa", []).append(time.perf_counter() - start)
            print(
                f"librosa loop (load + melspectrogram per segment): {n} clips in "
                f"{times['librosa'][-1]:.1f} s = {n / times['librosa'][-1]:.2f} clips/s "
                f"({_cpu_seconds() - cpu:.1f} CPU-s)",
                flush=True,
            )
        startup = worker_startup_seconds(processes + args.beam_arg)
        print(
            f"multi_processing start-up (workers start and import TF + the components), "
            f"paid by each of the two components: {startup:.1f} s",
            flush=True,
        )
    median = {name: float(np.median(seconds)) for name, seconds in times.items()}
    t_librosa = median["librosa"]
    if args.repeats > 1:
        print(
            f"medians of {args.repeats} interleaved runs: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in median.items())
        )

    one = modes[0][0]
    t_one = median[one]
    for name, _ in modes[1:]:
        out, total = results[name], median[name]
        same = out.keys() == results[one].keys() and all(
            np.array_equal(out[p], results[one][p]) for p in out
        )
        net = total - 2 * startup
        print(
            f"{name}: {t_one / total:.2f}x one worker, {t_librosa / total:.2f}x the librosa loop"
            + (
                f"; without the start-up {n / net:.2f} clips/s = {t_one / net:.2f}x one worker"
                if "multi_processing" in name and net > 0
                else ""
            )
            + f"; log-mels {'identical to' if same else 'DIFFERENT from'} one worker's"
        )
    diffs = [np.abs(results[one][p] - reference[p]).max() for p in paths if p in results[one]]
    if diffs:
        print(
            f"log-mel difference pipeline vs librosa (decoders/resamplers differ): "
            f"median of per-clip max |diff| {np.median(diffs):.2e}, worst {max(diffs):.2e} (log10 units)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
