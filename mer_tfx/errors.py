"""Exception types raised by mer-tfx.

Every error a user can cause by passing a bad value or a bad file derives from
`MerTfxError`, so callers can catch the project's errors without catching
unrelated bugs.
"""

from __future__ import annotations


class MerTfxError(Exception):
    """Base class of every error raised on purpose by mer-tfx."""


class ParameterError(MerTfxError, ValueError):
    """A parameter has a value the function cannot use; the message names it."""


class AudioLoadError(MerTfxError):
    """An audio file could not be read or decoded.

    Attributes:
        path: the file that failed.
        reason: a short, human readable reason (e.g. "file is empty").
    """

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Cannot load audio file {self.path!r}: {reason}")


class DatasetError(MerTfxError):
    """A dataset folder or manifest does not have a layout mer-tfx can read."""


class NoSpaceError(MerTfxError, OSError):
    """The disk filled up while mer-tfx was writing; the message says how much space is needed.

    It is an `OSError` too, so code that handles file system errors still catches it.
    """


class OutputBusyError(MerTfxError):
    """Another run holds the output this run would write (`mer_tfx.run_lock`); the message
    names its process id."""
