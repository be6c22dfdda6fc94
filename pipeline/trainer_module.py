"""TFX Trainer module: the paper's two-stage training, then the serving export.

`run_fn(fn_args)` (TFX's generic Trainer executor, Keras 3):

1. reads the transformed Examples (gzipped TFRecords with `log_mel`,
   `valence_high`, `arousal_high`, `song_id`) of the train and eval splits;
2. holds out a validation part of the *train* split (20 % of the songs,
   stratified by quadrant, at least one song per quadrant where there are 3+),
   so that early stopping never looks at the eval split the Evaluator gates on;
3. stage 1: pretrains the convolutional autoencoder on every segment of the
   training songs (`mer_tfx.training.pretrain_autoencoder`: masked input, Huber
   loss, Adam, early stopping on the validation songs' segments);
4. stage 2: freezes the encoder, encodes every song and trains one sequence head
   for valence and one for arousal (`train_head`, early stopping on validation
   accuracy), with the Tuner's best hyperparameters when the Tuner ran;
5. exports the serving SavedModel (`mer_tfx.export`) to `fn_args.serving_model_dir`.

`fn_args.custom_config`: {"preset": name, "overrides": {preset field: value},
"seed": int}. TensorBoard logs go to `fn_args.model_run_dir`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from mer_tfx import contract, export, presets
from mer_tfx.errors import DatasetError
from mer_tfx.presets import Preset

LOG_MEL = contract.LOG_MEL
LABELS = contract.LABEL_KEYS
TARGETS = contract.TARGETS
VALIDATION_FRACTION = 0.2


def log(message: str) -> None:
    """Progress line, flushed so the user sees it while the pipeline runs."""
    print(f"[mer trainer] {message}", flush=True)


def preset_from_config(custom_config: dict | None) -> Preset:
    """The preset named in `custom_config["preset"]` with `custom_config["overrides"]` applied."""
    config = dict(custom_config or {})
    preset = presets.resolve(config.get("preset", "small"))
    overrides = config.get("overrides") or {}
    return preset.replace(**overrides) if overrides else preset


def _expand(file_patterns: Sequence[str]) -> List[str]:
    files = []
    for pattern in file_patterns:
        files.extend(sorted(tf.io.gfile.glob(pattern)))
    return files


def load_examples(file_patterns: Sequence[str], *, preset: Preset) -> Dict[str, np.ndarray]:
    """Reads transformed Examples into arrays.

    Args:
        file_patterns: glob patterns of gzipped TFRecord files (fn_args.train_files).
        preset: gives the log-mel shape.

    Returns:
        {"log_mel": float32 [songs, segments, frames, mels], "valence_high": int64 [songs],
        "arousal_high": int64 [songs], "song_id": bytes [songs]}.

    Raises:
        DatasetError: no files match, or they hold no Example.
    """
    f = preset.features
    files = _expand(file_patterns)
    if not files:
        raise DatasetError(f"No transformed example files match. Received: file_patterns={list(file_patterns)}")
    spec = {
        LOG_MEL: tf.io.FixedLenFeature([f.num_segments * f.num_frames * f.n_mels], tf.float32),
        "song_id": tf.io.FixedLenFeature([], tf.string, default_value=""),
        **{label: tf.io.FixedLenFeature([], tf.int64) for label in LABELS},
    }
    columns: Dict[str, list] = {key: [] for key in spec}
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(64)
    for batch in dataset:
        parsed = tf.io.parse_example(batch, spec)
        for key in spec:
            columns[key].append(parsed[key].numpy())
    if not columns[LOG_MEL]:
        raise DatasetError(f"The example files hold no Example. Received: files={files}")
    data = {key: np.concatenate(values) for key, values in columns.items()}
    data[LOG_MEL] = data[LOG_MEL].reshape(-1, f.num_segments, f.num_frames, f.n_mels)
    return data


def validation_split(
    valence: np.ndarray, arousal: np.ndarray, *, fraction: float = VALIDATION_FRACTION, seed: int = 0
) -> Tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) holding out `fraction` of each quadrant's songs.

    A quadrant with fewer than 3 songs gives none to validation; if that leaves
    validation empty (tiny data), validation is the training set itself.
    """
    rng = np.random.default_rng(seed)
    quadrant = np.asarray(valence) + 2 * np.asarray(arousal)
    val = []
    for q in np.unique(quadrant):
        members = np.flatnonzero(quadrant == q)
        if len(members) >= 3:
            take = max(1, int(round(fraction * len(members))))
            val.extend(rng.permutation(members)[:take].tolist())
    val_idx = np.array(sorted(val), dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(len(quadrant)), val_idx)
    if len(val_idx) == 0:
        return train_idx, train_idx
    return train_idx, val_idx


class EpochPrinter(keras.callbacks.Callback):
    """Prints one line per epoch: stage, epoch, and the logged metrics."""

    def __init__(self, stage: str, max_epochs: int):
        super().__init__()
        self.stage = stage
        self.max_epochs = max_epochs
        self._start = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items()) if np.isscalar(v))
        log(f"{self.stage}: epoch {epoch + 1}/{self.max_epochs} {metrics} "
            f"({time.monotonic() - self._start:.1f}s)")


def hyperparameter_values(hyperparameters) -> dict:
    """{name: value} from the Tuner's best hyperparameters (a keras_tuner config dict) or {}."""
    if not hyperparameters:
        return {}
    if isinstance(hyperparameters, dict) and "values" in hyperparameters:
        return dict(hyperparameters["values"])
    import keras_tuner

    return dict(keras_tuner.HyperParameters.from_config(hyperparameters).values)


def describe_device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({', '.join(g.name for g in gpus)})" if gpus else "CPU (no GPU visible)"


def pretrain_encoder(train: dict, val: dict, *, preset: Preset, seed: int, log_dir: str | None):
    """Stage 1 on every segment of the train / validation songs; returns the TrainResult."""
    from mer_tfx import training

    f = preset.features
    train_segments = train[LOG_MEL].reshape(-1, f.num_frames, f.n_mels)
    val_segments = val[LOG_MEL].reshape(-1, f.num_frames, f.n_mels)
    log(f"stage 1: autoencoder on {len(train_segments)} segments "
        f"(validation {len(val_segments)}), at most {preset.training.ae_max_epochs} epochs")
    result = training.pretrain_autoencoder(
        train_segments,
        val_segments,
        preset=preset,
        seed=seed,
        log_dir=log_dir,
        verbose=0,
        callbacks=[EpochPrinter("stage 1 autoencoder", preset.training.ae_max_epochs)],
    )
    log(f"stage 1 done: {result.epochs} epochs in {result.seconds:.1f}s (best epoch {result.best_epoch})")
    return result


def train_heads(
    train_emb: np.ndarray,
    train: dict,
    val_emb: np.ndarray,
    val: dict,
    *,
    preset: Preset,
    seed: int,
    log_dir: str | None,
    hparams: dict,
) -> dict:
    """Stage 2: one head per target on the frozen embeddings; returns {target: head model}."""
    from mer_tfx import training

    heads = {}
    for target, label in TARGETS.items():
        log(f"stage 2: {target} head on {len(train_emb)} songs (validation {len(val_emb)}), "
            f"at most {preset.training.head_max_epochs} epochs, hyperparameters {hparams or 'preset'}")
        result = training.train_head(
            train_emb,
            train[label],
            val_emb,
            val[label],
            preset=preset,
            seed=seed,
            log_dir=os.path.join(log_dir, target) if log_dir else None,
            verbose=0,
            callbacks=[EpochPrinter(f"stage 2 {target}", preset.training.head_max_epochs)],
            learning_rate=hparams.get("learning_rate"),
            rnn_units=hparams.get("rnn_units"),
            dropout=hparams.get("dropout"),
        )
        log(f"stage 2 {target} done: {result.epochs} epochs in {result.seconds:.1f}s")
        heads[target] = result.model
    return heads


def _artifact_dir(file_patterns: Sequence[str]) -> Path | None:
    """The Examples artifact folder of `.../<artifact>/Split-train/*` patterns."""
    for pattern in file_patterns:
        parent = Path(pattern).parent
        if parent.name.startswith("Split-"):
            return parent.parent
    return None


def read_label_info(file_patterns: Sequence[str]) -> dict:
    """label_info.json of the examples artifact when the transform copied it there, else {}."""
    folder = _artifact_dir(file_patterns)
    if folder is not None and (folder / "label_info.json").exists():
        return json.loads((folder / "label_info.json").read_text())
    return {}


def train_and_export(
    *,
    train_files: Sequence[str],
    serving_model_dir: str,
    preset: Preset,
    seed: int = 0,
    log_dir: str | None = None,
    hyperparameters=None,
) -> dict:
    """The whole Trainer: load, two stages, export. Returns a summary dict."""
    from mer_tfx import training

    start = time.monotonic()
    keras.utils.set_random_seed(seed)
    log(f"preset {preset.name}; training on {describe_device()}")
    data = load_examples(train_files, preset=preset)
    train_idx, val_idx = validation_split(data["valence_high"], data["arousal_high"], seed=seed)
    train = {k: v[train_idx] for k, v in data.items()}
    val = {k: v[val_idx] for k, v in data.items()}
    log(f"{len(data['song_id'])} training songs: {len(train_idx)} fit, {len(val_idx)} validation")

    stage1 = pretrain_encoder(train, val, preset=preset, seed=seed,
                              log_dir=os.path.join(log_dir, "autoencoder") if log_dir else None)
    encoder = stage1.model.encoder
    encoder.trainable = False
    train_emb = training.encode_segments(encoder, train[LOG_MEL])
    val_emb = training.encode_segments(encoder, val[LOG_MEL])
    hparams = hyperparameter_values(hyperparameters)
    heads = train_heads(train_emb, train, val_emb, val, preset=preset, seed=seed,
                        log_dir=os.path.join(log_dir, "heads") if log_dir else None, hparams=hparams)

    export.export_serving_model(
        serving_model_dir,
        encoder=encoder,
        valence_head=heads["valence"],
        arousal_head=heads["arousal"],
        preset=preset,
        label_info=read_label_info(train_files),
    )
    seconds = time.monotonic() - start
    log(f"exported the serving model to {serving_model_dir} ({seconds:.1f}s in all)")
    return {"seconds": seconds, "ae_epochs": stage1.epochs, "hyperparameters": hparams}


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (generic executor)."""
    config = dict(fn_args.custom_config or {})
    preset = preset_from_config(config)
    train_and_export(
        train_files=fn_args.train_files,
        serving_model_dir=fn_args.serving_model_dir,
        preset=preset,
        seed=int(config.get("seed", 0)),
        log_dir=fn_args.model_run_dir,
        hyperparameters=fn_args.hyperparameters,
    )
