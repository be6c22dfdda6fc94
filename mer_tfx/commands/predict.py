"""`mer predict`: valence, arousal and quadrant of audio files (see docs/serving.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mer_tfx import console
from mer_tfx.commands.options import add_old_names, add_timeline_arguments
from mer_tfx.contract import MODEL_NAME


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", help="audio files (MP3, WAV, FLAC, OGG), any rate and length"
    )
    parser.add_argument(
        "--url", help="TF Serving / `mer serve` REST root, e.g. http://localhost:8501"
    )
    model_base_path = parser.add_argument(
        "--model-base-path",
        dest="model_dir",
        metavar="PATH",
        help="without --url: a pushed model (Pusher base, model base path or version folder); "
        "default: the model shipped in the package",
    )
    add_old_names(parser, model_base_path, "--model-dir")
    parser.add_argument(
        "--model-name", default=MODEL_NAME, help=f"served model name (default: {MODEL_NAME})"
    )
    parser.add_argument("--version", type=int, help="pin a served version (default: the latest)")
    parser.add_argument(
        "--payload",
        choices=("wav", "json"),
        default="wav",
        help="REST body: base64 16-bit WAV (default, ~10x smaller) or JSON float lists",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--verbose", action="store_true",
                        help="also show what TensorFlow prints (always in the log too: see --log)")
    add_timeline_arguments(parser)
    parser.add_argument(
        "--plot",
        help="with --timeline: write a PNG here (several files: one PNG each, <stem>_<song>.png)",
    )


def _plot_path(plot: str, song: str, many: bool) -> Path:
    path = Path(plot)
    if not many:
        return path
    return path.with_name(f"{path.stem}_{Path(song).stem}{path.suffix or '.png'}")


def _open_model(args: argparse.Namespace):
    """A `RestModel` when --url is given, else the pushed model in --model-base-path, in process,
    else the model shipped in the package (said in one line)."""
    if args.url:
        from mer_tfx.client.rest_model import RestModel

        return RestModel(
            url=args.url, model_name=args.model_name, version=args.version, payload=args.payload
        )
    from mer_tfx import pretrained
    from mer_tfx.client.local_model import LocalModel

    model_dir = args.model_dir
    if model_dir is None:
        model_dir = pretrained.latest_version_dir()
        console.say(f"mer predict: {pretrained.notice()}")
    return LocalModel(model_dir=model_dir)


def run(args: argparse.Namespace) -> int:
    from mer_tfx.client.file_predictions import format_table, map_files, predict_files
    from mer_tfx.errors import ParameterError

    out = console.out()  # the results; the libraries' output is in the log
    if args.plot and not args.timeline:
        raise ParameterError(f"--plot needs --timeline. Received: --plot {args.plot}")
    model = _open_model(args)

    def print_json(results, failures):
        by_path = {result["file"]: result for result in results}
        by_path.update({path: {"file": path, "error": reason} for path, reason in failures})
        print(json.dumps([by_path[str(f)] for f in args.files], indent=2), file=out)

    try:
        info = model.model_info()
        if not args.timeline:
            results, failures = predict_files(args.files, model=model)
            if args.json:
                print_json([r.to_dict() for r in results], failures)
            elif results:
                print(format_table(results), file=out)
        else:
            from mer_tfx.client.timeline import analyse_timeline, format_timeline, plot_timeline

            timelines, failures = map_files(
                args.files,
                model=model,
                analyse=lambda path, waveform: analyse_timeline(
                    waveform,
                    model=model,
                    sample_rate=info.sample_rate,
                    window_seconds=args.window,
                    hop_seconds=args.hop,
                    path=path,
                ),
            )
            for timeline in timelines if args.plot else ():
                plot = plot_timeline(
                    timeline, path=_plot_path(args.plot, timeline.path, len(args.files) > 1)
                )
                console.say(f"mer predict: wrote {plot}")
            if args.json:
                print_json([t.to_dict() for t in timelines], failures)
            else:
                print("\n\n".join(format_timeline(t) for t in timelines), file=out)
    finally:
        model.close()
    for path, reason in failures:
        console.say(f"mer predict: skipped {path}: {reason}")
    return 1 if failures else 0
