"""`mer synth`: writes the deterministic synthetic demo dataset in 4Q's layout.

    mer synth [OUT_DIR] [--clips-per-quadrant N] [--seconds S] [--seed S]
        [--sample-rate HZ] [--short-clips N] [--corrupt-files N]

Prints where the dataset went, the song counts per quadrant and the deliberate
defects (short clips, corrupt files) that later steps must report.
"""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out_dir",
        metavar="OUT_DIR",
        nargs="?",
        help="folder to write (empty, or a previous synthetic dataset); default: "
        "synthetic_data in $MER_OUTPUT, else in ./outputs",
    )
    parser.add_argument(
        "--clips-per-quadrant",
        type=int,
        default=8,
        metavar="N",
        help="clips per quadrant (default 8)",
    )
    parser.add_argument(
        "--seconds", type=float, default=30.0, metavar="S", help="clip duration (default 30)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="same seed, byte-identical files (default 0)"
    )
    parser.add_argument(
        "--sample-rate",
        type=int,
        default=22050,
        metavar="HZ",
        help="WAV sample rate (default 22050)",
    )
    parser.add_argument(
        "--short-clips",
        type=int,
        default=1,
        metavar="N",
        help="clips 40%% as long, to exercise looping (default 1)",
    )
    parser.add_argument(
        "--corrupt-files",
        type=int,
        default=1,
        metavar="N",
        help="deliberately broken files listed in the annotations (default 1)",
    )


def run(args: argparse.Namespace) -> int:
    from mer_tfx.datasets import read_dataset
    from mer_tfx.synthetic import SHORT_CLIP_FRACTION, make_synthetic_4q
    from pipeline.layout import Layout

    start = time.perf_counter()
    out = make_synthetic_4q(
        args.out_dir or Layout.at().synthetic_data,
        clips_per_quadrant=args.clips_per_quadrant,
        seconds=args.seconds,
        sample_rate=args.sample_rate,
        seed=args.seed,
        short_clips=args.short_clips,
        corrupt_files=args.corrupt_files,
    )
    elapsed = time.perf_counter() - start
    index = read_dataset(out, layout="4q")
    counts = ", ".join(f"{q}={n}" for q, n in index.quadrant_counts().items())
    print(f"wrote synthetic 4Q-layout dataset to {out} in {elapsed:.1f} s")
    print(f"songs: {len(index.records)} ({counts}), seed {args.seed}, {args.sample_rate} Hz")
    corrupt = [r for r in index.records if "CORRUPT" in r.song_id]
    if args.short_clips:
        print(
            f"deliberate: {args.short_clips} short clip(s) of {SHORT_CLIP_FRACTION * args.seconds:g} s (looped when loaded)"
        )
    if corrupt:
        names = ", ".join(f"{r.quadrant}/{r.song_id}.wav" for r in corrupt)
        print(
            f"deliberate: {len(corrupt)} corrupt file(s) that must be reported as skipped: {names}"
        )
    print(f"see {out / 'README.txt'}")
    return 0
