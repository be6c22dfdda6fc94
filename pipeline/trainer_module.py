"""TFX Trainer module: the paper's two-stage training, then the serving export.

`run_fn(fn_args)` (run by `components.trainer.Executor`, TFX's generic Trainer
executor that also passes the examples' label information, Keras 3):

1. reads the transformed Examples (gzipped TFRecords with `log_mel`,
   `valence_high`, `arousal_high`, `song_id`) of the train split;
2. trains the two-stage model with `mer_tfx.recipe.train_two_stage`, the recipe
   `mer experiment` uses too: a validation part of the *train* split (20 % of the
   songs, stratified by quadrant; the Evaluator's eval split is never looked at),
   stage 1 (the masked autoencoder), the frozen encoder, and one sequence head for
   valence and one for arousal, with the Tuner's best hyperparameters when it ran;
3. exports the serving SavedModel (`mer_tfx.export`) to `fn_args.serving_model_dir`,
   with the label information of the examples artifact, and for `model_info` a line
   on the training data (`describe_training_data`) and the Evaluator's gate
   (`describe_gate`).

`fn_args.custom_config`: {"preset": the run's preset (`Preset.to_dict()`), "overrides":
{preset field: value}, "seed": int, "val_fraction": float (default
`VALIDATION_FRACTION`), "gate": {"accuracy": float, "f1": float} (the Evaluator's
thresholds), and added by the executor "examples_preset" (the preset the examples
record, which must be the run's) and "label_info": dict}. TensorBoard logs go to
`fn_args.model_run_dir`.
"""

from __future__ import annotations

import time
from typing import Dict, List, Sequence

import numpy as np
import tensorflow as tf

from components.trainer import EXAMPLES_PRESET_KEY, LABEL_INFO_KEY
from mer_tfx import console, contract, export, faults, recipe, synthetic
from mer_tfx.errors import DatasetError, ParameterError
from mer_tfx.presets import Preset

LOG_MEL = contract.LOG_MEL
LABELS = contract.LABEL_KEYS
TARGETS = contract.TARGETS
# The share of the train split's songs the Trainer holds out for early stopping (the
# Evaluator's eval split is the test set; `mer experiment`'s folds hold out
# `recipe.VALIDATION_FRACTION` of theirs).
VALIDATION_FRACTION = 0.2
PRESET_KEY = "preset"


def log(message: str) -> None:
    """Progress line on the console, flushed so the user sees it while the pipeline runs."""
    stream = console.stream()
    print(f"[mer trainer] {message}", file=stream, flush=True)


def preset_from_config(custom_config: dict | None) -> Preset:
    """The preset to train with, `custom_config["overrides"]` applied.

    It is the preset the examples record (`EXAMPLES_PRESET_KEY`, added by the Trainer's
    executor), which must equal the run's (`PRESET_KEY`, what the Tuner has); either
    alone is used as it is.

    Raises:
        ParameterError: the run's preset and the examples' differ, or neither is given.
    """
    config = dict(custom_config or {})
    given = config.get(PRESET_KEY)
    recorded = config.get(EXAMPLES_PRESET_KEY)
    if given is None and recorded is None:
        raise ParameterError(f"custom_config names no preset. Received: keys {sorted(config)}")
    preset = Preset.from_dict(recorded if recorded is not None else given)
    if given is not None and recorded is not None and Preset.from_dict(given) != preset:
        name = Preset.from_dict(given).name
        other = f"{name!r}" if name != preset.name else f"{name!r} with other settings"
        raise ParameterError(
            f"The Trainer was given preset {other}, but its examples were made with preset "
            f"{preset.name!r}: a run's preset is set once, in its RunConfig.")
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
    spec = {key: tf.io.FixedLenFeature(*value)
            for key, value in contract.log_mel_example_schema(f, with_labels=True).items()}
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


def hyperparameter_values(hyperparameters) -> dict:
    """{name: value} from the Tuner's best hyperparameters (a keras_tuner config dict) or {}."""
    if not hyperparameters:
        return {}
    if isinstance(hyperparameters, dict) and "values" in hyperparameters:
        return dict(hyperparameters["values"])
    import keras_tuner

    return dict(keras_tuner.HyperParameters.from_config(hyperparameters).values)


# The datasets a pipeline reads, by `label_info["layout"]` (mer_tfx.datasets).
DATASET_NAMES = {"4q": "4Q (Panda et al. 2018)", "pmemo": "PMEmo (Zhang et al. 2018)"}


def _is_synthetic(data_root: str) -> bool:
    """Whether `data_root` holds `mer_tfx.synthetic`'s dataset (its README says so)."""
    readme = f"{data_root.rstrip('/')}/README.txt"
    try:
        with tf.io.gfile.GFile(readme, "r") as handle:
            return handle.read(len(synthetic.README_MARKER)) == synthetic.README_MARKER
    except (tf.errors.OpError, UnicodeDecodeError):
        return False


def describe_training_data(label_info: dict | None, *, songs: int) -> str:
    """One line on what the model was trained on, for the export's `model_info`.

    Args:
        label_info: the examples artifact's `label_info.json` (its `layout` and `input`).
        songs: the training songs the Trainer read (its validation part included).

    Returns:
        e.g. "4Q (Panda et al. 2018), 607 training songs", "synthetic (mer_tfx.synthetic,
        4Q layout), 24 training songs", "CSV manifest songs.csv, 80 training songs".
    """
    info = dict(label_info or {})
    layout, data_root = info.get("layout"), str(info.get("input") or "")
    count = f"{songs} training songs"
    if layout == "4q" and data_root and _is_synthetic(data_root):
        return f"synthetic (mer_tfx.synthetic, 4Q layout), {count}"
    if layout in DATASET_NAMES:
        return f"{DATASET_NAMES[layout]}, {count}"
    if layout == "manifest":
        return f"CSV manifest {data_root.rstrip('/').rsplit('/', 1)[-1]}, {count}"
    return count


def describe_gate(gate: dict | None) -> str:
    """The Evaluator's gate as one line (`custom_config["gate"]`), or "none" without one."""
    if not gate:
        return export.NO_GATE
    return (f"valence and arousal on the eval split: accuracy >= {gate['accuracy']:g} and "
            f"F1 >= {gate['f1']:g}, and none lower than the latest blessed model's")


def describe_device() -> str:
    gpus = tf.config.list_physical_devices("GPU")
    return f"GPU ({', '.join(g.name for g in gpus)})" if gpus else "CPU (no GPU visible)"


def train_two_stage(
    data: Dict[str, np.ndarray],
    *,
    preset: Preset,
    seed: int,
    log_dir: str | None = None,
    hyperparameters: dict | None = None,
    val_fraction: float = VALIDATION_FRACTION,
    train_heads: bool = True,
    unlabeled_log_mels: np.ndarray | None = None,
) -> recipe.TwoStageResult:
    """The recipe on `load_examples` output: stratified by quadrant, one head per target.

    `train_heads=False` stops after stage 1 (the Tuner searches the heads itself).
    """
    labels = {target: data[label] for target, label in TARGETS.items()}
    common = dict(preset=preset, seed=seed, log_dir=log_dir)
    stage = recipe.pretrain_stage(
        data[LOG_MEL],
        song_ids=data["song_id"],
        strata=recipe.stratification_labels(labels, targets=tuple(TARGETS)),
        val_fraction=val_fraction,
        unlabeled_log_mels=unlabeled_log_mels,
        **common,
    )
    log(f"{len(stage.song_ids)} training songs: {len(stage.fit)} fit, "
        f"{len(stage.val)} validation; stage 1: {stage.autoencoder.epochs} epochs in "
        f"{stage.autoencoder.seconds:.1f}s (best epoch {stage.autoencoder.best_epoch})")
    if not train_heads:
        return stage
    faults.fault_point("trainer.between_stages")
    return recipe.train_heads(
        stage, labels, head_variants={recipe.DEFAULT_HEAD: dict(hyperparameters or {})}, **common
    )


def train_and_export(
    *,
    train_files: Sequence[str],
    serving_model_dir: str,
    preset: Preset,
    seed: int = 0,
    log_dir: str | None = None,
    hyperparameters=None,
    label_info: dict | None = None,
    val_fraction: float = VALIDATION_FRACTION,
    unlabeled_data: str | None = None,
    gate: dict | None = None,
) -> dict:
    """The whole Trainer: load, the two-stage recipe, export. Returns a summary dict."""
    start = time.monotonic()
    log(f"preset {preset.name}; training on {describe_device()}")
    data = load_examples(train_files, preset=preset)
    hparams = hyperparameter_values(hyperparameters)
    if hparams:
        log(f"stage 2 hyperparameters from the Tuner: {hparams}")
    unlabeled = None
    if unlabeled_data:
        from mer_tfx import training

        unlabeled, skipped = training.unlabeled_log_mels(unlabeled_data, preset=preset)
        log(f"stage 1 also trains on {len(unlabeled)} unlabelled clips from {unlabeled_data}"
            + (f" ({len(skipped)} unreadable, skipped)" if skipped else ""))
    result = train_two_stage(data, preset=preset, seed=seed, log_dir=log_dir,
                             hyperparameters=hparams, val_fraction=val_fraction,
                             unlabeled_log_mels=unlabeled if unlabeled is not None and len(unlabeled) else None)
    export.export_serving_model(
        serving_model_dir,
        encoder=result.encoder,
        valence_head=result.head("valence"),
        arousal_head=result.head("arousal"),
        preset=preset,
        label_info=dict(label_info or {}),
        training_data=describe_training_data(label_info, songs=len(data["song_id"])),
        gate=describe_gate(gate),
    )
    seconds = time.monotonic() - start
    log(f"exported the serving model to {serving_model_dir} ({seconds:.1f}s in all)")
    return {"seconds": seconds, "ae_epochs": result.autoencoder.epochs, "hyperparameters": hparams}


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (`components.trainer.Executor`)."""
    config = dict(fn_args.custom_config or {})
    train_and_export(
        train_files=fn_args.train_files,
        serving_model_dir=fn_args.serving_model_dir,
        preset=preset_from_config(config),
        seed=int(config.get("seed", 0)),
        log_dir=fn_args.model_run_dir,
        hyperparameters=fn_args.hyperparameters,
        label_info=config.get(LABEL_INFO_KEY),
        val_fraction=float(config.get("val_fraction", VALIDATION_FRACTION)),
        unlabeled_data=config.get("unlabeled_data"),
        gate=config.get("gate"),
    )
