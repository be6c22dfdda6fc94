"""Test fixtures: a tiny serving SavedModel in the TFX Pusher's layout.

The model is written by `mer_tfx.export.export_serving_model`, i.e. it has
exactly the production signatures (`serving_default`, `serving_wav`,
`serving_examples`, `model_info`) and the same in-graph validation; only the
encoder and the heads are tiny untrained Keras models (a pooled log-mel and one
dense layer), so the export takes a few seconds on a CPU. Outputs are
deterministic for a given `seed`.

Examples:

>>> base = write_pushed_model(tmp_path / "serving", model_name="mer", version=1)  # doctest: +SKIP
>>> sorted(p.name for p in (base / "mer").iterdir())  # doctest: +SKIP
['1']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from mer_tfx.contract import MODEL_NAME
from mer_tfx.errors import ParameterError
from mer_tfx.serve.client import encode_wav

# Tests build WAV bodies with the client's own encoder.
wav_bytes = encode_wav

PathLike = Union[str, os.PathLike]


def _tiny_models(preset, *, seed: int):
    """(encoder, valence_head, arousal_head): tiny Keras models with the export's shapes."""
    import keras

    f = preset.features
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((f.num_frames, f.n_mels, 1))
    pooled = keras.layers.AveragePooling2D(pool_size=(f.num_frames, 8))(inputs)
    embedded = keras.layers.Flatten()(pooled)
    encoder = keras.Model(inputs, embedded, name="tiny_encoder")
    dim = f.n_mels // 8

    def head(name: str, head_seed: int) -> keras.Model:
        x_in = keras.Input((f.num_segments, dim))
        x = keras.layers.GlobalAveragePooling1D()(x_in)
        # Keep the spectral shape, not the loudness, so the random layer gives
        # probabilities on both sides of 0.5 for different sounds.
        x = keras.layers.Lambda(lambda t: t - keras.ops.mean(t, axis=-1, keepdims=True))(x)
        out = keras.layers.Dense(
            2,
            activation="softmax",
            kernel_initializer=keras.initializers.RandomNormal(stddev=2.0, seed=head_seed),
        )(x)
        return keras.Model(x_in, out, name=name)

    return encoder, head("tiny_valence", seed), head("tiny_arousal", seed + 1)


def build_fixture_model(export_dir: PathLike, *, preset: str = "small", seed: int = 0) -> Path:
    """Writes a tiny serving SavedModel with the production signatures.

    Args:
        export_dir: folder to create (one SavedModel version folder).
        preset: name of the preset whose features the graph computes. Defaults to "small".
        seed: seed of the random weights. Defaults to 0.

    Returns:
        `export_dir`.
    """
    from mer_tfx import presets
    from mer_tfx.export import export_serving_model

    chosen = presets.resolve(preset)
    encoder, valence_head, arousal_head = _tiny_models(chosen, seed=seed)
    return export_serving_model(
        export_dir,
        encoder=encoder,
        valence_head=valence_head,
        arousal_head=arousal_head,
        preset=chosen,
        label_info={"fixture": True, "seed": seed},
    )


def build_small_model(export_dir: PathLike, *, preset: str = "small", seed: int = 0) -> Path:
    """Exports the project's real architecture (untrained) for a preset.

    The encoder of `ConvAutoencoder.from_preset` and two `SequenceHead.from_preset`
    heads, random weights: the production graph at its true cost (used by the
    serving benchmark), not a meaningful predictor.
    """
    import keras

    from mer_tfx import presets
    from mer_tfx.export import export_serving_model
    from mer_tfx.models import ConvAutoencoder, SequenceHead

    chosen = presets.resolve(preset)
    keras.utils.set_random_seed(seed)
    autoencoder = ConvAutoencoder.from_preset(chosen)
    encoder = autoencoder.encoder
    heads = []
    for _ in range(2):
        head = SequenceHead.from_preset(chosen, embedding_dim=autoencoder.embedding_dim)
        head.build((None, chosen.features.num_segments, autoencoder.embedding_dim))
        heads.append(head)
    return export_serving_model(
        export_dir,
        encoder=encoder,
        valence_head=heads[0],
        arousal_head=heads[1],
        preset=chosen,
        label_info={"fixture": "untrained small architecture", "seed": seed},
    )


def write_pushed_model(
    base_dir: PathLike,
    *,
    model_name: str = MODEL_NAME,
    version: int = 1,
    preset: str = "small",
    seed: int = 0,
    architecture: str = "tiny",
) -> Path:
    """Writes a fixture model as `<base_dir>/<model_name>/<version>/` (the Pusher's layout).

    `architecture="tiny"` (default) exports `build_fixture_model`'s few-second model;
    "small" exports the real, untrained architecture (`build_small_model`).

    The version folder is written under a temporary name and renamed into place, as a
    pusher should do, so a polling server never sees half a SavedModel.

    Returns:
        `base_dir` (pass it as the server's model base path's parent:
        `--model-base-path <base_dir>/<model_name>`).
    """
    if not isinstance(version, int) or version < 0:
        raise ParameterError(
            f"version must be a non-negative integer. Received: version={version!r}"
        )
    model_dir = Path(base_dir) / model_name
    model_dir.mkdir(parents=True, exist_ok=True)
    staging = model_dir / f".staging-{version}"
    if architecture not in ("tiny", "small"):
        raise ParameterError(
            f"architecture must be 'tiny' or 'small'. Received: architecture={architecture!r}"
        )
    build = build_fixture_model if architecture == "tiny" else build_small_model
    build(staging, preset=preset, seed=seed)
    staging.rename(model_dir / str(version))
    return Path(base_dir)


def copy_version(model_dir: PathLike, *, source_version: int, new_version: int) -> Path:
    """Pushes a copy of an existing version under a new number (atomic rename)."""
    import shutil

    model_dir = Path(model_dir)
    staging = model_dir / f".staging-{new_version}"
    shutil.copytree(model_dir / str(source_version), staging)
    return staging.rename(model_dir / str(new_version))


def sine_wave(
    *, seconds: float, sample_rate: int, frequency: float = 440.0, amplitude: float = 0.5
) -> np.ndarray:
    """float32 [samples]: a test tone."""
    t = np.arange(int(round(seconds * sample_rate)), dtype=np.float64) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def music_like(*, seconds: float, sample_rate: int, seed: int = 0) -> np.ndarray:
    """float32 [samples]: a few random tones plus noise, different per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sample_rate)), dtype=np.float64) / sample_rate
    out = 0.02 * rng.standard_normal(t.shape)
    for _ in range(4):
        f0 = rng.uniform(80, 2000)
        out += rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * f0 * t + rng.uniform(0, 6.28))
    return np.clip(out, -1, 1).astype(np.float32)
