"""Catalog scoring speed: `mer score` (a Beam pipeline) against one `mer predict` call.

Both commands run as they would for a user, each in a fresh process, on the same
clips and the same pushed model, and are timed from start to exit (TensorFlow's
import and the model load included: that is what a user waits for):

- `mer predict <clips> --model-dir M --json`: one process, one clip at a time;
- `mer score <manifest of the clips> --model-dir M --out scores.parquet`: the
  multi-process DirectRunner, one worker per core (override with --beam-arg).

It prints songs per second of each, their ratio, and checks that both give the
same quadrants.

Usage:

    .venv/bin/python benchmarks/score_benchmark.py                       # 100 clips of ../shared/data/4q
    .venv/bin/python benchmarks/score_benchmark.py --clips 400 --model-dir outputs/serving_model
    .venv/bin/python benchmarks/score_benchmark.py --beam-arg=--direct_num_workers=4

Without --model-dir the "small" preset's architecture is exported untrained to a
temporary folder (~40 s, not timed): the production graph at its true cost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "4q"


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
    parser.add_argument("--output", help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    clips = pick_clips(Path(args.data), args.clips)
    work = tempfile.TemporaryDirectory(prefix="mer-score-bench-")
    workdir = Path(work.name)
    env = dict(os.environ, MER_OUTPUT=str(workdir / "logs"), TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    model_dir = args.model_dir
    if model_dir is None:
        print("exporting the untrained 'small' model (not timed) ...", file=sys.stderr)
        from mer_tfx.serve.testing import write_pushed_model

        write_pushed_model(workdir / "serving", architecture="small")
        model_dir = str(workdir / "serving")
    manifest = workdir / "clips.txt"
    manifest.write_text("".join(f"{clip}\n" for clip in clips))
    mer = [sys.executable, "-m", "mer_tfx.cli"]

    print(f"mer predict: {len(clips)} clips, one process ...", file=sys.stderr)
    predict_s, predict_out = timed(
        [*mer, "predict", *map(str, clips), "--model-dir", model_dir, "--json"], env
    )
    import pyarrow.parquet as pq

    predicted = {r["file"]: r.get("quadrant") for r in json.loads(predict_out) if "quadrant" in r}
    # The default runner (multi-process), and Beam's one-process runner to show its start-up
    # cost; with --beam-arg, those arguments only.
    runs = {"default runner": []}
    if args.beam_arg:
        runs = {" ".join(args.beam_arg): args.beam_arg}
    else:
        runs["one process (--direct_running_mode=in_memory)"] = ["--direct_running_mode=in_memory"]
    figures = {
        "clips": len(clips),
        "cpus": os.cpu_count(),
        "predict_seconds": predict_s,
        "predict_songs_per_second": len(clips) / predict_s,
        "score": {},
    }
    for name, beam_args in runs.items():
        out = workdir / f"scores-{len(figures['score'])}.parquet"
        print(f"mer score: {len(clips)} clips, {name} ...", file=sys.stderr)
        score_s, _ = timed(
            [*mer, "score", str(manifest), "--model-dir", model_dir, "--out", str(out)]
            + [f"--beam-arg={arg}" for arg in beam_args],
            env,
        )
        scored = {r["path"]: r["quadrant"] for r in pq.read_table(out).to_pylist()}
        agree = sum(scored.get(str(Path(f).resolve())) == q for f, q in predicted.items())
        figures["score"][name] = {
            "beam_args": beam_args,
            "seconds": score_s,
            "songs_per_second": len(clips) / score_s,
            "speedup": predict_s / score_s,
            "scored": len(scored),
            "same_quadrant_as_predict": agree,
        }
    print(f"\n{len(clips)} clips of {args.data}, {os.cpu_count()} CPUs")
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
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2))
    work.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
