"""One run at a time per output: `hold(lock_file, holder=..., what=...)`, and
`hold_folder(folder, command=...)` for a command's output folder.

`mer pipeline` holds `<output>/.mer-pipeline.lock` and `mer score` holds
`.<output name>.lock` beside its output file for as long as they run, so that a second
run on the same output stops at once with one line naming the first one's process id,
instead of both writing the same files, and so that a run may remove what a killed run
left behind without touching a live run's files.

The lock is the kernel's (`fcntl.flock`): it goes with the process that holds it,
whatever ends it (`kill -9` included), so a killed run never leaves a stale lock. The
file itself stays, holding the pid of its last holder. Holding it again in the same
process (a command, then the library function it calls) is allowed.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import ContextManager, Iterator, Set, Tuple

from mer_tfx.errors import OutputBusyError

_held: Set[Tuple[int, int]] = set()  # (device, inode) of each lock file this process holds


def folder_lock(folder: os.PathLike, command: str) -> Path:
    """The lock file of a command writing into `folder`: `<folder>/.<command>.lock`."""
    return Path(folder) / f".{command}.lock"


def file_lock(out: os.PathLike) -> Path:
    """The lock file of a command writing the file `out`: `.<name>.lock` beside it."""
    out = Path(out)
    return out.with_name(f".{out.name}.lock")


def hold_folder(folder: os.PathLike, *, command: str) -> ContextManager[None]:
    """`hold` of the lock of `mer <command>` writing into `folder`:
    `<folder>/.mer-<command>.lock`, held by "mer <command>", the folder named as given."""
    return hold(folder_lock(folder, f"mer-{command}"), holder=f"mer {command}", what=str(folder))


@contextlib.contextmanager
def hold(lock_file: os.PathLike, *, holder: str, what: str) -> Iterator[None]:
    """Holds `lock_file` (created if missing, its folder too) while the block runs.

    Args:
        lock_file: the lock file (`folder_lock`, `file_lock`).
        holder: who holds it, for the message: "mer pipeline".
        what: the output, for the message: a folder or file name.

    Raises:
        OutputBusyError: another process holds it; the message names its pid.
    """
    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    stat = os.fstat(fd)
    key = (stat.st_dev, stat.st_ino)
    if key in _held:  # this process holds it already: the outer block releases it
        os.close(fd)
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise OutputBusyError(
            f"another {holder} (pid {other}) is writing {what}: wait for it to end, or "
            f"give this one another output"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held.add(key)
        yield
    finally:
        _held.discard(key)
        os.close(fd)  # releases the lock
