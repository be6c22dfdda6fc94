"""The `mer` command. Each subcommand lives in `mer_tfx/commands/<name>.py` and
defines `add_arguments(parser)` and `run(args) -> int`; it is imported only when
used, so `mer --help` stays fast and a broken optional dependency of one
subcommand never breaks the others. A command module imports nothing heavy at
import time: its arguments are parsed, and `--help` or an argument error printed,
before its `run` imports TensorFlow.

The commands that load TensorFlow (`pipeline`, `experiment`, `predict`, `serve`,
`score`) print only the project's own lines: before `run`, file descriptors 1 and 2
are pointed at a log file (`mer_tfx.console.libraries_to_log`), so that
TensorFlow's C++ start-up lines, absl, Beam, setuptools and warnings go there;
`--verbose` shows them live as well. The log is `--log FILE`, else
`mer-<command>.log` in the command's output folder: `--output`, else $MER_OUTPUT,
else `./outputs` in the current folder. An error reaches the console as one line
naming the log, which holds the traceback. `mer pipeline` takes its output folder's
lock (`mer_tfx.run_lock`) before it opens the log, so a second run on the same folder
stops with one line naming the first one's pid and leaves that run's log alone.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import importlib
import os
import re
import shutil
import sys
import traceback
from pathlib import Path
from typing import List, Optional

from mer_tfx import __version__, console, run_lock
from mer_tfx.errors import MerTfxError, OutputBusyError


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: its module, one-line help, and where its log file goes.

    Attributes:
        module: the module defining `add_arguments(parser)` and `run(args)`.
        help: the one-line help.
        output: the attribute of the parsed arguments naming the command's output
            folder, where the log goes; None: the default output folder.
        output_is_file: that attribute names an output file; the log goes beside it.
        quiet: whether the libraries' output goes to a log file.
        client_option: the attribute of the parsed arguments that, when set, makes the
            command a client of a server (`mer predict --url`): TensorFlow is not
            loaded, and no log is written unless `--log` asks for one.
        exclusive: one run at a time per output folder: the command holds
            `<output>/.mer-<name>.lock` (`mer_tfx.run_lock`) from before its log is
            opened to its end, and a second run stops at once naming the first one's pid.
    """

    module: str
    help: str
    output: str | None = None
    output_is_file: bool = False
    quiet: bool = True
    client_option: str | None = None
    exclusive: bool = False


COMMANDS = {
    "pipeline": Command("mer_tfx.commands.pipeline",
                        "run the TFX pipeline end to end (default: synthetic data)", "output",
                        exclusive=True),
    "synth": Command("mer_tfx.commands.synth",
                     "write the synthetic demo dataset in 4Q's layout", quiet=False),
    "serve": Command("mer_tfx.commands.serve", "serve pushed models over TF Serving's REST API"),
    "predict": Command("mer_tfx.commands.predict",
                       "predict valence/arousal/quadrant for audio files", client_option="url"),
    "score": Command("mer_tfx.commands.score",
                     "score a catalog of songs with a pushed model (Beam; Parquet or CSV)",
                     "output", output_is_file=True),
    "experiment": Command("mer_tfx.commands.experiment",
                          "run the paper's cross-validation protocol", "output"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mer",
        description="Music emotion recognition: segment-level two-stage learning (He & Ferguson).",
    )
    parser.add_argument("--version", action="version", version=f"mer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub.add_parser(name, help=command.help, add_help=False)
    return parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of `mer <name>`: the command's own arguments, and `--log` where it
    writes one. Imports the command's module, which imports nothing heavy."""
    command = COMMANDS[name]
    module = importlib.import_module(command.module)
    parser = argparse.ArgumentParser(prog=f"mer {name}", description=command.help)
    module.add_arguments(parser)
    if command.quiet:
        folder = "beside --output" if command.output_is_file else (
            "in the --output folder" if command.output else "in $MER_OUTPUT, else ./outputs")
        client = f"; none with --{command.client_option}" if command.client_option else ""
        parser.add_argument("--log", metavar="FILE",
                            help=f"the file that receives what the libraries print (default: "
                            f"mer-{name}.log {folder}{client})")
    return parser


def default_output() -> Path:
    """The output folder when none is given: $MER_OUTPUT, else ./outputs (of the
    current folder, never beside the installed package)."""
    from pipeline import configs  # constants only: nothing heavy is imported

    return Path(os.environ.get(configs.ENV_OUTPUT) or configs.DEFAULT_OUTPUT).expanduser()


def log_file(name: str, args: argparse.Namespace) -> Path | None:
    """Where `mer <name>` with the parsed `args` writes the libraries' output; None: to
    the terminal.

    `--log`, else `mer-<name>.log` in the command's output folder. None for a command
    that loads no TensorFlow (`mer synth`, `mer predict --url` without `--log`), and
    when the caller rebound `sys.stdout`/`sys.stderr` (a test capturing them, an
    embedding program): then everything goes there, as the caller asked.
    """
    command = COMMANDS[name]
    if not command.quiet or not console.std_is_fds():
        return None
    if getattr(args, "log", None):
        return Path(args.log).expanduser().absolute()
    if command.client_option and getattr(args, command.client_option, None):
        return None
    folder = getattr(args, command.output) if command.output else None
    if folder and command.output_is_file:
        folder = Path(folder).expanduser().parent
    return (Path(folder).expanduser() if folder else default_output()).absolute() / f"mer-{name}.log"


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # TensorFlow leaves its oneDNN kernels off on CPUs without AVX-512 (e.g. AVX2-only
    # AMD EPYC), where they train the models 2-4x faster (docs/experiment.md, "Speed").
    # Must be set before TensorFlow is imported; an explicit setting wins.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv or ["--help"])  # --help, --version or an error: exits
        return 2
    name, rest = argv[0], argv[1:]
    args = command_parser(name).parse_args(rest)  # --help and argument errors exit here
    log = log_file(name, args)
    redirect = (console.libraries_to_log(log, echo=getattr(args, "verbose", False)) if log
                else contextlib.nullcontext())
    try:
        with exclusive_output(name, args), redirect:
            return _run(name, args, log)
    except OutputBusyError as error:  # before the log is opened: the other run's log stays
        console.say(f"mer {name}: error: {error}")
        return 1


def exclusive_output(name: str, args: argparse.Namespace) -> contextlib.AbstractContextManager:
    """Holds the output folder's lock of an `exclusive` command (`Command`), else nothing."""
    command = COMMANDS[name]
    if not command.exclusive:
        return contextlib.nullcontext()
    folder = getattr(args, command.output, None) if command.output else None
    folder = Path(folder).expanduser() if folder else default_output()
    return run_lock.hold_folder(folder.absolute(), command=name)


def _run(name: str, args: argparse.Namespace, log: Path | None) -> int:
    """Runs one command; errors become one console line."""
    try:
        module = importlib.import_module(COMMANDS[name].module)
        with console.ProjectWarnings(name).attached():
            return int(module.run(args) or 0)
    except MerTfxError as error:
        if log is not None:
            _traceback_to_log()
        console.say(f"mer {name}: error: {error}")
        return 1
    except KeyboardInterrupt:
        console.say(f"mer {name}: interrupted")
        return 130
    except Exception as error:
        if log is None:
            raise
        logged = _traceback_to_log()
        where = f"the traceback is in {log}" if logged else "the disk is too full for the log"
        if disk_full(error):
            console.say(f"mer {name}: error: no space left on device{_full_disk_where(error)}: "
                        f"free some space, then run the same command again ({where})")
            return 1
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        console.say(f"mer {name}: failed: {type(error).__name__}: {first}")
        console.say(f"mer {name}: {where}")
        return 1


def _traceback_to_log() -> bool:
    """Prints the exception being handled into the log; False when it cannot be written
    (a full disk), instead of raising from inside the error handling."""
    try:
        traceback.print_exc()
        sys.stderr.flush()
        return True
    except OSError:
        return False


def _chain(error: BaseException | None):
    """`error`, then the errors it was raised from or while handling, each once."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def disk_full(error: BaseException) -> bool:
    """Whether `error`, or one it was raised from or while handling, is a full disk: an
    OSError ENOSPC, TensorFlow's or Beam's "No space left on device", SQLite's (ML
    Metadata's) "database or disk is full"."""
    return any((isinstance(e, OSError) and e.errno == errno.ENOSPC)
               or any(text in str(e) for text in _DISK_FULL_TEXTS) for e in _chain(error))


_DISK_FULL_TEXTS = ("No space left on device", "database or disk is full")
# TensorFlow's and Beam's form: "ResourceExhaustedError: /out/x.gz; No space left on device".
_FULL_PATH = re.compile(r"(/[^\s;:'\"]+); No space left on device")


def full_disk_path(error: BaseException) -> str | None:
    """The file a full disk stopped, where the chain of errors names one: an ENOSPC
    OSError's `filename`, or the path in TensorFlow's or Beam's message; else None."""
    for e in _chain(error):
        if isinstance(e, OSError) and e.errno == errno.ENOSPC and e.filename:
            return str(e.filename)
        match = _FULL_PATH.search(str(e))
        if match:
            return match.group(1)
    return None


def _full_disk_where(error: BaseException) -> str:
    """" while writing PATH (N MB free there)" where the path is known, else ""."""
    path = full_disk_path(error)
    if path is None:
        return ""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        free = f" ({shutil.disk_usage(folder).free / 2**20:.0f} MB free there)"
    except OSError:
        free = ""
    return f" while writing {path}{free}"


if __name__ == "__main__":
    sys.exit(main())
