"""The tf.distribute strategy the training routines build their models under."""

from __future__ import annotations

import os
from typing import Sequence

# Comma-separated devices to mirror over, e.g. "/cpu:0,/cpu:1" (tests: two logical CPUs).
DEVICES_ENV = "MER_TFX_MIRRORED_DEVICES"


def training_strategy(devices: Sequence[str] | None = None):
    """`MirroredStrategy` over the visible GPUs when there are several, else the default.

    One GPU or none: the default strategy (no replication, no overhead). Models and
    optimizers are created inside `training_strategy().scope()`.

    Args:
        devices: mirror over exactly these devices instead (two or more, e.g.
            `["/cpu:0", "/cpu:1"]`). Defaults to the `MER_TFX_MIRRORED_DEVICES`
            environment variable (comma-separated) when set, else the visible GPUs.
    """
    import tensorflow as tf

    if devices is None and os.environ.get(DEVICES_ENV):
        devices = [d.strip() for d in os.environ[DEVICES_ENV].split(",") if d.strip()]
    if devices is None:
        devices = [g.name for g in tf.config.list_logical_devices("GPU")]
    if len(devices) > 1:
        return tf.distribute.MirroredStrategy(list(devices))
    return tf.distribute.get_strategy()
