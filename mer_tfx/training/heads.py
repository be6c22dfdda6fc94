"""Stage 2: the recurrent head trained on cached segment embeddings, the assembled
two-stage model, and the paper's CNN + BiLSTM baseline (trained with stage 2's settings).
"""

from __future__ import annotations

from typing import Sequence

import keras

from mer_tfx import presets as presets_lib
from mer_tfx.errors import ParameterError
from mer_tfx.models import CnnBiLstmBaseline, SequenceHead, TwoStageClassifier
from mer_tfx.training.fitting import (
    PresetLike,
    TrainResult,
    _dtype_policy,
    _epochs,
    _fit_classifier,
    _labels,
    _songs,
    set_seed,
)


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
