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


def test_tuner_fn_searches_the_heads_on_the_recipes_stage_1(tmp_path):
    from tfx.components.trainer.fn_args_utils import FnArgs

    from mer_tfx.recipe_test import TINY
    from pipeline.trainer_module_test import _write_examples

    split = tmp_path / "Split-train"
    split.mkdir()
    _write_examples(split / "data.gz", [(i % 2, (i // 2) % 2) for i in range(12)], TINY)
    fn_args = FnArgs(
        train_files=[str(split / "*")],
        working_dir=str(tmp_path / "tuner"),
        custom_config={"preset": TINY.to_dict(), "seed": 0, "trials": 1,
                       "overrides": {"ae_max_epochs": 1, "head_max_epochs": 1}},
    )
    result = tuner_module.tuner_fn(fn_args)
    # The validation songs are the Trainer's: 20 % of 12, one per quadrant where it can.
    assert len(result.fit_kwargs["validation_data"][0]) == 2
    result.tuner.search(**result.fit_kwargs)  # keras-tuner deep-copies the callbacks
    best = result.tuner.get_best_hyperparameters(1)[0]
    assert set(trainer_module.hyperparameter_values(best.get_config())) == {
        "learning_rate", "rnn_units", "dropout"}
