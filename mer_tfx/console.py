"""The user's console: where mer-tfx's own lines and progress bars go.

The command line sends everything the libraries print (TensorFlow, absl, Beam,
setuptools) to a log file in the output folder; the project's own lines and its
progress bars still reach the terminal through `stream()`. Library code that
wants to show progress to a person writes there, never to `sys.stdout` directly.
"""

from __future__ import annotations

import sys
from typing import TextIO

_STREAM: TextIO | None = None


def stream() -> TextIO:
    """The console: the terminal the command was started on (stderr unless redirected)."""
    return _STREAM if _STREAM is not None else sys.stderr


def set_stream(target: TextIO | None) -> None:
    """Points `stream()` at `target` (None: back to the process's stderr)."""
    global _STREAM
    _STREAM = target
