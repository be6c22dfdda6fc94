"""The tf.distribute strategy the training routines build their models under."""

from __future__ import annotations


def training_strategy():
    """`MirroredStrategy` over the visible GPUs when there are several, else the default.

    One GPU or none: the default strategy (no replication, no overhead). Models and
    optimizers are created inside `training_strategy().scope()`.
    """
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    return tf.distribute.get_strategy()
