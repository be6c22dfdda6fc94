"""Unit tests of `mer pipeline`'s own parts (no pipeline runs)."""

from __future__ import annotations

import io
import logging

from mer_tfx.commands import pipeline as pipeline_command


def _record(msg, *args):
    return logging.LogRecord("absl", logging.INFO, __file__, 1, msg, args, None)


def test_component_progress_reports_timings_and_cache():
    stream = io.StringIO()
    progress = pipeline_command.ComponentProgress(stream=stream)
    progress.emit(_record("Component %s is running.", "Trainer"))
    progress.emit(_record("A cached execution %d is used.", 7))
    progress.emit(_record("Component %s is finished.", "Trainer"))
    progress.emit(_record("Component %s is running.", "Pusher"))
    progress.emit(_record("Component %s is finished.", "Pusher"))
    lines = stream.getvalue().splitlines()
    assert "==> Trainer: running" in lines[0]
    assert "<== Trainer: cached, reused in" in lines[1]
    assert "<== Pusher: done in" in lines[3]
    assert set(progress.timings) == {"Trainer", "Pusher"} and progress.cached == {"Trainer"}
