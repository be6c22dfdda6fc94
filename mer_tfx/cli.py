"""The `mer` command. Each subcommand lives in `mer_tfx/commands/<name>.py` and
defines `add_arguments(parser)` and `run(args) -> int`; it is imported only when
used, so `mer --help` stays fast and a broken optional dependency of one
subcommand never breaks the others.

The commands that load TensorFlow (`pipeline`, `experiment`, `predict`, `serve`)
print only the project's own lines: before their module is imported, file
descriptors 1 and 2 are pointed at a log file (`mer_tfx.console.libraries_to_log`),
so that TensorFlow's C++ start-up lines, absl, Beam, setuptools and warnings go
there; `--verbose` shows them live as well. An error reaches the console as one
line naming the log, which holds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import List, Optional

from mer_tfx import console
from mer_tfx.errors import MerTfxError


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: its module, one-line help, and where its log file goes.

    Attributes:
        module: the module defining `add_arguments(parser)` and `run(args)`.
        help: the one-line help.
        log_folder_option: the option naming the folder the log goes into (the
            command's output folder); None: the default output folder.
        option_names_a_file: the option names an output file; the log goes beside it.
        quiet: whether the libraries' output goes to a log file.
    """

    module: str
    help: str
    log_folder_option: str | None = None
    option_names_a_file: bool = False
    quiet: bool = True


COMMANDS = {
    "pipeline": Command("mer_tfx.commands.pipeline",
                        "run the TFX pipeline end to end (default: synthetic data)", "--output"),
    "synth": Command("mer_tfx.commands.synth",
                     "write the synthetic demo dataset in 4Q's layout", quiet=False),
    "serve": Command("mer_tfx.commands.serve", "serve pushed models over TF Serving's REST API"),
    "predict": Command("mer_tfx.commands.predict",
                       "predict valence/arousal/quadrant for audio files"),
    "score": Command("mer_tfx.commands.score",
                     "score a catalog of songs with a pushed model (Beam; Parquet or CSV)",
                     "--out", option_names_a_file=True),
    "experiment": Command("mer_tfx.commands.experiment",
                          "run the paper's cross-validation protocol", "--out"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mer",
        description="Music emotion recognition: segment-level two-stage learning (He & Ferguson).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def default_output() -> Path:
    """The output folder when none is given: $MER_OUTPUT, else <repo>/outputs."""
    from pipeline import configs  # constants only: nothing heavy is imported

    return Path(os.environ.get(configs.ENV_OUTPUT) or configs.DEFAULT_OUTPUT)


def log_file(name: str, rest: List[str]) -> Path | None:
    """Where `mer <name> <rest>` writes the libraries' output; None: to the terminal.

    The log is `<output folder>/mer-<name>.log`, the output folder read from the
    command's own option before its module (and TensorFlow) is imported. None when
    the caller rebound `sys.stdout`/`sys.stderr` (a test capturing them, an embedding
    program): then everything goes there, as the caller asked.
    """
    command = COMMANDS[name]
    if not command.quiet or {"-h", "--help"} & set(rest) or not console.std_is_fds():
        return None
    folder = None
    if command.log_folder_option:
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument(command.log_folder_option, dest="folder")
        known, _ = pre.parse_known_args(rest)
        folder = known.folder
        if folder and command.option_names_a_file:
            folder = Path(folder).parent
    return Path(folder or default_output()).expanduser() / f"mer-{name}.log"


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
    log = log_file(name, rest)
    redirect = (console.libraries_to_log(log, echo="--verbose" in rest) if log
                else contextlib.nullcontext())
    with redirect:
        return _run(name, rest, log)


def _run(name: str, rest: List[str], log: Path | None) -> int:
    """Imports, parses and runs one command; errors become one console line."""
    try:
        module = importlib.import_module(COMMANDS[name].module)
        sub_parser = argparse.ArgumentParser(prog=f"mer {name}", description=COMMANDS[name].help)
        module.add_arguments(sub_parser)
        with console.terminal_as_std():  # usage, --help and argument errors
            args = sub_parser.parse_args(rest)
        with console.ProjectWarnings(name).attached():
            return int(module.run(args) or 0)
    except MerTfxError as error:
        if log is not None:
            traceback.print_exc()  # into the log
        console.say(f"mer {name}: error: {error}")
        return 1
    except KeyboardInterrupt:
        console.say(f"mer {name}: interrupted")
        return 130
    except Exception as error:
        if log is None:
            raise
        traceback.print_exc()
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        console.say(f"mer {name}: failed: {type(error).__name__}: {first}")
        console.say(f"mer {name}: the traceback is in {log}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
