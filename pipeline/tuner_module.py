"""TFX Tuner module: keras-tuner random search over the stage-2 head.

Stage 2 trains on the frozen encoder's embeddings, so `tuner_fn` first runs stage 1
of the recipe as the Trainer does (`trainer_module.train_two_stage`: same seed,
validation songs and encoder), and then searches on the embeddings:

- `learning_rate`: Adam learning rate of the head, log-uniform 1e-5 .. 1e-2;
- `rnn_units`: 16, 32, 64, 128 (the paper's 512 is the preset default);
- `dropout`: 0.0 .. 0.6.

Each trial builds one model with a valence and an arousal head
(`mer_tfx.training.build_head`, the Trainer's head builder) sharing those values
and minimises their summed validation loss. The Trainer reads the best values
from the Tuner's `best_hyperparameters` artifact (keys as above).

`fn_args.custom_config`: the Trainer's keys plus "trials" (default 4).
"""

from __future__ import annotations

import os

import keras
import keras_tuner
import numpy as np
from tfx import v1 as tfx

from pipeline import trainer_module

LEARNING_RATE = "learning_rate"
RNN_UNITS = "rnn_units"
DROPOUT = "dropout"
DEFAULT_TRIALS = 4


def search_space() -> keras_tuner.HyperParameters:
    """The hyperparameters the Tuner searches (also the Trainer's accepted keys)."""
    hp = keras_tuner.HyperParameters()
    hp.Float(LEARNING_RATE, 1e-5, 1e-2, sampling="log")
    hp.Choice(RNN_UNITS, [16, 32, 64, 128])
    hp.Float(DROPOUT, 0.0, 0.6, step=0.1)
    return hp


def build_head_pair(
    hp: keras_tuner.HyperParameters, *, preset, train_embeddings: np.ndarray
) -> keras.Model:
    """Embeddings [batch, segments, D] -> {"valence": [batch, 2], "arousal": [batch, 2]}.

    Each head is `mer_tfx.training.build_head`'s, as the Trainer and `mer experiment`
    build it (adapted to `train_embeddings`, the training songs' embeddings).
    """
    from mer_tfx import training

    inputs = keras.Input((None, train_embeddings.shape[-1]), name="embeddings")
    outputs = {
        target: training.build_head(
            preset,
            train_embeddings=train_embeddings,
            rnn_units=hp.get(RNN_UNITS),
            dropout=hp.get(DROPOUT),
            name=target,
        )(inputs)
        for target in trainer_module.TARGETS
    }
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.get(LEARNING_RATE)),
        loss={t: "sparse_categorical_crossentropy" for t in outputs},
        metrics={t: ["accuracy"] for t in outputs},
    )
    return model


def tuner_fn(fn_args) -> tfx.components.TunerFnResult:
    """TFX Tuner entry point: stage 1 as the Trainer does it, then a RandomSearch over the head."""
    from mer_tfx import distribute, training

    config = dict(fn_args.custom_config or {})
    preset = trainer_module.preset_from_config(config)
    seed = int(config.get("seed", 0))
    trials = int(config.get("trials", DEFAULT_TRIALS))
    trainer_module.log(
        f"tuner: preset {preset.name}, {trials} trials, on {trainer_module.describe_device()}"
    )
    data = trainer_module.load_examples(fn_args.train_files, preset=preset)
    # The same validation songs, stage 1 and embeddings as the Trainer's (same seed).
    stage = trainer_module.train_two_stage(
        data, preset=preset, seed=seed, train_heads=False,
        val_fraction=float(config.get("val_fraction", trainer_module.VALIDATION_FRACTION)),
    )
    tuner = keras_tuner.RandomSearch(
        lambda hp: build_head_pair(hp, preset=preset, train_embeddings=stage.fit_embeddings),
        hyperparameters=search_space(),
        objective=keras_tuner.Objective("val_loss", "min"),
        max_trials=trials,
        seed=seed,
        distribution_strategy=distribute.training_strategy(),
        directory=fn_args.working_dir,
        project_name="mer_head",
        overwrite=True,
    )
    labels = {t: data[label] for t, label in trainer_module.TARGETS.items()}
    fit_kwargs = {
        "x": stage.fit_embeddings,
        "y": {t: y[stage.fit] for t, y in labels.items()},
        "validation_data": (stage.val_embeddings, {t: y[stage.val] for t, y in labels.items()}),
        "epochs": preset.training.head_max_epochs,
        "batch_size": preset.training.head_batch_size,
        "verbose": 0,
        "callbacks": [
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=preset.training.patience, restore_best_weights=True
            ),
            training.epoch_bar("tuner trial", monitor="val_loss", mode="min", leave=False),
        ],
    }
    os.makedirs(fn_args.working_dir, exist_ok=True)
    return tfx.components.TunerFnResult(tuner=tuner, fit_kwargs=fit_kwargs)
