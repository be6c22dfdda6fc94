"""`mer score`: score a catalog of songs with a pushed model, as a Beam pipeline (docs/scoring.md)."""

from __future__ import annotations

import argparse

from mer_tfx.commands.options import add_old_names, add_timeline_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source",
        help="a folder of audio files (any depth), a CSV manifest with a 'path' column, "
        "or a text file of paths",
    )
    model_base_path = parser.add_argument(
        "--model-base-path",
        dest="model_dir",
        metavar="PATH",
        help="the pushed model (Pusher base, model base path or version folder); "
        "default: the model shipped in the package",
    )
    add_old_names(parser, model_base_path, "--model-dir")
    output = parser.add_argument(
        "--output",
        required=True,
        metavar="FILE",
        help="scores file, .parquet or .csv; a rerun adds only the songs not yet in it "
        "(unreadable songs: <output>.skipped.csv)",
    )
    add_old_names(parser, output, "--out")
    add_timeline_arguments(parser)
    parser.add_argument(
        "--batch-size", type=int, default=8, help="songs per model call (default: 8)"
    )
    parser.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="Beam pipeline argument, repeatable (default: the DirectRunner, one process "
        "per core), e.g. --beam-arg=--direct_num_workers=4 or --beam-arg=--runner=FlinkRunner",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show what TensorFlow and Beam print (always in the log beside --output)",
    )


def run(args: argparse.Namespace) -> int:
    from mer_tfx import console, pretrained
    from mer_tfx.scoring.catalog import TimelineSettings, score_catalog

    model_dir = args.model_dir
    if model_dir is None:
        model_dir = pretrained.latest_version_dir()
        console.say(f"mer score: {pretrained.notice()}")

    timeline = (
        TimelineSettings(window_seconds=args.window, hop_seconds=args.hop)
        if args.timeline
        else None
    )
    report = score_catalog(
        args.source,
        model_dir=model_dir,
        out=args.output,
        timeline=timeline,
        beam_args=args.beam_arg,
        batch_size=args.batch_size,
    )
    if report.cleaned:
        names = ", ".join(path.name for path in report.cleaned)
        console.say(f"mer score: removed what an interrupted run left beside the output: {names}")
    console.say(
        f"mer score: {report.listed} songs listed, {report.already_scored} already in "
        f"{report.out}, {report.scored} scored, {len(report.skipped)} skipped"
    )
    if report.skipped:
        console.say(f"mer score: skipped songs and why: {report.skipped_file}")
    return 0
