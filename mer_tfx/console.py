"""The user's console: where mer-tfx's own lines and progress bars go.

The command line sends everything the libraries print (TensorFlow's C++ logs,
absl, Beam, setuptools, Python warnings) to a log file in the output folder, by
pointing file descriptors 1 and 2 at it before TensorFlow is imported
(`libraries_to_log`); processes started later (Beam's workers) inherit that. The
project's own lines and its progress bars still reach the terminal through
`stream()` (status lines, bars: the terminal's stderr) and `out()` (results a
user may pipe: the terminal's stdout). Code that wants a person to see a line
calls `say(line)`; a progress bar comes from `progress(...)`; nothing writes to
`sys.stdout` or `sys.stderr` directly, which is the log while a command runs.

Every console line has one of the shapes in `LINE_FORMATS`; the end-to-end test
checks a real run's terminal output against them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any, Iterator, TextIO

# The shapes of the lines the project prints on the console, by kind.
LINE_FORMATS = {
    # A command's status, warning or error: "mer pipeline: pushed /out/serving_model/mer/17".
    "message": r"mer [a-z]+: \S.*",
    # A line from inside a component: "[mer trainer] stage 1: best epoch 9 of 12".
    "tagged": r"\[mer [a-z ]+\] \S.*",
    # A pipeline node starting or ending: "[12:00:01] <== Trainer: done in 41.2s".
    "component": r"\[\d\d:\d\d:\d\d\] (==>|<==|!!!) [\w.-]+: \S.*",
    # A heading over a table: "=== evaluation (eval split) ===".
    "heading": r"=== \S.* ===",
    # A table row or detail under a heading or message, indented by two spaces.
    "row": r"  \S.*",
    # A tqdm bar (one carriage-return-separated frame): "stage 1:  50%|#####  | 6/12 [...]".
    "progress": r"(\S[^|]*: *| *)\d{1,3}%\|[^|]*\| *\d+(\.\d+)?/\d+(\.\d+)? \[.*\]"
    r"|(\S[^|]*: )?\d+(\.\d+)?[a-zA-Z ]* \[.*\]",
    "blank": r"",
}
_FORMAT = re.compile("|".join(f"(?:{pattern})" for pattern in LINE_FORMATS.values()))
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_STREAM: TextIO | None = None
_OUT: TextIO | None = None
_LOG: TextIO | None = None
_LOG_PATH: Path | None = None


def stream() -> TextIO:
    """The console: the terminal the command was started on (stderr unless redirected)."""
    return _STREAM if _STREAM is not None else sys.stderr


def set_stream(target: TextIO | None) -> None:
    """Points `stream()` at `target` (None: back to the process's stderr)."""
    global _STREAM
    _STREAM = target


def out() -> TextIO:
    """Where results go (tables, JSON): the terminal's stdout, also while redirected."""
    return _OUT if _OUT is not None else sys.stdout


def log_path() -> Path | None:
    """The log file the libraries write to, while `libraries_to_log` is active."""
    return _LOG_PATH


def std_is_fds() -> bool:
    """Whether `sys.stdout` and `sys.stderr` write to file descriptors 1 and 2 (not
    rebound by a caller, e.g. a test capturing them), so `libraries_to_log` may move them."""
    try:
        return sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def is_console_line(line: str) -> bool:
    """Whether `line` (one line, or one carriage-return frame of a bar) has a project shape."""
    return _FORMAT.fullmatch(_ANSI.sub("", line).rstrip()) is not None


def say(line: str) -> None:
    """Prints one line of the project's on the console (and into the log, for context).

    Written through tqdm, so that a progress bar being drawn is cleared and redrawn
    below the line instead of being cut in two.
    """
    from tqdm import tqdm

    tqdm.write(line, file=stream())
    stream().flush()
    if _LOG is not None:
        with contextlib.suppress(OSError):  # a full disk: the console line still counts
            _LOG.write(line + "\n")
            _LOG.flush()


def progress(*, total: int | None, desc: str, unit: str = "it", **kwargs: Any):
    """A tqdm progress bar drawn on the console: `with progress(total=n, desc=...) as bar:`."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=stream(), dynamic_ncols=True, **kwargs)


class SharedProgress:
    """A console progress bar that other processes advance: Beam's worker processes.

    A worker's stdout and stderr are the log, so it cannot draw a bar itself; it
    calls `advance(path)` once per item, which appends a byte to a file, and a
    thread here redraws the bar from the file's size. Use it around the Beam run,
    passing `path` to the DoFn: `with SharedProgress(total=n, desc="...") as shared:`.
    Only for runners on this machine (the DirectRunner); elsewhere pass no path.

    Args:
        total: items expected.
        desc: the bar's label.
        unit: the item's name. Defaults to "it".
        interval_seconds: how often the bar is redrawn. Defaults to 0.2.
    """

    def __init__(self, *, total: int, desc: str, unit: str = "it", interval_seconds: float = 0.2):
        import tempfile

        handle, name = tempfile.mkstemp(prefix="mer-progress-")
        os.close(handle)
        self.path = name
        self._bar = progress(total=total, desc=desc, unit=unit)
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mer-shared-progress", daemon=True)

    def __enter__(self) -> SharedProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        self._redraw()
        self._bar.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._redraw()

    def _redraw(self) -> None:
        with contextlib.suppress(OSError):
            done = os.path.getsize(self.path)
            if done != self._bar.n:
                self._bar.update(done - self._bar.n)


def advance(path: str | None) -> None:
    """Counts one item of a `SharedProgress` bar, from any process; never fails."""
    if path:
        with contextlib.suppress(OSError), open(path, "ab") as handle:
            handle.write(b".")


class ProjectWarnings(logging.Handler):
    """Shows the project's own WARNING and ERROR log records as console lines.

    Attached to the project's loggers (`mer_tfx`, `components`, `pipeline`) while a
    command runs: a file the ExampleGen skips, a model version the server cannot
    load. The libraries' records are not shown; they are in the log file.
    """

    LOGGERS = ("mer_tfx", "components", "pipeline")

    def __init__(self, command: str):
        super().__init__(level=logging.WARNING)
        self.command = command

    def emit(self, record: logging.LogRecord) -> None:
        try:
            kind = "error" if record.levelno >= logging.ERROR else "warning"
            message = record.getMessage().splitlines()[0]
            say(f"mer {self.command}: {kind}: {message}")
        except Exception:  # a console problem must never break the run
            self.handleError(record)

    @contextlib.contextmanager
    def attached(self) -> Iterator[ProjectWarnings]:
        loggers = [logging.getLogger(name) for name in self.LOGGERS]
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)


def _tee(source: int, targets: tuple) -> None:
    """Copies everything read from `source` to each of `targets` until end of file."""
    while True:
        chunk = os.read(source, 65536)
        if not chunk:
            break
        for target in targets:
            os.write(target, chunk)
    os.close(source)


@contextlib.contextmanager
def libraries_to_log(path: str | os.PathLike, *, echo: bool = False) -> Iterator[Path]:
    """Sends everything written to file descriptors 1 and 2 into the log file `path`.

    That catches what the libraries print from C++ (TensorFlow's start-up and CUDA
    registration lines), from Python (absl, Beam, warnings, print) and from the
    processes they start, which inherit the descriptors. The terminal stays
    reachable through `stream()` and `out()`, which write to copies of the original
    descriptors. Enter it before TensorFlow is imported: its C++ logger writes to
    descriptor 2 from the first import on.

    Args:
        path: the log file; truncated, its folder created.
        echo: also show the libraries' output live on the terminal (`--verbose`).

    Yields:
        The log file's path.
    """
    global _OUT, _LOG, _LOG_PATH
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    terminal_out, terminal_err = os.dup(1), os.dup(2)  # not inherited by child processes
    log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    tee = None
    if echo:
        read_end, write_end = os.pipe()
        tee = threading.Thread(target=_tee, args=(read_end, (log_fd, terminal_err)), daemon=True)
        tee.start()
        target = write_end
    else:
        target = log_fd
    os.dup2(target, 1)
    os.dup2(target, 2)
    if tee is not None:
        os.close(target)
    previous = (_STREAM, _OUT, _LOG, _LOG_PATH)
    console_err = open(terminal_err, "w", buffering=1, errors="replace", closefd=False)
    console_out = open(terminal_out, "w", buffering=1, errors="replace", closefd=False)
    # In echo mode the libraries' lines reach the log through the pipe; the project's
    # own lines are written to the log file directly, next to them.
    log_file = open(log_fd, "a", buffering=1, errors="replace", closefd=False)
    set_stream(console_err)
    _OUT, _LOG, _LOG_PATH = console_out, log_file, path
    try:
        yield path
    finally:
        for handle in (sys.stdout, sys.stderr, console_out, console_err, log_file):
            with contextlib.suppress(Exception):
                handle.flush()
        os.dup2(terminal_out, 1)
        os.dup2(terminal_err, 2)
        if tee is not None:  # descriptors 1 and 2 held the pipe's last write ends here
            tee.join(timeout=5)
        set_stream(previous[0])
        _OUT, _LOG, _LOG_PATH = previous[1:]
        for handle in (console_out, console_err, log_file):
            handle.close()
        for fd in (terminal_out, terminal_err, log_fd):
            os.close(fd)


@contextlib.contextmanager
def terminal_as_std() -> Iterator[None]:
    """Points `sys.stdout`/`sys.stderr` at the terminal for a moment (argparse's
    usage, help and errors, which it writes there)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out(), stream()
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
