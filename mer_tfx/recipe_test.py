"""The two-stage recipe: its validation split, a tiny run, and a run mirrored over two CPUs."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mer_tfx import recipe, training
from mer_tfx.errors import ParameterError
from mer_tfx.training_test import TINY as TRAINING_TINY

# training_test's 16 x 16 preset (four segments per song, a few hundred weights), with
# short head runs: the recipe trains in seconds on a loaded CPU.
TINY = TRAINING_TINY.replace(head_batch_size=4, head_max_epochs=4, patience=4)


def tiny_songs(n=16, seed=0):
    """(log_mels [n, 4, 16, 16], {"valence", "arousal"} labels, song ids): smooth ridges whose
    level follows the valence label, so stage 1 and the valence head both have something
    to learn."""
    rng = np.random.default_rng(seed)
    valence, arousal = np.arange(n) % 2, (np.arange(n) // 2) % 2
    f, m = np.arange(16)[:, None], np.arange(16)[None, :]
    log_mels = np.stack([
        np.stack([1.0 + valence[i] + 0.5 * np.sin(f / rng.uniform(2, 5) + m / rng.uniform(2, 5)
                                                  + rng.uniform(0, 6)) for _ in range(4)])
        for i in range(n)]).astype("float32")
    return log_mels, {"valence": valence, "arousal": arousal}, [f"song{i:02d}" for i in range(n)]


def test_validation_split_is_stratified_disjoint_and_seeded():
    strata = np.array([0, 1, 2, 3] * 5)
    ids = [f"s{i:02d}" for i in range(20)]
    fit, val = recipe.validation_split(ids, strata, fraction=0.2, seed=3)
    assert set(fit).isdisjoint(val) and len(fit) + len(val) == 20
    assert sorted(strata[val].tolist()) == [0, 1, 2, 3]  # one song of each class (20 % of 20)
    again = recipe.validation_split(ids, strata, fraction=0.2, seed=3)
    np.testing.assert_array_equal(again[1], val)


def test_validation_split_depends_on_the_songs_not_their_order():
    strata = np.array([0, 1, 2, 3] * 5)
    ids = np.array([f"s{i:02d}" for i in range(20)])
    _, val = recipe.validation_split(ids, strata, fraction=0.2, seed=1)
    shuffled = np.random.default_rng(0).permutation(20)
    _, val_shuffled = recipe.validation_split(ids[shuffled], strata[shuffled], fraction=0.2,
                                              seed=1)
    assert sorted(ids[shuffled][val_shuffled]) == sorted(ids[val])
    # bytes ids (as read from tf.Examples) split like their str form.
    _, val_bytes = recipe.validation_split([i.encode() for i in ids], strata, fraction=0.2,
                                           seed=1)
    np.testing.assert_array_equal(val_bytes, val)


def test_validation_split_needs_two_songs():
    with pytest.raises(ParameterError, match="1 training songs"):
        recipe.validation_split(["a"], [0], fraction=0.2, seed=0)


def test_recipe_trains_both_stages_and_one_head_per_target(capsys):
    log_mels, labels, ids = tiny_songs()
    strata = recipe.stratification_labels(labels, targets=("valence", "arousal"))
    result = recipe.train_two_stage(log_mels, labels, song_ids=ids, strata=strata, preset=TINY,
                                    seed=0, val_fraction=0.25, progress=False)
    assert sorted(np.concatenate([result.fit, result.val]).tolist()) == list(range(16))
    assert len(result.val) == 4 and sorted(strata[result.val].tolist()) == [0, 1, 2, 3]
    assert not result.encoder.trainable
    assert result.fit_embeddings.shape[:2] == (12, 4)
    for target in ("valence", "arousal"):
        probabilities = result.head(target).predict(result.val_embeddings, verbose=0)
        assert probabilities.shape == (4, 2)
        assert result.heads[recipe.DEFAULT_HEAD][target].epochs >= 1
    assert result.autoencoder.epochs == 3
    assert "stage " not in capsys.readouterr().err  # progress=False: no epoch bars


def test_head_variants_share_one_autoencoder():
    log_mels, labels, ids = tiny_songs(8)
    stage = recipe.pretrain_stage(log_mels, song_ids=ids, strata=labels["valence"], preset=TINY,
                                  val_fraction=0.25, max_epochs=1, progress=False)
    recipe.train_heads(stage, {"valence": labels["valence"]}, preset=TINY, max_epochs=1,
                       head_variants={"gru": {"rnn_type": "gru", "bidirectional": False},
                                      "lstm": {"rnn_type": "lstm", "bidirectional": False}},
                       progress=False)
    assert set(stage.heads) == {"gru", "lstm"}
    assert stage.head("valence", "gru").rnn_type == "gru"
    # A head that pools over the encoder map's frames plugs into the same two-stage model.
    recipe.train_heads(stage, {"valence": labels["valence"]}, preset=TINY, max_epochs=1,
                       head_variants={"pooled": {"pool": "meanstd", "normalize": True}},
                       progress=False)
    pooled = stage.head("valence", "pooled")
    assert (pooled.pool, pooled.pool_frames) == ("meanstd", 2)  # TINY's encoder map: [2, 2, 2]
    model = training.build_two_stage(stage.encoder, pooled)
    np.testing.assert_allclose(model.predict(log_mels, verbose=0),
                               pooled.predict(training.encode_segments(stage.encoder, log_mels),
                                              verbose=0), atol=1e-5)
    with pytest.raises(ParameterError, match="units"):
        recipe.train_heads(stage, {"valence": labels["valence"]}, preset=TINY,
                           head_variants={"x": {"units": 3}}, progress=False)


def test_shifted_grid_recuts_the_looped_excerpt():
    songs = np.arange(2 * 3 * 4 * 2, dtype="float32").reshape(2, 3, 4, 2)  # 3 segments of 4 frames
    np.testing.assert_array_equal(recipe.shifted_grid(songs, shift=0, shifts=2), songs)
    half = recipe.shifted_grid(songs, shift=1, shifts=2)  # 2 frames later, wrapping around
    frames = songs.reshape(2, 12, 2)
    np.testing.assert_array_equal(half[:, 0], frames[:, 2:6])
    np.testing.assert_array_equal(half[:, 2, 2:], frames[:, 0:2])  # the excerpt's start again
    with pytest.raises(ParameterError, match="shift"):
        recipe.shifted_grid(songs, shift=2, shifts=2)


def test_seeds_and_grid_shifts_average_heads_and_grids(monkeypatch):
    from mer_tfx import training

    log_mels, labels, ids = tiny_songs(8)
    stage = recipe.pretrain_stage(log_mels, song_ids=ids, strata=labels["valence"], preset=TINY,
                                  val_fraction=0.25, max_epochs=1, progress=False)
    seen = []
    real = training.train_head

    def spy(train_x, train_y, val_x, val_y, **kwargs):
        seen.append((len(train_x), len(val_x), kwargs["seed"]))
        return real(train_x, train_y, val_x, val_y, **kwargs)

    monkeypatch.setattr(training, "train_head", spy)
    recipe.train_heads(stage, {"valence": labels["valence"]}, preset=TINY, max_epochs=1, seed=5,
                       head_variants={"avg": {"seeds": 2, "grid_shifts": 2}}, progress=False)
    # two heads (seeds 5 and 6), each on both grids of the 6 fitted and 2 validation songs.
    assert seen == [(12, 4, 5), (12, 4, 6)]
    model = stage.head("valence", "avg")
    members = [layer for layer in model.layers if layer.__class__.__name__ == "SequenceHead"]
    assert len(members) == 2
    new_songs = tiny_songs(3, seed=2)[0]
    probabilities = stage.predict(new_songs, "valence", "avg")
    expected = np.mean([
        np.mean([np.asarray(m(training.encode_segments(
            stage.encoder, recipe.shifted_grid(new_songs, shift=k, shifts=2)))) for m in members],
            axis=0)
        for k in range(2)], axis=0)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert stage.val_probabilities("valence", "avg").shape == (2, 2)
    with pytest.raises(ParameterError, match="seeds"):
        recipe.train_heads(stage, {"valence": labels["valence"]}, preset=TINY,
                           head_variants={"x": {"seeds": 0}}, progress=False)


def test_unlabeled_log_mels_reach_stage_1_only(monkeypatch):
    from mer_tfx import training

    seen = {}
    real = training.pretrain_autoencoder

    def spy(train_segments, val_segments, **kwargs):
        seen["train"], seen["val"] = len(train_segments), len(val_segments)
        return real(train_segments, val_segments, **kwargs)

    monkeypatch.setattr(training, "pretrain_autoencoder", spy)
    log_mels, labels, ids = tiny_songs(8)
    extra = tiny_songs(3, seed=1)[0]
    stage = recipe.pretrain_stage(log_mels, song_ids=ids, strata=labels["valence"], preset=TINY,
                                  val_fraction=0.25, unlabeled_log_mels=extra, max_epochs=1,
                                  progress=False)
    # 6 fitted songs + 3 unlabelled, 4 segments each; validation: 2 labelled songs only.
    assert seen == {"train": (6 + 3) * 4, "val": 2 * 4}
    assert len(stage.fit_embeddings) == 6  # the heads see the labelled songs only


MIRRORED_SCRIPT = textwrap.dedent('''
    import json, sys
    import tensorflow as tf

    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

    from mer_tfx import distribute, export, recipe
    from mer_tfx.recipe_test import TINY, tiny_songs

    strategy = distribute.training_strategy()
    log_mels, labels, ids = tiny_songs()
    result = recipe.train_two_stage(
        log_mels, labels, song_ids=ids, preset=TINY, seed=0, val_fraction=0.25,
        strata=recipe.stratification_labels(labels, targets=("valence", "arousal")),
        progress=False)
    head = result.heads["head"]["valence"]
    # The serving export of models trained under the strategy loads and answers.
    export.export_serving_model(sys.argv[1], encoder=result.encoder, preset=TINY,
                                valence_head=result.head("valence"),
                                arousal_head=result.head("arousal"))
    tone = 0.3 * tf.sin(0.3 * tf.range(4000, dtype=tf.float32))
    served = tf.saved_model.load(sys.argv[1]).signatures["serving_default"](
        waveform=tf.stack([tone, -tone]))
    print(json.dumps({
        "served": {name: list(value.shape) for name, value in served.items()},
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "head_strategy": type(head.model.distribute_strategy).__name__,
        "ae_loss": result.autoencoder.history["loss"],
        "head_loss": head.history["loss"],
        "prediction_shape": list(result.head("arousal").predict(result.val_embeddings,
                                                                verbose=0).shape),
        "embedding_shape": list(result.fit_embeddings.shape),
    }))
''')


def test_recipe_runs_mirrored_over_two_logical_cpus(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "MER_TFX_MIRRORED_DEVICES": "/cpu:0,/cpu:1",
           "CUDA_VISIBLE_DEVICES": "-1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    # A fresh process: logical devices must be configured before TensorFlow initialises.
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path / "export")],
                          cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["strategy"] == "MirroredStrategy" and out["replicas"] == 2
    assert out["head_strategy"] == "MirroredStrategy"  # built under the strategy's scope
    assert out["ae_loss"][-1] < out["ae_loss"][0]
    assert out["head_loss"][-1] < out["head_loss"][0]
    assert out["prediction_shape"] == [4, 2] and out["embedding_shape"][:2] == [12, 4]
    assert out["served"]["valence_probability"] == out["served"]["quadrant"] == [2]


def test_the_recipe_takes_a_preset_not_a_name():
    # A name or JSON is parsed once, by whoever starts the run (pipeline.run_config).
    with pytest.raises(ParameterError, match="preset must be a Preset.*'small'"):
        recipe.pretrain_stage(np.zeros((4, 2, 3, 5), np.float32), song_ids=list("abcd"),
                              strata=[0, 1, 0, 1], preset="small")
