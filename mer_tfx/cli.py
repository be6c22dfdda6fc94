"""The `mer` command. Each subcommand lives in `mer_tfx/commands/<name>.py` and
defines `add_arguments(parser)` and `run(args) -> int`; it is imported only when
used, so `mer --help` stays fast and a broken optional dependency of one
subcommand never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from mer_tfx.errors import MerTfxError

# name -> (module, one-line help)
COMMANDS = {
    "pipeline": ("mer_tfx.commands.pipeline", "run the TFX pipeline end to end (default: synthetic data)"),
    "synth": ("mer_tfx.commands.synth", "write the synthetic demo dataset in 4Q's layout"),
    "serve": ("mer_tfx.commands.serve", "serve pushed models over TF Serving's REST API"),
    "predict": ("mer_tfx.commands.predict", "predict valence/arousal/quadrant for audio files"),
    "experiment": ("mer_tfx.commands.experiment", "run the paper's cross-validation protocol"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mer",
        description="Music emotion recognition: segment-level two-stage learning (He & Ferguson).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow leaves its oneDNN kernels off on CPUs without AVX-512 (e.g. AVX2-only
    # AMD EPYC), where they train the models 2-4x faster (docs/experiment.md, "Speed").
    # Must be set before TensorFlow is imported; an explicit setting wins.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    sub_parser = argparse.ArgumentParser(prog=f"mer {name}", description=COMMANDS[name][1])
    module.add_arguments(sub_parser)
    args = sub_parser.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except MerTfxError as error:
        print(f"mer {name}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mer {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
