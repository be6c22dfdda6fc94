"""Catalog scoring speed: `mer score` (a Beam pipeline) against one `mer predict` call.

Both commands run as they would for a user, each in a fresh process, on the same
clips and the same pushed model, and are timed from start to exit (TensorFlow's
import and the model load included: that is what a user waits for):

- `mer predict <clips> --model-base-path M --json`: one process, one clip at a time;
- `mer score <manifest of the clips> --model-base-path M --output scores.parquet`: the
  multi-process DirectRunner, one worker per core (override with --beam-arg).

It prints songs per second of each, their ratio, and checks that both give the
same quadrants. A third command, `mer predict` on one clip, times the fixed part
(TensorFlow's import, the model's load), from which follow the per-song work and
the best ratio W workers could reach: the per-song part divides by W at most, the
start-up does not. `--repeats N` runs every command N times, interleaved, and
reports the medians (a 2-core machine's wall times move by several seconds from
run to run).

Usage:

    .venv/bin/python benchmarks/score_benchmark.py                       # 100 clips of ../shared/data/4q
    .venv/bin/python benchmarks/score_benchmark.py --clips 400 --model-dir outputs/serving_model
    .venv/bin/python benchmarks/score_benchmark.py --beam-arg=--direct_num_workers=4
    .venv/bin/python benchmarks/score_benchmark.py --clips 400 --repeats 3

Without --model-dir the "small" preset's architecture is exported untrained to a
temporary folder (~40 s, not timed): the production graph at its true cost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "4q"


def _serving_fixtures():
    """tests/fixtures/serving.py: the tests' tiny served model, which the library does not ship."""
    import importlib.util

    path = REPO / "tests" / "fixtures" / "serving.py"
    spec = importlib.util.spec_from_file_location("serving_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pick_clips(folder: Path, count: int) -> list:
    """`count` MP3s of a 4Q-layout folder, taken in turn from each quadrant folder."""
    by_quadrant = [sorted(q.glob("*.mp3")) for q in sorted(folder.glob("Q*")) if q.is_dir()]
    clips = []
    for row in range(max((len(files) for files in by_quadrant), default=0)):
        clips.extend(files[row] for files in by_quadrant if row < len(files))
    if len(clips) < count:
        raise SystemExit(f"only {len(clips)} clips under {folder}; need {count}")
    return clips[:count]


def timed(command: list, env: dict) -> tuple:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):  # 1: some clips were skipped
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{command[3]} failed with exit code {result.returncode}")
    return seconds, result.stdout


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="a 4Q-layout folder of MP3s")
    parser.add_argument("--clips", type=int, default=100, help="clips to score (default 100)")
    parser.add_argument("--model-dir", help="a pushed model (default: the untrained 'small' one)")
    parser.add_argument("--beam-arg", action="append", default=[], help="passed to mer score")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs of every command, interleaved; medians reported",
    )
    parser.add_argument("--output", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        raise SystemExit(f"--repeats must be at least 1. Received: {args.repeats}")

    clips = pick_clips(Path(args.data), args.clips)
    work = tempfile.TemporaryDirectory(prefix="mer-score-bench-")
    workdir = Path(work.name)
    env = dict(os.environ, MER_OUTPUT=str(workdir / "logs"), TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    model_dir = args.model_dir
    if model_dir is None:
        print("exporting the untrained 'small' model (not timed) ...", file=sys.stderr)
        write_pushed_model = _serving_fixtures().write_pushed_model

        write_pushed_model(workdir / "serving", architecture="small")
        model_dir = str(workdir / "serving")
    manifest = workdir / "clips.txt"
    manifest.write_text("".join(f"{clip}\n" for clip in clips))
    mer = [sys.executable, "-m", "mer_tfx.cli"]

    import pyarrow.parquet as pq

    # The default runner (multi-process), and Beam's one-process runner to show its start-up
    # cost; with --beam-arg, those arguments only.
    runs = {"default runner": []}
    if args.beam_arg:
        runs = {" ".join(args.beam_arg): args.beam_arg}
    else:
        runs["one process (--direct_running_mode=in_memory)"] = ["--direct_running_mode=in_memory"]
    predict_times, one_clip_times = [], []
    score_times, scored_runs = {name: [] for name in runs}, {}
    predicted = {}
    for repeat in range(args.repeats):
        label = f" (run {repeat + 1} of {args.repeats})" if args.repeats > 1 else ""
        print(f"mer predict: {len(clips)} clips, one process{label} ...", file=sys.stderr)
        seconds, predict_out = timed(
            [*mer, "predict", *map(str, clips), "--model-base-path", model_dir, "--json"], env
        )
        predict_times.append(seconds)
        print(f"mer predict: 1 clip (the fixed part){label} ...", file=sys.stderr)
        one_clip_times.append(
            timed([*mer, "predict", str(clips[0]), "--model-base-path", model_dir, "--json"], env)[0]
        )
        predicted = {
            r["file"]: r.get("quadrant") for r in json.loads(predict_out) if "quadrant" in r
        }
        for number, (name, beam_args) in enumerate(runs.items()):
            out = workdir / f"scores-{repeat}-{number}.parquet"
            print(f"mer score: {len(clips)} clips, {name}{label} ...", file=sys.stderr)
            seconds, _ = timed(
                [*mer, "score", str(manifest), "--model-base-path", model_dir, "--output", str(out)]
                + [f"--beam-arg={arg}" for arg in beam_args],
                env,
            )
            score_times[name].append(seconds)
            scored_runs[name] = {r["path"]: r["quadrant"] for r in pq.read_table(out).to_pylist()}
    predict_s = statistics.median(predict_times)
    figures = {
        "clips": len(clips),
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "predict_seconds": predict_s,
        "predict_seconds_each_run": predict_times,
        "predict_songs_per_second": len(clips) / predict_s,
        "score": {},
    }
    for name, beam_args in runs.items():
        score_s = statistics.median(score_times[name])
        scored = scored_runs[name]
        agree = sum(scored.get(str(Path(f).resolve())) == q for f, q in predicted.items())
        figures["score"][name] = {
            "beam_args": beam_args,
            "seconds": score_s,
            "seconds_each_run": score_times[name],
            "songs_per_second": len(clips) / score_s,
            "speedup": predict_s / score_s,
            "scored": len(scored),
            "same_quadrant_as_predict": agree,
        }
    fixed_s = statistics.median(one_clip_times)
    per_song_s = max(predict_s - fixed_s, 0.0) / max(len(clips) - 1, 1)
    workers = os.cpu_count() or 1
    best_s = fixed_s + per_song_s * len(clips) / workers
    figures["fixed_seconds"] = fixed_s
    figures["per_song_ms"] = 1000 * per_song_s
    figures["best_speedup"] = {"workers": workers, "speedup": predict_s / best_s}
    print(f"\n{len(clips)} clips of {args.data}, {os.cpu_count()} CPUs")
    if args.repeats > 1:
        print(f"  (medians of {args.repeats} interleaved runs)")
    print(
        f"  mer predict (one process): {predict_s:6.1f} s  "
        f"{figures['predict_songs_per_second']:5.2f} songs/s"
    )
    for name, run in figures["score"].items():
        print(
            f"  mer score, {name}: {run['seconds']:6.1f} s  {run['songs_per_second']:5.2f} songs/s"
            f"  = {run['speedup']:.2f}x; same quadrant for {run['same_quadrant_as_predict']} "
            f"of {len(predicted)} songs"
        )
    print(
        f"  mer predict on 1 clip: {fixed_s:.1f} s (the fixed part: TensorFlow's import, the "
        f"model's load), so {1000 * per_song_s:.0f} ms a song.\n  With {workers} workers "
        f"on {workers} free cores the per-song part divides by {workers} at best and the start-up "
        f"not at all: at best {best_s:.1f} s = {predict_s / best_s:.2f}x mer predict over these "
        f"{len(clips)} clips,\n  approaching {workers}x as the catalog grows."
    )
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2))
    work.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
