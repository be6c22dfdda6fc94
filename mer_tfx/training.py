"""Training routines of both stages, shared by the TFX Trainer and `mer experiment`.

Stage 1 (`pretrain_autoencoder`) trains the convolutional autoencoder to
rebuild clean log-mel segments from SpecAugment-masked ones. Its encoder then
turns every segment into an embedding once (`encode_segments`), so stage 2
(`train_head`) trains the recurrent head on cached embeddings without running
the frozen encoder every epoch. `build_two_stage` assembles the encoder and the
head into one log-mel -> probabilities model for evaluation and export.
`train_baseline` trains the paper's CNN + BiLSTM baseline end to end.

All inputs are NumPy arrays in memory:

- segments / log-mels: float32 `[segments, 216, 128]` for stage 1, or
  `[songs, segments, 216, 128]` (stage 1 flattens it);
- embeddings: float32 `[songs, segments, D]` (D = 27 * 16 * filters[2]);
- labels: int `[songs]`, 0 = low, 1 = high.

Settings come from a preset (`mer_tfx.presets`, Table 3 of the paper): Adam,
batch size, epochs bound and early-stopping patience per stage. Nothing pins a
device: training runs on a GPU when TensorFlow sees one.

Examples:

>>> from mer_tfx import training
>>> ae = training.pretrain_autoencoder(train_segs, val_segs, preset="small").model
>>> emb_train = training.encode_segments(ae.encoder, train_log_mels)
>>> emb_val = training.encode_segments(ae.encoder, val_log_mels)
>>> head = training.train_head(emb_train, y_train, emb_val, y_val, preset="small").model
>>> model = training.build_two_stage(ae.encoder, head)   # [b, 6, 216, 128] -> [b, 2]
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import weakref
from typing import Dict, Iterator, List, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from mer_tfx import presets as presets_lib
from mer_tfx.errors import ParameterError
from mer_tfx.models import CnnBiLstmBaseline, ConvAutoencoder, SequenceHead, TwoStageClassifier

PresetLike = Union[str, presets_lib.Preset]
MASK_FILLS = ("mean", "zero", "none")
# Segments per validation batch of stage 1 (at least the training batch).
VALIDATION_BATCH = 128


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


# --- Stage 1 -------------------------------------------------------------------------------


def masked_autoencoder_dataset(
    log_mels,
    *,
    preset: PresetLike,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    segments_per_epoch: int | None = None,
) -> tf.data.Dataset:
    """A dataset of (masked input, clean target) pairs for the autoencoder.

    Each segment gets one frequency span (width < F) and one time span
    (width < T) replaced by its mean or 0 (`FrequencyMasking`, `TimeMasking`),
    per `preset.training` (`freq_mask_param`, `time_mask_param`, `mask_fill`);
    with `mask_fill="none"` the input equals the target. Masks are drawn anew
    every epoch, reproducibly for a given `seed`.

    Args:
        log_mels: float32 `[segments, frames, mels]` or `[songs, segments, frames, mels]`.
        preset: preset name or `Preset`.
        batch_size: segments per batch.
        shuffle: reshuffle the segments every epoch. Defaults to True.
        seed: seed of the shuffle and the masks. Defaults to 0.
        segments_per_epoch: when set (and smaller than the number of segments),
            each pass over the dataset yields only this many segments, drawn afresh
            every epoch (needs `shuffle`). Defaults to None (all segments).

    Returns:
        `tf.data.Dataset` of `(masked [b, frames, mels, 1], clean [b, frames, mels, 1])` float32.
    """
    from mer_tfx.layers import FrequencyMasking, TimeMasking

    config = presets_lib.resolve(preset)
    segments = _segments("log_mels", log_mels, config.features.spectrogram_shape)
    _check_int("batch_size", batch_size)
    fill = config.training.mask_fill
    if fill not in MASK_FILLS:
        raise ParameterError(f"mask_fill must be one of {MASK_FILLS}. Received: mask_fill={fill!r}")

    if segments_per_epoch is not None:
        _check_int("segments_per_epoch", segments_per_epoch)
    dataset = tf.data.Dataset.from_tensor_slices(segments)
    if shuffle:
        dataset = dataset.shuffle(len(segments), seed=seed, reshuffle_each_iteration=True)
    if segments_per_epoch is not None and segments_per_epoch < len(segments):
        if not shuffle:
            raise ParameterError("segments_per_epoch needs shuffle=True (a fresh draw per epoch).")
        dataset = dataset.take(int(segments_per_epoch))
    dataset = dataset.batch(int(batch_size))
    if fill == "none":
        dataset = dataset.map(lambda x: (x[..., None], x[..., None]))
    else:
        # tf.data runs on the CPU: keep the masks' random state there even when a GPU is visible.
        with tf.device("/CPU:0"):
            freq_mask = FrequencyMasking(
                freq_mask_param=config.training.freq_mask_param, fill=fill, seed=seed
            )
            time_mask = TimeMasking(
                time_mask_param=config.training.time_mask_param, fill=fill, seed=seed + 1
            )

        def mask(x):
            clean = x[..., None]
            masked = time_mask(freq_mask(clean, training=True), training=True)
            return masked, clean

        dataset = dataset.map(mask)
    return dataset.prefetch(tf.data.AUTOTUNE)


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


def pretrain_autoencoder(
    train_segments,
    val_segments,
    *,
    preset: PresetLike,
    seed: int = 0,
    log_dir=None,
    verbose: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    max_epochs: int | None = None,
    mixed_precision: bool = False,
) -> TrainResult:
    """Stage 1: trains a `ConvAutoencoder` to rebuild clean segments from masked ones.

    Training batches are masked (`masked_autoencoder_dataset`); validation feeds
    the CLEAN segments as input and target (no masking), so `val_loss` measures
    plain reconstruction. Adam(`ae_learning_rate`), Huber(delta=1) plus the
    activity penalty, batch `ae_batch_size`, at most `ae_max_epochs` epochs,
    early stopping on `val_loss` with `ae_patience` (else `patience`), best weights
    restored; with `ae_min_delta` > 0 an epoch counts as better only when its loss
    is that fraction below the best so far (`RelativeEarlyStopping`). Every training
    segment is seen every epoch, unless `ae_segments_per_epoch` is set: then each
    epoch draws that many afresh and validates on a fixed quarter as many.

    Args:
        train_segments: float32 `[segments, 216, 128]` or `[songs, segments, 216, 128]`.
        val_segments: same layout, or None to early-stop on the training loss.
        preset: preset name or `Preset` (model size and Table 3 settings).
        seed: seeds the weights, the shuffle and the masks. Defaults to 0.
        log_dir: TensorBoard log folder, or None for no logs.
        verbose: Keras `fit` verbosity. Defaults to 1.
        callbacks: extra Keras callbacks.
        max_epochs: overrides the preset's `ae_max_epochs`.
        mixed_precision: use mixed_float16 when a GPU is visible (the
            reconstruction stays float32). Defaults to False.

    Returns:
        `TrainResult` whose `model` is the `ConvAutoencoder`; `model.encoder` is stage 1's product.
    """
    config = presets_lib.resolve(preset)
    shape = config.features.spectrogram_shape
    train = _segments("train_segments", train_segments, shape)
    val = None if val_segments is None else _segments("val_segments", val_segments, shape)
    epochs = _epochs(max_epochs, config.training.ae_max_epochs)
    batch = config.training.ae_batch_size
    set_seed(seed)

    with _dtype_policy(mixed_precision):
        model = ConvAutoencoder.from_preset(config)
        model.compile(
            optimizer=keras.optimizers.Adam(config.training.ae_learning_rate),
            loss=keras.losses.Huber(delta=1.0),
        )
    budget = config.training.ae_segments_per_epoch
    if val is not None and budget is not None and len(val) > max(1, budget // 4):
        # A fixed, seeded subset keeps val_loss comparable from epoch to epoch.
        keep = np.random.default_rng(seed).permutation(len(val))[: max(1, budget // 4)]
        val = val[np.sort(keep)]
    fit_kwargs = {
        "x": masked_autoencoder_dataset(
            train,
            preset=config,
            batch_size=batch,
            shuffle=True,
            seed=seed,
            segments_per_epoch=budget,
        ),
        "epochs": epochs,
        "verbose": verbose,
    }
    if val is not None:
        # Validation is a forward pass only: larger batches cost the same and step less.
        fit_kwargs["validation_data"] = tf.data.Dataset.from_tensor_slices(
            (val[..., None], val[..., None])
        ).batch(max(batch, VALIDATION_BATCH))
    monitor = "val_loss" if val is not None else "loss"
    patience = config.training.ae_patience or config.training.patience
    return _fit(
        model,
        monitor=monitor,
        mode="min",
        patience=patience,
        log_dir=log_dir,
        callbacks=callbacks,
        fit_kwargs=fit_kwargs,
        stopper=RelativeEarlyStopping(
            monitor=monitor, patience=patience, min_delta=config.training.ae_min_delta
        ),
    )


def unlabeled_log_mels(
    folder, *, preset: PresetLike, exclude: Sequence = ()
) -> tuple[np.ndarray, list]:
    """Log-mel segments of every audio file under `folder`: extra stage-1 training data.

    Stage 1 needs no labels, so any music helps it. Each file is decoded, looped or
    cut to the clip length and turned into the preset's log-mel segments, exactly as
    labelled clips are (`mer_tfx.features.clip_to_log_mel_segments`).

    Args:
        folder: a folder searched recursively for `mer_tfx.audio.AUDIO_EXTENSIONS` files.
        preset: preset name, `Preset` or its dict (the feature settings).
        exclude: paths of files to leave out (e.g. the evaluation songs' audio).

    Returns:
        (float32 `[files, segments, frames, mels]`, [(file name, reason)] of the files
        that could not be read). The array is empty (0 files) when nothing was read.

    Raises:
        ParameterError: `folder` is not a folder.
    """
    from pathlib import Path

    from mer_tfx.audio import AUDIO_EXTENSIONS, load_clip
    from mer_tfx.errors import AudioLoadError
    from mer_tfx.features import clip_to_log_mel_segments

    config = presets_lib.resolve(preset)
    root = Path(folder)
    if not root.is_dir():
        raise ParameterError(f"The unlabelled audio folder does not exist. Received: {folder}")
    skip = {Path(p).resolve() for p in exclude}
    files = sorted(p for p in root.rglob("*")
                   if p.suffix.lower() in AUDIO_EXTENSIONS and p.resolve() not in skip)
    f = config.features
    clips, skipped = [], []
    for path in files:
        try:
            waveform = load_clip(path, sample_rate=f.sample_rate, clip_seconds=f.clip_seconds)
        except AudioLoadError as error:  # unreadable audio is skipped, never fatal
            skipped.append((path.name, str(error).splitlines()[0][:200]))
            continue
        clips.append(np.asarray(clip_to_log_mel_segments(waveform[None], f))[0])
    if not clips:
        return np.zeros((0, f.num_segments, *f.spectrogram_shape), np.float32), skipped
    return np.stack(clips).astype(np.float32), skipped


# One traced call per encoder (keyed weakly: a fold's encoder is dropped with its fold).
_ENCODER_FUNCTIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _encoder_function(encoder: keras.Model, frames: int, mels: int):
    """`encoder(batch, training=False)` as a `tf.function` of any batch size, traced once.

    Not `predict_on_batch`: under a MirroredStrategy it returns every replica's copy of
    the batch, one after the other. Not an eager call either: 1.9-2.4 ms a segment
    against 0.9-1.0 ms traced (the small encoder, 360 segments, interleaved in one
    process on the loaded 2-core Xeon; the trace costs 0.3 s once)."""
    if encoder not in _ENCODER_FUNCTIONS:
        _ENCODER_FUNCTIONS[encoder] = tf.function(
            lambda batch: encoder(batch, training=False),
            input_signature=[tf.TensorSpec([None, frames, mels, 1], tf.float32)],
        )
    return _ENCODER_FUNCTIONS[encoder]


def encode_segments(encoder: keras.Model, log_mels, *, batch_size: int = 64) -> np.ndarray:
    """Runs the (frozen) encoder over every segment once: the stage-2 embedding cache.

    Args:
        encoder: `[n, frames, mels, 1] -> [n, h, w, c]`, e.g. `ConvAutoencoder.encoder`.
        log_mels: float32 `[songs, segments, frames, mels]`.
        batch_size: segments per encoder call. Defaults to 64.

    Returns:
        float32 `[songs, segments, h * w * c]` (flattened row-major, as `SegmentEncoder` does).
    """
    _check_int("batch_size", batch_size)
    frames, mels = encoder.input_shape[1:3]
    songs = _songs("log_mels", log_mels, (frames, mels))
    flat = songs.reshape(-1, frames, mels, 1)
    dim = int(np.prod(encoder.output_shape[1:]))
    out = np.empty((len(flat), dim), dtype=np.float32)
    call = _encoder_function(encoder, frames, mels)
    for start in range(0, len(flat), batch_size):
        chunk = call(tf.constant(flat[start : start + batch_size]))
        out[start : start + batch_size] = np.asarray(chunk, dtype=np.float32).reshape(
            len(chunk), dim
        )
    return out.reshape(songs.shape[0], songs.shape[1], dim)


# --- Stage 2 -------------------------------------------------------------------------------


def _compile_classifier(model: keras.Model, learning_rate: float) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def build_head(
    preset: PresetLike,
    *,
    train_embeddings,
    rnn_units: int | None = None,
    dropout: float | None = None,
    rnn_type: str | None = None,
    bidirectional: bool | None = None,
    normalize: bool | None = None,
    pool: str | None = None,
    name: str | None = None,
) -> SequenceHead:
    """The stage-2 head as the Trainer, the Tuner and `mer experiment` all build it.

    A `SequenceHead` of the preset's size (the arguments given override it) that
    accepts any number of segments; when the head normalises its input
    (`SequenceHead(normalize=True)`), its normalisation is adapted to the training
    songs' embeddings here, before any fit. Not compiled.

    Args:
        preset: preset name or `Preset`.
        train_embeddings: float32 `[songs, segments, D]`, the songs the head is fitted on.
        rnn_units, dropout, rnn_type, bidirectional, normalize: override the preset
            (`normalize`: standardise the embeddings; by default the preset's
            `normalize_embeddings` when `train_embeddings` holds at least its
            `normalize_min_songs` songs).
        pool: `SequenceHead`'s `pool` ("none", "mean" or "meanstd": summarise each
            segment embedding over the encoder map's time frames); by default the
            preset's `head_pool` under the same `normalize_min_songs` rule.
        name: the model's name (e.g. the target). Defaults to Keras' own.

    Returns:
        The untrained `SequenceHead`, `[songs, segments, D] -> [songs, 2]`.
    """
    config = presets_lib.resolve(preset)
    train_x = _songs("train_embeddings", train_embeddings)
    if train_x.ndim != 3:
        raise ParameterError(
            f"train_embeddings must be [songs, segments, D]. Received: shape {train_x.shape}"
        )
    # The preset's standardisation and pooling, given enough songs to estimate the statistics.
    enough = len(train_x) >= config.model.normalize_min_songs
    if normalize is None:
        normalize = bool(config.model.normalize_embeddings and enough)
    if pool is None:
        pool = config.model.head_pool if enough else "none"
    overrides = {
        k: v
        for k, v in {
            "rnn_units": rnn_units,
            "dropout": dropout,
            "rnn_type": rnn_type,
            "bidirectional": bidirectional,
            "normalize": normalize,
            "pool": pool,
            "name": name,
        }.items()
        if v is not None
    }
    # num_segments None: the head accepts any sequence length (e.g. other presets' caches).
    head = SequenceHead.from_preset(
        config, embedding_dim=int(train_x.shape[2]), num_segments=None, **overrides
    )
    if hasattr(head, "adapt"):
        head.adapt(train_x)
    return head


def train_head(
    train_embeddings,
    train_labels,
    val_embeddings,
    val_labels,
    *,
    preset: PresetLike,
    seed: int = 0,
    log_dir=None,
    verbose: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    max_epochs: int | None = None,
    learning_rate: float | None = None,
    rnn_units: int | None = None,
    dropout: float | None = None,
    rnn_type: str | None = None,
    bidirectional: bool | None = None,
    normalize: bool | None = None,
    pool: str | None = None,
    mixed_precision: bool = False,
) -> TrainResult:
    """Stage 2: trains a `SequenceHead` on cached segment embeddings.

    Adam(`head_learning_rate`), categorical cross-entropy on 0/1 labels (sparse
    form), batch `head_batch_size`, at most `head_max_epochs` epochs, early
    stopping on `val_accuracy` (mode max) with `patience`, best weights restored.

    Args:
        train_embeddings: float32 `[songs, segments, D]` (`encode_segments` output).
        train_labels: int `[songs]`, 1 = high.
        val_embeddings: float32 `[songs, segments, D]`, or None to early-stop on
            training accuracy.
        val_labels: int `[songs]` (None when `val_embeddings` is None).
        preset: preset name or `Preset`.
        seed: seeds the weights, dropout and the shuffle. Defaults to 0.
        log_dir, verbose, callbacks, max_epochs, mixed_precision: as in
            `pretrain_autoencoder`.
        learning_rate, rnn_units, dropout, rnn_type, bidirectional, normalize, pool:
            override the preset (e.g. for hyperparameter search); as in `build_head`.

    Returns:
        `TrainResult` whose `model` is the `SequenceHead` ([songs, segments, D] -> [songs, 2]).
    """
    config = presets_lib.resolve(preset)
    train_x = _songs("train_embeddings", train_embeddings)
    if train_x.ndim != 3:
        raise ParameterError(
            f"train_embeddings must be [songs, segments, D]. Received: shape {train_x.shape}"
        )
    train_y = _labels("train_labels", train_labels, len(train_x))
    val = None
    if val_embeddings is not None:
        val_x = _songs("val_embeddings", val_embeddings, train_x.shape[2:])
        val = (val_x, _labels("val_labels", val_labels, len(val_x)))
    epochs = _epochs(max_epochs, config.training.head_max_epochs)
    set_seed(seed)
    with _dtype_policy(mixed_precision):
        model = build_head(
            config,
            train_embeddings=train_x,
            rnn_units=rnn_units,
            dropout=dropout,
            rnn_type=rnn_type,
            bidirectional=bidirectional,
            normalize=normalize,
            pool=pool,
        )
        _compile_classifier(
            model, config.training.head_learning_rate if learning_rate is None else learning_rate
        )
    return _fit_classifier(
        model,
        train=(train_x, train_y),
        val=val,
        config=config,
        epochs=epochs,
        verbose=verbose,
        log_dir=log_dir,
        callbacks=callbacks,
    )


def build_two_stage(
    encoder: keras.Model, head: keras.Model, *, num_segments: int | None = None
) -> TwoStageClassifier:
    """The paper's model: `[batch, segments, frames, mels]` log-mel -> `[batch, 2]` probabilities.

    The encoder is frozen (and copied without its stage-1 activity penalty);
    the head's trained weights are used as they are. `num_segments` fixes the
    input's segment axis (None: the head's, which `train_head` leaves open).
    """
    return TwoStageClassifier(encoder=encoder, head=head, num_segments=num_segments)


def train_baseline(
    train_log_mels,
    train_labels,
    val_log_mels,
    val_labels,
    *,
    preset: PresetLike,
    seed: int = 0,
    log_dir=None,
    verbose: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    max_epochs: int | None = None,
    learning_rate: float | None = None,
    mixed_precision: bool = False,
) -> TrainResult:
    """Trains the `CnnBiLstmBaseline` end to end on log-mel segments and labels.

    The paper gives no separate settings for the baseline; it uses stage 2's:
    Adam(`head_learning_rate`), batch `head_batch_size`, at most `head_max_epochs`,
    early stopping on `val_accuracy` with `patience`, best weights restored. No
    masking (the masks are part of the autoencoder's unsupervised stage).

    Args:
        train_log_mels: float32 `[songs, segments, 216, 128]`.
        train_labels: int `[songs]`.
        val_log_mels: float32 `[songs, segments, 216, 128]`, or None.
        val_labels: int `[songs]`, or None.
        preset, seed, log_dir, verbose, callbacks, max_epochs, learning_rate,
            mixed_precision: as in `train_head`.

    Returns:
        `TrainResult` whose `model` is the `CnnBiLstmBaseline`.
    """
    config = presets_lib.resolve(preset)
    shape = config.features.spectrogram_shape
    train_x = _songs("train_log_mels", train_log_mels, shape)
    train_y = _labels("train_labels", train_labels, len(train_x))
    val = None
    if val_log_mels is not None:
        val_x = _songs("val_log_mels", val_log_mels, shape)
        val = (val_x, _labels("val_labels", val_labels, len(val_x)))
    epochs = _epochs(max_epochs, config.training.head_max_epochs)
    set_seed(seed)
    with _dtype_policy(mixed_precision):
        model = CnnBiLstmBaseline.from_preset(config, num_segments=None)
        _compile_classifier(
            model, config.training.head_learning_rate if learning_rate is None else learning_rate
        )
    return _fit_classifier(
        model,
        train=(train_x, train_y),
        val=val,
        config=config,
        epochs=epochs,
        verbose=verbose,
        log_dir=log_dir,
        callbacks=callbacks,
    )
