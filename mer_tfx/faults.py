"""Named points where the fault-injection tests stop a run: `fault_point(name)`.

A test-only hook. `fault_point(name)` does nothing, and costs one dictionary look-up,
unless the environment variable `MER_FAULT_AT` names that point:

    MER_FAULT_AT=<point>[,<action>[,<nth>]]

    <point>   a name passed to `fault_point` (the list is `POINTS`)
    <action>  SIGKILL (default), SIGINT or SIGTERM: sent to the process's own process
              group, so Beam's worker processes die with it, as under `kill -9 -<pgid>`;
              or ENOSPC: raise `OSError(ENOSPC)` there, as a full disk would
    <nth>     act on the n-th time this process reaches the point (default 1)

A signal goes to the whole process group: start the command in a group of its own
(`subprocess.Popen(..., start_new_session=True)`), never from an interactive shell's
group. `tests/faults/` starts `mer pipeline` and `mer score` this way.
"""

from __future__ import annotations

import errno
import os
import signal
import threading

ENV_FAULT_AT = "MER_FAULT_AT"

# Every point the code calls, for the tests and the docs.
POINTS = (
    "pipeline.before.<node id>",  # the local runner, before it launches a component
    "pipeline.after.<node id>",  # ... and after the component has ended
    "synthetic.write",  # writing the synthetic dataset, after its first clip
    "example_gen.song",  # the AudioExampleGen, after decoding a song
    "log_mel.batch",  # the LogMelTransform, computing a batch of songs
    "trainer.between_stages",  # the Trainer, after stage 1 and before stage 2
    "score.song",  # `mer score`, scoring one song (on a Beam worker)
    "score.write",  # `mer score`'s final write, before the new file is renamed into place
)
ACTIONS = ("SIGKILL", "SIGINT", "SIGTERM", "ENOSPC")

_counts: dict = {}
_lock = threading.Lock()


def parse(value: str) -> tuple[str, str, int]:
    """(point, action, nth) of a `MER_FAULT_AT` value.

    Raises:
        ValueError: an unknown action or a bad count.
    """
    parts = [part.strip() for part in value.split(",")]
    point = parts[0]
    action = (parts[1] if len(parts) > 1 and parts[1] else "SIGKILL").upper()
    if action not in ACTIONS:
        raise ValueError(
            f"{ENV_FAULT_AT}'s action must be one of {', '.join(ACTIONS)}. Received: {value!r}"
        )
    nth = int(parts[2]) if len(parts) > 2 and parts[2] else 1
    if nth < 1:
        raise ValueError(f"{ENV_FAULT_AT}'s count must be at least 1. Received: {value!r}")
    return point, action, nth


def fault_point(name: str) -> None:
    """Stops the process here if `MER_FAULT_AT` names `name` (module docstring); else nothing."""
    value = os.environ.get(ENV_FAULT_AT)
    if not value:
        return
    point, action, nth = parse(value)
    if point != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        if _counts[name] != nth:
            return
    if action == "ENOSPC":
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (fault injected at {name})")
    os.killpg(os.getpgid(0), getattr(signal, action))
    if action == "SIGKILL":  # never returns; the other signals run their handlers first
        signal.pause()
