"""The two-stage recipe: validation split, stage 1, frozen encoder, one head per target.

The TFX Trainer (`pipeline/trainer_module.py`), the Tuner and `mer experiment`'s fold
runner all train through this module, so a change to the model or its training is
made once:

1. `validation_split` holds out a share of the TRAINING songs for early stopping
   (scikit-learn's stratified split over the songs ordered by id, so the same songs
   and seed give the same split whatever order they arrive in);
2. `pretrain_stage` pretrains the masked autoencoder (`training.pretrain_autoencoder`)
   on the fitted songs' segments plus any unlabelled log-mels, freezes its encoder
   and encodes the fitted and validation songs once;
3. `train_heads` trains one `SequenceHead` per target on those embeddings
   (`training.train_head`, built by `training.build_head`, the Tuner's builder too).

`train_two_stage` runs the three in order. Models are built under
`mer_tfx.distribute.training_strategy()` (mirrored over several GPUs).

Examples:

>>> from mer_tfx import presets, recipe
>>> result = recipe.train_two_stage(
...     log_mels, {"valence": v, "arousal": a}, song_ids=ids,
...     strata=recipe.stratification_labels({"valence": v, "arousal": a}),
...     preset=presets.get("small"), seed=0)                     # doctest: +SKIP
>>> result.head("valence").predict(result.val_embeddings)       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Mapping, Sequence, Tuple

import keras
import numpy as np

from mer_tfx import presets as presets_lib
from mer_tfx import training
from mer_tfx.errors import ParameterError

# The share of a fold's training songs held out for early stopping in the paper's protocol
# (`mer experiment`); the pipeline's Trainer holds out
# `pipeline.trainer_module.VALIDATION_FRACTION` of its train split.
VALIDATION_FRACTION = 0.1

# The one head of a plain run (the Trainer's); `mer experiment` names its variants.
DEFAULT_HEAD = "head"
# Hyperparameters a head variant may set (the Tuner searches the first three).
HEAD_HYPERPARAMETERS = ("learning_rate", "rnn_units", "dropout", "rnn_type", "bidirectional",
                        "normalize", "pool")
# How a head variant is trained and applied, beyond one head's hyperparameters:
# "seeds": that many heads from consecutive seeds, their probabilities averaged;
# "grid_shifts": K segment grids shifted by k/K of a segment (k < K) train the head
# (K sequences per song) and their probabilities are averaged at prediction time.
HEAD_OPTIONS = ("seeds", "grid_shifts")


def shifted_grid(log_mels, *, shift: int, shifts: int) -> np.ndarray:
    """The songs' segments re-cut on a grid shifted by `shift / shifts` of a segment.

    The segments of a song are contiguous, so their frames laid end to end are the
    (looped) excerpt; the grid moves `round(shift * frames / shifts)` frames later and
    wraps around to the excerpt's start, as the paper loops a short clip.

    Args:
        log_mels: float32 `[songs, segments, frames, mels]`.
        shift: which grid, in `[0, shifts)`; 0 is the grid given.
        shifts: how many grids one segment is divided into.

    Returns:
        float32 array of `log_mels`' shape.
    """
    log_mels = np.asarray(log_mels, dtype=np.float32)
    if not 0 <= shift < shifts:
        raise ParameterError(f"shift must be in [0, shifts). Received: shift={shift}, "
                             f"shifts={shifts}")
    if shift == 0:
        return log_mels
    songs, segments, frames, mels = log_mels.shape
    offset = int(round(shift * frames / shifts))
    flat = log_mels.reshape(songs, segments * frames, mels)
    return np.roll(flat, -offset, axis=1).reshape(log_mels.shape)


def average_heads(heads: Sequence[keras.Model], *, name: str | None = None) -> keras.Model:
    """One model whose probabilities are the mean of `heads`' (heads of one input shape)."""
    if len(heads) == 1:
        return heads[0]
    inputs = keras.Input(shape=(None, heads[0].embedding_dim), name="embeddings")
    outputs = keras.layers.Average()([head(inputs) for head in heads])
    return keras.Model(inputs, outputs, name=name)


def stratification_labels(labels: Mapping[str, np.ndarray], *, targets: Sequence[str]) -> np.ndarray:
    """The joint label songs are stratified on.

    Args:
        labels: target name -> int [songs] 0/1.
        targets: the targets run.

    Returns:
        int [songs]: sum of label * 2**i over the targets (for valence, arousal:
        valence + 2 * arousal, the quadrant's index).
    """
    key = np.zeros(len(labels[targets[0]]), dtype=np.int64)
    for i, target in enumerate(targets):
        key += np.asarray(labels[target], dtype=np.int64) << i
    return key


def _song_ids(song_ids) -> np.ndarray:
    return np.asarray([s.decode() if isinstance(s, bytes) else str(s) for s in song_ids])


def validation_split(
    song_ids: Sequence, strata: Sequence[int], *, fraction: float, seed: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (fit, validation) holding out `fraction` of the songs, stratified.

    The songs are ordered by id first, so the split depends only on which songs
    are given, their strata and the seed. scikit-learn's `train_test_split`
    stratifies on `strata`; where it cannot (a class with one song, or fewer
    validation songs than classes) the split is plain random.

    Args:
        song_ids: str or bytes [songs], unique.
        strata: int [songs], e.g. `stratification_labels`.
        fraction: share held out, in (0, 1); at least one song.
        seed: the split's `random_state`.

    Returns:
        (fit, val): int indices into `song_ids`, each in song-id order.

    Raises:
        ParameterError: fewer than two songs, or `fraction` outside (0, 1).
    """
    from sklearn.model_selection import train_test_split

    ids = _song_ids(song_ids)
    strata = np.asarray(strata, dtype=np.int64)
    if not 0.0 < fraction < 1.0:
        raise ParameterError(f"fraction must be in (0, 1). Received: fraction={fraction}")
    if strata.shape != ids.shape:
        raise ParameterError(
            f"strata must hold one value per song. Received: {len(strata)} strata, {len(ids)} songs"
        )
    n_val = max(1, int(round(fraction * len(ids))))
    if n_val >= len(ids):
        raise ParameterError(
            "Too few training songs to carve a validation split. Received: "
            f"{len(ids)} training songs, fraction={fraction}"
        )
    order = np.argsort(ids, kind="stable")
    positions = np.arange(len(ids))
    try:
        fit, val = train_test_split(
            positions, test_size=n_val, random_state=seed, stratify=strata[order]
        )
    except ValueError:  # a class with one member, or fewer validation songs than classes
        fit, val = train_test_split(positions, test_size=n_val, random_state=seed)
    return order[np.sort(fit)], order[np.sort(val)]


@dataclasses.dataclass
class TwoStageResult:
    """What the recipe trained.

    Attributes:
        fit: int [songs] indices (into the arrays given) of the songs fitted on, in id order.
        val: int [songs] indices of the validation songs (early stopping), in id order.
        song_ids: str [songs], the ids of the songs given.
        autoencoder: stage 1's `TrainResult` (`model` is the `ConvAutoencoder`).
        encoder: the frozen encoder, `[n, frames, mels, 1] -> [n, h, w, c]`.
        fit_embeddings, val_embeddings: float32 `[songs, segments, D]` of fit and val.
        heads: head variant -> target -> stage 2's `TrainResult` (`model` is the head, or
            the average of a variant's `seeds` heads).
        log_mels: float32 `[songs, segments, frames, mels]`, the songs given (what shifted
            grids are cut from).
        grid_shifts: head variant -> its number of segment grids (`HEAD_OPTIONS`).
    """

    fit: np.ndarray
    val: np.ndarray
    song_ids: np.ndarray
    autoencoder: training.TrainResult
    encoder: keras.Model
    fit_embeddings: np.ndarray
    val_embeddings: np.ndarray
    heads: Dict[str, Dict[str, training.TrainResult]] = dataclasses.field(default_factory=dict)
    log_mels: np.ndarray | None = None
    grid_shifts: Dict[str, int] = dataclasses.field(default_factory=dict)
    _shifted: Dict[int, Tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        default_factory=dict, repr=False)

    def head(self, target: str, variant: str = DEFAULT_HEAD) -> keras.Model:
        """The trained head of `target` (and head `variant`)."""
        return self.heads[variant][target].model

    def shifted_embeddings(self, shift: int, shifts: int) -> Tuple[np.ndarray, np.ndarray]:
        """(fit, val) embeddings of the grid `shift` of `shifts` (cached by its offset)."""
        if shift == 0:
            return self.fit_embeddings, self.val_embeddings
        key = int(round(shift * self.log_mels.shape[2] / shifts))
        if key not in self._shifted:
            grid = shifted_grid(self.log_mels, shift=shift, shifts=shifts)
            self._shifted[key] = (training.encode_segments(self.encoder, grid[self.fit]),
                                  training.encode_segments(self.encoder, grid[self.val]))
        return self._shifted[key]

    def predict(self, log_mels, target: str, variant: str = DEFAULT_HEAD) -> np.ndarray:
        """float32 `[songs, 2]` probabilities of `target` for new songs' log-mels: the
        frozen encoder, then the variant's head(s), averaged over its segment grids."""
        log_mels = np.asarray(log_mels, dtype=np.float32)
        shifts = self.grid_shifts.get(variant, 1)
        model = self.head(target, variant)
        total = 0.0
        for shift in range(shifts):
            embeddings = training.encode_segments(
                self.encoder, shifted_grid(log_mels, shift=shift, shifts=shifts))
            total = total + _probabilities(model, embeddings)
        return (total / shifts).astype(np.float32)

    def val_probabilities(self, target: str, variant: str = DEFAULT_HEAD) -> np.ndarray:
        """`predict` on the validation songs (their embeddings are cached)."""
        shifts = self.grid_shifts.get(variant, 1)
        model = self.head(target, variant)
        total = sum(_probabilities(model, self.shifted_embeddings(k, shifts)[1])
                    for k in range(shifts))
        return (total / shifts).astype(np.float32)


def _probabilities(model: keras.Model, embeddings: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The head's `[songs, 2]` softmax, computed eagerly batch by batch."""
    return np.concatenate([
        np.asarray(model(embeddings[start:start + batch_size], training=False), np.float32)
        for start in range(0, len(embeddings), batch_size)])


def _strategy(strategy):
    from mer_tfx import distribute

    return distribute.training_strategy() if strategy is None else strategy


def _check_preset(preset) -> presets_lib.Preset:
    """The recipe trains with a `Preset`: a name or JSON is parsed once, by the caller."""
    if not isinstance(preset, presets_lib.Preset):
        raise ParameterError(
            f"preset must be a Preset (mer_tfx.presets.get(name)). Received: preset={preset!r}")
    return preset


def _sub(log_dir, name: str):
    return os.path.join(str(log_dir), name) if log_dir else None


def pretrain_stage(
    log_mels,
    *,
    song_ids: Sequence,
    strata: Sequence[int],
    preset,
    seed: int = 0,
    val_fraction: float = VALIDATION_FRACTION,
    unlabeled_log_mels=None,
    max_epochs: int | None = None,
    mixed_precision: bool = False,
    log_dir=None,
    progress: bool = True,
    leave_bars: bool = True,
    description: str = "",
    strategy=None,
) -> TwoStageResult:
    """Validation split and stage 1: the frozen encoder and the songs' embeddings.

    Args:
        log_mels: float32 `[songs, segments, frames, mels]`, the training songs.
        song_ids: [songs] ids of those songs (str or bytes), unique.
        strata: int [songs], what the validation split stratifies on.
        preset: the `Preset` (look a name up with `presets.get` first).
        seed: seeds the split, the weights, the shuffles and the masks. Defaults to 0.
        val_fraction: share of the songs held out for early stopping. Defaults to
            `VALIDATION_FRACTION` (0.1).
        unlabeled_log_mels: float32 `[songs, segments, frames, mels]` (or
            `[segments, frames, mels]`) of unlabelled audio that stage 1 trains on as
            well; never validated on, never seen by the heads. Defaults to None.
        max_epochs: overrides the preset's `ae_max_epochs`.
        mixed_precision: mixed_float16 where a GPU is visible. Defaults to False.
        log_dir: TensorBoard folder (`<log_dir>/autoencoder`), or None.
        progress: show one epoch bar for the stage on `console.stream()`.
        leave_bars: keep the finished bar as the stage's summary line. Defaults to True.
        description: prefix of the bar's label (e.g. the fold).
        strategy: a `tf.distribute.Strategy`. Defaults to `distribute.training_strategy()`.

    Returns:
        A `TwoStageResult` with no heads yet.
    """
    preset = _check_preset(preset)
    log_mels = np.asarray(log_mels, dtype=np.float32)
    ids = _song_ids(song_ids)
    if log_mels.ndim != 4 or len(log_mels) != len(ids):
        raise ParameterError(
            "log_mels must be float [songs, segments, frames, mels], one row per song id. "
            f"Received: log_mels of shape {log_mels.shape}, {len(ids)} song ids"
        )
    fit, val = validation_split(ids, strata, fraction=val_fraction, seed=seed)
    frames, mels = log_mels.shape[-2:]
    fit_segments = log_mels[fit].reshape(-1, frames, mels)
    if unlabeled_log_mels is not None:
        extra = np.asarray(unlabeled_log_mels, dtype=np.float32).reshape(-1, frames, mels)
        fit_segments = np.concatenate([fit_segments, extra])
    strategy = _strategy(strategy)
    bar = training.epoch_bar(
        f"{description}stage 1 autoencoder", monitor="val_loss", mode="min",
        leave=leave_bars, enabled=progress,
    )
    with strategy.scope():
        autoencoder = training.pretrain_autoencoder(
            fit_segments,
            log_mels[val].reshape(-1, frames, mels),
            preset=preset,
            seed=seed,
            log_dir=_sub(log_dir, "autoencoder"),
            verbose=0,
            callbacks=[bar],
            max_epochs=max_epochs,
            mixed_precision=mixed_precision,
        )
    encoder = autoencoder.model.encoder
    encoder.trainable = False
    return TwoStageResult(
        fit=fit,
        val=val,
        song_ids=ids,
        autoencoder=autoencoder,
        encoder=encoder,
        fit_embeddings=training.encode_segments(encoder, log_mels[fit]),
        val_embeddings=training.encode_segments(encoder, log_mels[val]),
        log_mels=log_mels,
    )


def train_heads(
    stage: TwoStageResult,
    labels: Mapping[str, Sequence[int]],
    *,
    preset,
    seed: int = 0,
    head_variants: Mapping[str, Mapping[str, Any]] | None = None,
    max_epochs: int | None = None,
    mixed_precision: bool = False,
    log_dir=None,
    progress: bool = True,
    leave_bars: bool = True,
    description: str = "",
    strategy=None,
) -> TwoStageResult:
    """Stage 2: one head per target and head variant on `stage`'s frozen embeddings.

    Args:
        stage: `pretrain_stage`'s result; its `heads` are filled in and it is returned.
        labels: target name -> int [songs] 0/1, aligned with the songs given to
            `pretrain_stage`.
        preset: the `Preset`.
        seed: seeds the weights, dropout and the shuffle. Defaults to 0.
        head_variants: variant name -> hyperparameters overriding the preset (keys of
            `HEAD_HYPERPARAMETERS`) and `HEAD_OPTIONS` (`seeds`: average that many heads
            of consecutive seeds, by default the preset's `head_seeds`; `grid_shifts`: train on, and average over, that many
            shifted segment grids). Defaults to one variant, `DEFAULT_HEAD`, as the
            preset says.
        max_epochs: overrides the preset's `head_max_epochs`.
        mixed_precision, log_dir (`<log_dir>/<variant>/<target>`), progress, leave_bars,
            description, strategy: as in `pretrain_stage`.

    Returns:
        `stage`, with `heads[variant][target]` set.
    """
    preset = _check_preset(preset)
    variants = dict(head_variants) if head_variants else {DEFAULT_HEAD: {}}
    for name, values in variants.items():
        unknown = sorted(set(values) - set(HEAD_HYPERPARAMETERS) - set(HEAD_OPTIONS))
        bad = [k for k in HEAD_OPTIONS
               if values.get(k) is not None and (not isinstance(values[k], int) or values[k] < 1)]
        if unknown or bad:
            raise ParameterError(
                f"Head hyperparameters must be among {HEAD_HYPERPARAMETERS + HEAD_OPTIONS} "
                f"({', '.join(HEAD_OPTIONS)}: positive integers). Received: {name}={dict(values)!r}"
            )
    strategy = _strategy(strategy)
    for name, values in variants.items():
        label = "" if name == DEFAULT_HEAD else f"{name} "
        seeds = int(values.get("seeds") or preset.training.head_seeds)
        shifts = int(values.get("grid_shifts") or 1)
        grids = [stage.shifted_embeddings(k, shifts) for k in range(shifts)]
        fit_x = np.concatenate([g[0] for g in grids]) if shifts > 1 else grids[0][0]
        val_x = np.concatenate([g[1] for g in grids]) if shifts > 1 else grids[0][1]
        hyperparameters = {k: values[k] for k in HEAD_HYPERPARAMETERS if values.get(k) is not None}
        stage.grid_shifts[name] = shifts
        for target, y in labels.items():
            y = np.asarray(y)
            members = []
            for member in range(seeds):
                suffix = f" seed {member + 1}/{seeds}" if seeds > 1 else ""
                bar = training.epoch_bar(
                    f"{description}stage 2 {label}{target}{suffix}", monitor="val_accuracy",
                    mode="max", leave=leave_bars, enabled=progress,
                )
                with strategy.scope():
                    members.append(training.train_head(
                        fit_x,
                        np.tile(y[stage.fit], shifts),
                        val_x,
                        np.tile(y[stage.val], shifts),
                        preset=preset,
                        seed=seed + member,
                        log_dir=_sub(_sub(_sub(log_dir, name), target),
                                     f"seed{member}" if seeds > 1 else ""),
                        verbose=0,
                        callbacks=[bar],
                        max_epochs=max_epochs,
                        mixed_precision=mixed_precision,
                        **hyperparameters,
                    ))
            stage.heads.setdefault(name, {})[target] = _combined(members, name=f"{target}_heads")
    return stage


def _combined(members: Sequence[training.TrainResult], *, name: str) -> training.TrainResult:
    """One `TrainResult` for a variant's heads: the first's history, their averaged model."""
    if len(members) == 1:
        return members[0]
    return dataclasses.replace(
        members[0],
        model=average_heads([m.model for m in members], name=name),
        epochs=int(round(np.mean([m.epochs for m in members]))),
        best_epoch=int(round(np.mean([m.best_epoch for m in members]))),
        seconds=float(sum(m.seconds for m in members)),
    )


def train_two_stage(
    log_mels,
    labels: Mapping[str, Sequence[int]],
    *,
    song_ids: Sequence,
    strata: Sequence[int],
    preset,
    seed: int = 0,
    val_fraction: float = VALIDATION_FRACTION,
    unlabeled_log_mels=None,
    head_variants: Mapping[str, Mapping[str, Any]] | None = None,
    max_ae_epochs: int | None = None,
    max_head_epochs: int | None = None,
    mixed_precision: bool = False,
    log_dir=None,
    progress: bool = True,
    leave_bars: bool = True,
    description: str = "",
    strategy=None,
) -> TwoStageResult:
    """The whole recipe: `pretrain_stage`, then `train_heads` (see both for the arguments).

    Args:
        log_mels: float32 `[songs, segments, frames, mels]` of the training songs.
        labels: target name -> int [songs] 0/1.
        song_ids, strata, preset, seed, val_fraction, unlabeled_log_mels: as in
            `pretrain_stage`.
        head_variants: as in `train_heads`.
        max_ae_epochs, max_head_epochs: override the preset's epoch bounds.
        mixed_precision, log_dir, progress, leave_bars, description, strategy: as in
            `pretrain_stage`.

    Returns:
        `TwoStageResult`: the split, the frozen encoder, the embeddings and the heads.
    """
    strategy = _strategy(strategy)
    shared = dict(
        preset=preset, seed=seed, mixed_precision=mixed_precision, log_dir=log_dir,
        progress=progress, leave_bars=leave_bars, description=description, strategy=strategy,
    )
    stage = pretrain_stage(
        log_mels, song_ids=song_ids, strata=strata, val_fraction=val_fraction,
        unlabeled_log_mels=unlabeled_log_mels, max_epochs=max_ae_epochs, **shared,
    )
    return train_heads(
        stage, labels, head_variants=head_variants, max_epochs=max_head_epochs, **shared
    )
