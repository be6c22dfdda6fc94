"""Wall time of the main command's pipeline, per component and in total.

Runs what `bash scripts/pipeline.sh` runs by default (synthetic 4Q dataset, 8 clips
per quadrant, preset "small", default epochs and gate) in a fresh output folder,
so nothing is cached, and prints a table.

    .venv/bin/python benchmarks/pipeline_benchmark.py [--output DIR] [--keep]
        [--clips-per-quadrant N] [--preset NAME] [--cached-rerun] [--beam-arg=ARG ...]

`--beam-arg` is passed on as `mer pipeline --beam-arg` is (e.g.
`--beam-arg=--direct_num_workers=1` for Beam's single-worker DirectRunner instead of
the default one worker thread per core).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", help="output folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the output folder")
    parser.add_argument("--clips-per-quadrant", type=int, default=8)
    parser.add_argument("--preset", help="preset name or JSON (default: the pipeline's)")
    parser.add_argument("--cached-rerun", action="store_true",
                        help="also time a second, fully cached run")
    parser.add_argument("--beam-arg", action="append", default=[], dest="beam_args",
                        metavar="ARG", help="a Beam pipeline argument (repeatable)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `mer pipeline` runs (mer_tfx/cli.py)

    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    from pipeline.run_config import run_config_from
    from pipeline.run_report import evaluation_summary
    from pipeline.runner import run_pipeline

    output = Path(args.output or tempfile.mkdtemp(prefix="mer-pipeline-bench-"))
    start = time.monotonic()
    # No data given: the configuration writes the synthetic set first, as `mer pipeline` does.
    config = run_config_from({"output": str(output), "preset": args.preset,
                              "clips_per_quadrant": args.clips_per_quadrant,
                              "beam_arg": args.beam_args}, environ={})
    data_seconds = time.monotonic() - start
    report = run_pipeline(config)
    runs = [("first run", report)]
    if args.cached_rerun:
        runs.append(("cached rerun", run_pipeline(config)))

    print(f"\nmer-tfx pipeline benchmark: preset {config.preset.name}, synthetic 4Q "
          f"{args.clips_per_quadrant} clips/quadrant, {os.cpu_count()} CPU cores, "
          f"{platform.processor() or platform.machine()}"
          + (f", Beam args: {' '.join(args.beam_args)}" if args.beam_args else ""))
    print(f"{'step':<34}" + "".join(f"{name:>16}" for name, _ in runs))
    print(f"{'synthetic data':<34}{data_seconds:>15.1f}s")
    nodes = list(runs[0][1].timings)
    for node in nodes:
        cells = []
        for _, rep in runs:
            seconds = rep.timings.get(node)
            tag = "*" if node in rep.cached else " "
            cells.append(f"{seconds:>14.1f}s{tag}" if seconds is not None else f"{'-':>16}")
        print(f"{node:<34}" + "".join(cells))
    print(f"{'total (pipeline run)':<34}" + "".join(f"{rep.seconds:>15.1f}s" for _, rep in runs))
    print("* = reused from TFX's cache")
    print(f"blessed: {report.blessed}; pushed: {report.pushed_path}")
    for line in evaluation_summary(report.evaluation_uri or ""):
        if line.strip().startswith("overall"):
            print(line)
    if not args.keep and not args.output:
        shutil.rmtree(output, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
