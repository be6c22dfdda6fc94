"""Stage 1: the convolutional autoencoder, pretrained to rebuild clean log-mel segments
from SpecAugment-masked ones, and its encoder run once over every segment
(`encode_segments`) to cache the embeddings stage 2 trains on.
"""

from __future__ import annotations

import math
import weakref
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from mer_tfx import presets as presets_lib
from mer_tfx.errors import ParameterError
from mer_tfx.models import ConvAutoencoder
from mer_tfx.training.fitting import (
    PresetLike,
    RelativeEarlyStopping,
    TrainResult,
    _check_int,
    _dtype_policy,
    _epochs,
    _fit,
    _segments,
    _songs,
    set_seed,
)

MASK_FILLS = ("mean", "zero", "none")
# Segments per validation batch of stage 1 (at least the training batch).
VALIDATION_BATCH = 128


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
    activity penalty, batch `ae_batch_size`, at most `ae_max_epochs` epochs and
    (when set) about `ae_max_steps` updates, rounded up to whole epochs,
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
        max_epochs: overrides the preset's `ae_max_epochs` (`ae_max_steps` still applies).
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
    epochs = _step_bound(epochs, config.training.ae_max_steps,
                         segments=budget or len(train), batch=batch)
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


def _step_bound(epochs: int, max_steps: int | None, *, segments: int, batch: int) -> int:
    """`epochs`, lowered so that stage 1 makes about `max_steps` updates at most."""
    if max_steps is None:
        return epochs
    per_epoch = max(1, math.ceil(segments / batch))
    return max(1, min(epochs, math.ceil(max_steps / per_epoch)))


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
