"""Unit tests of the Tuner module's search space and hypermodel (tiny, CPU)."""

from __future__ import annotations

import numpy as np

from mer_tfx import presets
from pipeline import trainer_module, tuner_module


def test_search_space_covers_the_head_hyperparameters():
    hp = tuner_module.search_space()
    names = {p.name for p in hp.space}
    assert names == {"learning_rate", "rnn_units", "dropout"}
    # The Trainer understands exactly these keys.
    assert set(trainer_module.hyperparameter_values(hp.get_config())) == names


def test_head_pair_trains_on_embeddings():
    preset = presets.get("small")
    hp = tuner_module.search_space()
    x = np.random.default_rng(0).normal(size=(6, preset.features.num_segments, 8)).astype("float32")
    model = tuner_module.build_head_pair(hp, preset=preset, train_embeddings=x)
    y = {"valence": np.array([0, 1] * 3), "arousal": np.array([1, 1, 0] * 2)}
    history = model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=3, verbose=0)
    assert "val_loss" in history.history  # the Tuner's objective exists
    out = model.predict(x, verbose=0)
    assert set(out) == {"valence", "arousal"} and out["valence"].shape == (6, 2)
    np.testing.assert_allclose(out["arousal"].sum(axis=1), 1.0, rtol=1e-5)  # softmax rows
