"""Writing a folder aside and renaming it into place when complete.

`write_aside(out, needed_bytes=...)` yields an empty hidden sibling of `out`
(`.<name>.mer-writing`); when the block finishes, that folder replaces `out` by
renames, so `out` holds either its previous content or the complete new one, never
half of it. A killed process leaves only hidden siblings, which
`recover_interrupted_write(out)` removes (or puts back) on the next call. A full
disk is reported as `NoSpaceError` with the space needed and the space free.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Iterator, List, Tuple

import soundfile

from mer_tfx.errors import NoSpaceError

# Hidden siblings of `out`: the folder being written, and the one it replaces.
STAGING_SUFFIX = ".mer-writing"
REPLACED_SUFFIX = ".mer-replaced"


def siblings(out: Path) -> Tuple[Path, Path]:
    """The hidden folders beside `out`: the one being written, and the one it replaces."""
    return (
        out.parent / f".{out.name}{STAGING_SUFFIX}",
        out.parent / f".{out.name}{REPLACED_SUFFIX}",
    )


def recover_interrupted_write(out: Path) -> List[Path]:
    """Removes what a killed `write_aside` left beside `out`; returns the folders removed.

    A leftover staging folder is incomplete: it is removed. A leftover replaced
    folder is the previous content: it is put back when the new one never reached
    `out` (and is not in the list), and removed when it did.
    """
    staging, replaced = siblings(out)
    removed = []
    if staging.exists():
        shutil.rmtree(staging)
        removed.append(staging)
    if replaced.exists():
        if out.exists():
            shutil.rmtree(replaced)
            removed.append(replaced)
        else:
            os.rename(replaced, out)
    return removed


@contextlib.contextmanager
def write_aside(out: Path, *, needed_bytes: int, hint: str) -> Iterator[Path]:
    """Yields an empty folder to fill; on success it replaces `out`, an existing folder.

    Args:
        out: the folder to replace (it must exist; call `recover_interrupted_write` first).
        needed_bytes: about how much the content takes, for the full-disk message.
        hint: what the user can write less of, for the full-disk message ("fewer clips").

    Raises:
        NoSpaceError: the disk filled up (ENOSPC, or libsndfile's bare "System error."
            with less space free than needed). Nothing partial is left behind.
    """
    staging, replaced = siblings(out)
    staging.mkdir()
    try:
        yield staging
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        free = shutil.disk_usage(out).free
        if _is_disk_full(error, needed=needed_bytes, free=free):
            raise NoSpaceError(
                f"No space left on device while writing {str(out)!r}: need about "
                f"{_megabytes(needed_bytes)} MB ({_megabytes(free)} MB free). Free some space, "
                f"or write {hint}, then run again; nothing partial was left behind."
            ) from error
        raise
    if not any(out.iterdir()):
        os.replace(staging, out)  # a rename onto an empty folder replaces it at once
        return
    os.rename(out, replaced)
    os.rename(staging, out)
    shutil.rmtree(replaced)


def _is_disk_full(error: BaseException, *, needed: int, free: int) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return isinstance(error, soundfile.LibsndfileError) and free < needed


def _megabytes(num_bytes: int) -> str:
    return f"{num_bytes / 1e6:.1f}"
