"""What both stages' training shares: the result type, argument checks, seeding, the
mixed-precision policy, the fit with early stopping and the epoch progress bar.

The stages themselves are `mer_tfx.training.pretraining` (stage 1) and
`mer_tfx.training.heads` (stage 2 and the baseline); import them all from
`mer_tfx.training`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Dict, Iterator, List, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from mer_tfx import presets as presets_lib
from mer_tfx.errors import ParameterError

PresetLike = Union[str, presets_lib.Preset]


@dataclasses.dataclass
class TrainResult:
    """What a training routine returns.

    Attributes:
        model: the trained model, holding the weights of its best epoch.
        history: metric name -> one value per epoch run (Keras `History.history`).
        epochs: epochs actually run (early stopping may end before the bound).
        seconds: wall-clock seconds spent in `fit`.
        best_epoch: 1-based epoch whose weights the model holds (best monitored value).
        monitor: the metric early stopping watched, e.g. "val_loss".
    """

    model: keras.Model
    history: Dict[str, List[float]]
    epochs: int
    seconds: float
    best_epoch: int
    monitor: str = ""


def _check_int(name: str, value, *, minimum: int = 1) -> int:
    """`value` as an int, or ParameterError naming it when it is not an int >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ParameterError(f"{name} must be {kind}. Received: {name}={value!r}")
    return int(value)


def set_seed(seed: int) -> None:
    """Seeds Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(_check_int("seed", seed, minimum=0))


def _segments(name: str, values, spectrogram_shape) -> np.ndarray:
    """float32 [n, frames, mels] from [n, frames, mels] or [songs, segments, frames, mels]."""
    array = np.asarray(values, dtype=np.float32)
    if array.ndim == 4:
        array = array.reshape(-1, *array.shape[2:])
    if array.ndim != 3 or tuple(array.shape[1:]) != tuple(spectrogram_shape) or len(array) == 0:
        raise ParameterError(
            f"{name} must be float [segments, {spectrogram_shape[0]}, {spectrogram_shape[1]}] "
            f"or [songs, segments, ...] with at least one segment. Received: {name} of shape "
            f"{np.shape(values)}"
        )
    return array


def _songs(name: str, values, inner_shape: Sequence[int] | None = None) -> np.ndarray:
    """float32 [songs, segments, ...]; `inner_shape` checks the dims after `segments`."""
    array = np.asarray(values, dtype=np.float32)
    ok = array.ndim >= 3 and len(array) > 0 and array.shape[1] > 0
    if ok and inner_shape is not None:
        ok = tuple(array.shape[2:]) == tuple(inner_shape)
    if not ok:
        expected = "..." if inner_shape is None else ", ".join(str(d) for d in inner_shape)
        raise ParameterError(
            f"{name} must be float [songs, segments, {expected}] with at least one song. "
            f"Received: {name} of shape {np.shape(values)}"
        )
    return array


def _labels(name: str, values, songs: int, num_classes: int = 2) -> np.ndarray:
    array = np.asarray(values)
    if array.shape != (songs,) or not np.all(np.isin(array, np.arange(num_classes))):
        raise ParameterError(
            f"{name} must be {songs} integer class indices in [0, {num_classes}). "
            f"Received: {name} of shape {array.shape}, values {np.unique(array)[:10].tolist()}"
        )
    return array.astype(np.int64)


def _epochs(max_epochs: int | None, default: int) -> int:
    return _check_int("max_epochs", default if max_epochs is None else max_epochs)


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (mixed precision is used only then)."""
    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def _dtype_policy(mixed_precision: bool) -> Iterator[str]:
    """Builds models under mixed_float16 when asked and a GPU is visible; yields the policy."""
    previous = keras.config.dtype_policy()
    use_mixed = bool(mixed_precision) and gpu_visible()
    if use_mixed:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        yield "mixed_float16" if use_mixed else previous.name
    finally:
        if use_mixed:
            keras.config.set_dtype_policy(previous)


def _fit(
    model: keras.Model,
    *,
    monitor: str,
    mode: str,
    patience: int,
    log_dir,
    callbacks: Sequence[keras.callbacks.Callback],
    fit_kwargs: dict,
    stopper: keras.callbacks.EarlyStopping | None = None,
) -> TrainResult:
    if stopper is None:
        stopper = keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
        )
    all_callbacks = [stopper]
    if log_dir is not None:
        all_callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
    all_callbacks.extend(callbacks)
    start = time.perf_counter()
    history = model.fit(callbacks=all_callbacks, **fit_kwargs)
    seconds = time.perf_counter() - start
    values = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    epochs = len(next(iter(values.values()), []))
    return TrainResult(
        model=model,
        history=values,
        epochs=epochs,
        seconds=seconds,
        best_epoch=int(stopper.best_epoch) + 1,
        monitor=monitor,
    )


def _fit_classifier(
    model: keras.Model,
    *,
    train: tuple,
    val: tuple | None,
    config: presets_lib.Preset,
    epochs: int,
    verbose: int,
    log_dir,
    callbacks: Sequence[keras.callbacks.Callback],
) -> TrainResult:
    """Stage-2 fit shared by the head and the baseline: batch `head_batch_size`,
    early stopping on validation accuracy (training accuracy without validation)."""
    fit_kwargs = {
        "x": train[0],
        "y": train[1],
        "batch_size": config.training.head_batch_size,
        "epochs": epochs,
        "shuffle": True,
        "verbose": verbose,
    }
    if val is not None:
        fit_kwargs["validation_data"] = val
    return _fit(
        model,
        monitor="val_accuracy" if val is not None else "accuracy",
        mode="max",
        patience=config.training.patience,
        log_dir=log_dir,
        callbacks=callbacks,
        fit_kwargs=fit_kwargs,
    )


class _EpochBar(keras.callbacks.Callback):
    """`epoch_bar`'s callback. tqdm's own Keras callback is made when training begins, so
    this one deep-copies (keras-tuner copies a search's callbacks for every trial)."""

    def __init__(self, desc, *, monitor, mode, leave, enabled):
        super().__init__()
        self.desc, self.monitor, self.mode = desc, monitor, mode
        self.leave, self.enabled = leave, enabled
        self.best_epoch, self.best, self._bar = 0, None, None

    def on_train_begin(self, logs=None):
        from tqdm.keras import TqdmCallback

        from mer_tfx import console

        self.best_epoch, self.best = 0, None
        self._bar = TqdmCallback(
            epochs=self.params.get("epochs"),
            verbose=0,
            desc=self.desc,
            file=console.stream(),
            leave=self.leave,
            disable=not self.enabled,
        )
        self._bar.set_params(self.params)
        self._bar.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._bar.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and (
            self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        ):
            self.best_epoch, self.best = epoch + 1, float(value)
        self._bar.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        if self.best is not None:
            self._bar.epoch_bar.set_postfix_str(
                f"best epoch {self.best_epoch}: {self.monitor}={self.best:.4g}", refresh=False
            )
        self._bar.on_train_end(logs)
        self._bar = None


def epoch_bar(
    desc: str,
    *,
    monitor: str,
    mode: str = "min",
    leave: bool = True,
    enabled: bool = True,
) -> keras.callbacks.Callback:
    """One tqdm bar over the epochs of one fit, on `mer_tfx.console.stream()`.

    tqdm's own Keras callback (`tqdm.keras.TqdmCallback`, epochs only) with the
    epoch's metrics as its postfix; when training ends the postfix names the best
    epoch of `monitor` (the weights early stopping keeps), so with `leave=True` the
    finished bar is the stage's summary line.

    Args:
        desc: the bar's label, e.g. "stage 1 autoencoder".
        monitor: the metric early stopping watches, e.g. "val_loss".
        mode: "min" or "max": which way `monitor` improves. Defaults to "min".
        leave: keep the finished bar on the console. Defaults to True.
        enabled: False gives a silent callback. Defaults to True.
    """
    if mode not in ("min", "max"):
        raise ParameterError(f"mode must be 'min' or 'max'. Received: mode={mode!r}")
    return _EpochBar(desc, monitor=monitor, mode=mode, leave=leave, enabled=enabled)


class RelativeEarlyStopping(keras.callbacks.EarlyStopping):
    """Early stopping (mode "min") where an improvement must beat the best by a fraction.

    A value counts as better only when it is below `best * (1 - min_delta)`: a loss
    that keeps creeping down by less than that for `patience` epochs ends training,
    whatever its scale. `min_delta=0` is Keras' `EarlyStopping(mode="min")`.

    Args:
        monitor: the metric watched, e.g. "val_loss" (non-negative).
        patience: epochs without an improvement before training stops.
        min_delta: the relative improvement needed, in [0, 1).
    """

    def __init__(self, *, monitor: str, patience: int, min_delta: float):
        if not 0.0 <= min_delta < 1.0:
            raise ParameterError(f"min_delta must be in [0, 1). Received: min_delta={min_delta}")
        super().__init__(monitor=monitor, mode="min", patience=patience,
                         restore_best_weights=True)
        self.relative_delta = float(min_delta)

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None or not np.isfinite(reference_value):
            return True
        return monitor_value < reference_value * (1.0 - self.relative_delta)
