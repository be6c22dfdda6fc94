import keras
import numpy as np
import pytest

from mer_tfx import presets, training
from mer_tfx.errors import ParameterError
from mer_tfx.models import CnnBiLstmBaseline, ConvAutoencoder, SequenceHead, TwoStageClassifier

# A preset with 16 x 16 spectrograms (1 + 1000 // 66 = 16 frames, 16 mels) and
# four segments per clip, so the tests train in seconds on a loaded CPU.
TINY = presets.Preset(
    name="tiny",
    features=presets.FeatureConfig(
        sample_rate=1000, segment_seconds=1, n_fft=64, hop_length=66, n_mels=16, clip_seconds=4
    ),
    model=presets.ModelConfig(encoder_filters=(8, 4, 2), rnn_units=8, dropout=0.0),
    training=presets.TrainingConfig(
        ae_learning_rate=3e-3,
        ae_batch_size=8,
        ae_max_epochs=3,
        head_learning_rate=1e-2,
        head_batch_size=8,
        head_max_epochs=30,
        patience=3,
        freq_mask_param=4,
        time_mask_param=4,
    ),
)


def _structured_segments(n, shape=(16, 16), seed=0):
    """Smooth ridges around 1.5: easy to reconstruct, far from the all-zero output."""
    rng = np.random.default_rng(seed)
    f = np.arange(shape[0])[:, None]
    m = np.arange(shape[1])[None, :]
    out = [
        1.5 + 0.5 * np.sin(f / rng.uniform(2, 5) + m / rng.uniform(2, 5) + rng.uniform(0, 6))
        for _ in range(n)
    ]
    return np.stack(out).astype("float32")


def _separable_embeddings(songs, segments=4, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(songs) % 2
    means = np.where(labels[:, None, None] == 1, 1.0, -1.0)
    x = means + rng.normal(0.0, 0.5, size=(songs, segments, dim))
    return x.astype("float32"), labels


def test_masked_dataset_masks_inputs_only():
    segments = _structured_segments(12)
    masked, clean = next(iter(training.masked_autoencoder_dataset(
        segments, preset=TINY.replace(mask_fill="zero"), batch_size=12, shuffle=False, seed=3
    )))
    masked, clean = masked.numpy(), clean.numpy()
    assert masked.shape == clean.shape == (12, 16, 16, 1)
    np.testing.assert_array_equal(clean[..., 0], segments)
    changed = masked != clean
    assert changed.any()
    # zero fill: every changed value is 0 (the data itself is never 0).
    assert np.all(masked[changed] == 0.0)
    # at most one frequency span (< F=4 wide) and one time span (< T=4) per segment.
    assert changed.sum(axis=(1, 2, 3)).max() <= 3 * 16 + 3 * 16


def test_masked_dataset_reproducible_and_none_is_identity():
    segments = _structured_segments(8, shape=(216, 128))
    small = presets.get("small")
    first = [m.numpy() for m, _ in training.masked_autoencoder_dataset(
        segments, preset=small, batch_size=4, shuffle=True, seed=7)]
    again = [m.numpy() for m, _ in training.masked_autoencoder_dataset(
        segments, preset=small, batch_size=4, shuffle=True, seed=7)]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    for masked, clean in training.masked_autoencoder_dataset(
        segments, preset=small.replace(mask_fill="none"), batch_size=4, shuffle=True, seed=7
    ):
        np.testing.assert_array_equal(masked.numpy(), clean.numpy())


def test_pretrain_autoencoder_reduces_reconstruction_loss():
    # No activity penalty so the loss is the Huber reconstruction alone.
    preset = TINY.replace(activity_l2=0.0)
    segments = _structured_segments(48)
    result = training.pretrain_autoencoder(
        segments[:32], segments[32:].reshape(4, 4, 16, 16), preset=preset, verbose=0,
        mixed_precision=True,  # no GPU here: must be a no-op
    )
    assert keras.config.dtype_policy().name == "float32"
    assert isinstance(result.model, ConvAutoencoder)
    assert result.epochs == 3 and result.monitor == "val_loss"
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert result.history["val_loss"][-1] < result.history["val_loss"][0]
    assert result.best_epoch == int(np.argmin(result.history["val_loss"])) + 1
    assert result.seconds > 0
    assert result.model.encoder.output_shape == (None, 2, 2, 2)


class _KillWeightsAt(keras.callbacks.Callback):
    """From epoch `epoch` (0-based) on, zeroes every weight after each batch.

    The model then outputs 0 at every validation: a constant loss, worse than a
    trained model's on targets around 1.5.
    """

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch
        self.current = 0
        self.snapshots = []

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current >= self.epoch:
            self.model.set_weights([np.zeros_like(w) for w in self.model.get_weights()])

    def on_epoch_end(self, epoch, logs=None):
        self.snapshots.append([w.copy() for w in self.model.get_weights()])


def test_early_stopping_restores_best_weights():
    preset = TINY.replace(activity_l2=0.0, patience=2)
    segments = _structured_segments(40)
    killer = _KillWeightsAt(epoch=2)
    result = training.pretrain_autoencoder(
        segments[:32], segments[32:], preset=preset, verbose=0, callbacks=[killer], max_epochs=8
    )
    losses = result.history["val_loss"]
    # Epochs 3+ end with all-zero weights (constant loss): stops after `patience` of them.
    assert result.epochs == 4, losses
    assert result.best_epoch == 2
    assert losses[2] == losses[3] > losses[1]
    for restored, best in zip(result.model.get_weights(), killer.snapshots[1], strict=True):
        np.testing.assert_array_equal(restored, best)


def test_encode_segments_flattens_each_segment():
    ae = ConvAutoencoder.from_preset(TINY)
    log_mels = _structured_segments(15).reshape(5, 3, 16, 16)
    emb = training.encode_segments(ae.encoder, log_mels, batch_size=4)
    assert emb.shape == (5, 3, 2 * 2 * 2) and emb.dtype == np.float32
    direct = ae.encoder.predict(log_mels.reshape(15, 16, 16, 1), verbose=0).reshape(5, 3, -1)
    # chunked vs. one call: float32 rounding only.
    np.testing.assert_allclose(emb, direct, atol=1e-6)
    with pytest.raises(ParameterError, match=r"\(5, 3, 16\)"):
        training.encode_segments(ae.encoder, log_mels[..., 0])


def test_train_head_learns_separable_toy_problem():
    x, y = _separable_embeddings(40, seed=0)
    vx, vy = _separable_embeddings(20, seed=1)
    result = training.train_head(x, y, vx, vy, preset=TINY, verbose=0, max_epochs=15)
    assert isinstance(result.model, SequenceHead)
    assert result.monitor == "val_accuracy"
    assert max(result.history["val_accuracy"]) > 0.9
    predicted = result.model.predict(vx, verbose=0).argmax(axis=1)
    assert (predicted == vy).mean() > 0.9


def test_train_head_is_reproducible_with_a_seed():
    x, y = _separable_embeddings(16, seed=2)
    runs = [
        training.train_head(x, y, None, None, preset=TINY, verbose=0, max_epochs=1, seed=5)
        for _ in range(2)
    ]
    assert runs[0].monitor == "accuracy"
    assert runs[0].history["loss"] == runs[1].history["loss"]


def test_train_head_overrides_and_bad_labels():
    x, y = _separable_embeddings(8)
    result = training.train_head(
        x, y, None, None, preset=TINY, verbose=0, max_epochs=1, rnn_type="gru",
        bidirectional=False, rnn_units=3,
    )
    assert isinstance(result.model.get_layer("gru"), keras.layers.GRU)
    with pytest.raises(ParameterError, match="train_labels"):
        training.train_head(x, y + 1, None, None, preset=TINY, verbose=0, max_epochs=1)
    with pytest.raises(ParameterError, match="max_epochs=0"):
        training.train_head(x, y, None, None, preset=TINY, verbose=0, max_epochs=0)


def test_build_two_stage_equals_encoder_then_head():
    ae = ConvAutoencoder.from_preset(TINY)
    log_mels = _structured_segments(12).reshape(3, 4, 16, 16)
    emb = training.encode_segments(ae.encoder, log_mels)
    head = SequenceHead.from_preset(TINY, embedding_dim=emb.shape[2])
    model = training.build_two_stage(ae.encoder, head, num_segments=4)
    assert isinstance(model, TwoStageClassifier) and model.input_shape == (None, 4, 16, 16)
    # same maths, batched differently: float32 rounding only.
    np.testing.assert_allclose(
        model.predict(log_mels, verbose=0), head.predict(emb, verbose=0), atol=1e-5
    )


def test_train_baseline_trains_cnn_and_head():
    log_mels = _structured_segments(32).reshape(8, 4, 16, 16)
    labels = np.arange(8) % 2
    result = training.train_baseline(
        log_mels, labels, log_mels[:4], labels[:4], preset=TINY, verbose=0, max_epochs=1
    )
    assert isinstance(result.model, CnnBiLstmBaseline)
    assert result.epochs == 1 and set(result.history) >= {"loss", "accuracy", "val_accuracy"}
    training.set_seed(0)  # train_baseline seeds the same way before building
    fresh = CnnBiLstmBaseline.from_preset(TINY, num_segments=None)
    cnn_trained = result.model.get_layer("segment_encoder").encoder.get_weights()
    cnn_fresh = fresh.get_layer("segment_encoder").encoder.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(cnn_trained, cnn_fresh, strict=True))
    assert result.model.predict(log_mels, verbose=0).shape == (8, 2)


def _force_gpu_policy(monkeypatch):
    """Makes `mixed_precision=True` take effect on this CPU-only machine.

    float16 arithmetic is the same format on a CPU; only the speed differs. This
    runs the GPU code path (policy, loss scaling, float32 outputs) in the tests.
    """
    from mer_tfx.training import fitting

    monkeypatch.setattr(fitting, "gpu_visible", lambda: True)


def test_mixed_precision_autoencoder_keeps_float32_output_and_learns(monkeypatch):
    _force_gpu_policy(monkeypatch)
    preset = TINY.replace(activity_l2=0.0)
    segments = _structured_segments(48)
    runs = {
        mixed: training.pretrain_autoencoder(
            segments[:32], segments[32:], preset=preset, verbose=0, seed=1,
            mixed_precision=mixed, max_epochs=6,
        )
        for mixed in (False, True)
    }
    mixed = runs[True]
    assert keras.config.dtype_policy().name == "float32"  # restored after building
    assert mixed.model.get_layer("reconstruction").dtype_policy.name == "float32"
    assert any(layer.dtype_policy.name == "mixed_float16" for layer in mixed.model.encoder.layers)
    assert isinstance(mixed.model.optimizer, keras.optimizers.LossScaleOptimizer)
    reconstruction = mixed.model.predict(segments[32:, ..., None], verbose=0)
    assert reconstruction.dtype == np.float32 and np.isfinite(reconstruction).all()
    # Same seed, same data: float16 compute follows the float32 run closely (measured
    # at most 0.54 % apart per epoch over seeds 1-3; 5 % leaves a 10x margin).
    np.testing.assert_allclose(
        mixed.history["val_loss"], runs[False].history["val_loss"], rtol=0.05
    )
    assert mixed.history["val_loss"][-1] < mixed.history["val_loss"][0]


def test_mixed_precision_head_gives_the_same_predictions(monkeypatch):
    _force_gpu_policy(monkeypatch)
    x, y = _separable_embeddings(40, seed=0)
    vx, vy = _separable_embeddings(20, seed=1)
    runs = {
        mixed: training.train_head(
            x, y, vx, vy, preset=TINY, verbose=0, max_epochs=10, seed=3, mixed_precision=mixed
        )
        for mixed in (False, True)
    }
    assert runs[True].model.get_layer("probabilities").dtype_policy.name == "float32"
    predicted = {mixed: run.model.predict(vx, verbose=0) for mixed, run in runs.items()}
    assert predicted[True].dtype == np.float32
    np.testing.assert_array_equal(predicted[True].argmax(1), predicted[False].argmax(1))
    assert (predicted[True].argmax(1) == vy).mean() > 0.9


def test_set_seed_rejects_negative():
    with pytest.raises(ParameterError, match="seed=-1"):
        training.set_seed(-1)


def test_segments_per_epoch_draws_a_fresh_subset_each_epoch():
    # Each segment is constant-valued with its own index, so a batch tells which were drawn.
    values = np.arange(40, dtype=np.float32)
    log_mels = np.broadcast_to(values[:, None, None], (40, 216, 128)).copy()
    dataset = training.masked_autoencoder_dataset(
        log_mels,
        preset=presets.get("small").replace(mask_fill="none"),
        batch_size=4,
        seed=3,
        segments_per_epoch=12,
    )

    def drawn():
        return sorted(int(x[0, 0, 0]) for x, _ in dataset.unbatch())

    first, second = drawn(), drawn()
    assert len(first) == len(second) == 12
    assert len(set(first)) == 12
    assert first != second  # a fresh draw per epoch, not the same 12 segments


def test_segments_per_epoch_must_be_positive():
    with pytest.raises(ParameterError, match="segments_per_epoch"):
        training.masked_autoencoder_dataset(
            np.zeros((4, 216, 128), np.float32),
            preset="small",
            batch_size=2,
            segments_per_epoch=0,
        )


class _LossSequence(keras.callbacks.Callback):
    """Replaces the logged val_loss with a scripted sequence (runs before early stopping)."""

    def __init__(self, values):
        super().__init__()
        self.values = list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


def _run_stopper(stopper, values):
    """Feeds `values` to an early-stopping callback; returns (epochs run, best epoch 1-based)."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((4, 1), "float32")
    history = model.fit(x, x, validation_data=(x, x), epochs=len(values), verbose=0,
                        callbacks=[_LossSequence(values), stopper])
    return len(history.history["loss"]), stopper.best_epoch + 1


def test_relative_early_stopping_needs_a_relative_drop():
    # Falls by 0.1 % an epoch after epoch 3: no 1 % drop within 3 epochs.
    values = [1.0, 0.8, 0.7] + [0.7 * 0.999**k for k in range(1, 8)]
    stopper = training.RelativeEarlyStopping(monitor="val_loss", patience=3, min_delta=0.01)
    assert _run_stopper(stopper, values) == (6, 3)
    # min_delta 0: any drop counts, so it never stops on this sequence.
    stopper = training.RelativeEarlyStopping(monitor="val_loss", patience=3, min_delta=0.0)
    assert _run_stopper(stopper, values) == (10, 10)
    # Small drops add up: epoch 3 is 1.1 % below epoch 1's best, so it counts.
    values = [1.0, 0.995, 0.989, 0.985, 0.98, 0.975, 0.97]
    stopper = training.RelativeEarlyStopping(monitor="val_loss", patience=2, min_delta=0.01)
    assert _run_stopper(stopper, values) == (5, 3)


def test_relative_early_stopping_rejects_bad_delta():
    with pytest.raises(ParameterError, match="min_delta"):
        training.RelativeEarlyStopping(monitor="val_loss", patience=2, min_delta=1.0)


def test_pretrain_autoencoder_uses_stage_one_patience_and_every_segment():
    preset = TINY.replace(activity_l2=0.0, patience=50, ae_patience=1, ae_min_delta=0.5)
    segments = _structured_segments(40)
    seen = []

    class CountSteps(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.params["steps"])

    result = training.pretrain_autoencoder(
        segments[:32], segments[32:], preset=preset, verbose=0, max_epochs=20,
        callbacks=[CountSteps()])
    # A 50 % drop per epoch is needed: the loss stops qualifying within a few epochs, and
    # ae_patience=1 (not patience=50) ends the run one epoch later.
    assert result.epochs < 20
    assert result.epochs == result.best_epoch + 1
    # Every segment every epoch: 32 segments in batches of 8.
    assert seen[0] == 4


def test_pretrain_autoencoder_stops_after_its_update_budget():
    # 32 segments in batches of 8 are 4 updates an epoch: a budget of 6 updates is
    # two epochs (rounded up), however many epochs the bound allows.
    preset = TINY.replace(activity_l2=0.0, patience=50, ae_max_steps=6)
    segments = _structured_segments(40)
    result = training.pretrain_autoencoder(
        segments[:32], segments[32:], preset=preset, verbose=0, max_epochs=20)
    assert result.epochs == 2
    # Without the budget the same call runs to its epoch bound.
    unbounded = training.pretrain_autoencoder(
        segments[:32], segments[32:], preset=preset.replace(ae_max_steps=None), verbose=0,
        max_epochs=3)
    assert unbounded.epochs == 3


def test_ae_max_steps_must_be_positive():
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ParameterError, match="ae_max_steps"):
            presets.get("small").replace(ae_max_steps=bad)


def test_small_presets_train_stage_one_on_every_segment_until_it_stops():
    for name in ("small", "4q-3s-small", "4q-10s-small", "pmemo-1s-small"):
        config = presets.get(name).training
        assert config.ae_segments_per_epoch is None
        assert config.ae_max_epochs >= 50 and config.ae_min_delta > 0
        assert config.ae_patience is not None and config.ae_patience < config.ae_max_epochs
        assert config.ae_max_steps == 1000
    assert presets.get("4q-5s").training.ae_min_delta == 0.0  # the paper's Table 3
    assert presets.get("4q-5s").training.ae_max_steps is None


def test_unlabeled_log_mels_reads_every_audio_file_and_skips_unreadable(tmp_path):
    import wave

    rate = TINY.features.sample_rate
    folder = tmp_path / "music"
    (folder / "sub").mkdir(parents=True)
    for name, seconds in (("a.wav", 2.0), ("sub/b.wav", 5.0)):
        samples = (0.3 * np.sin(np.arange(int(seconds * rate)) * 0.2) * 32767).astype("<i2")
        with wave.open(str(folder / name), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(samples.tobytes())
    (folder / "broken.mp3").write_bytes(b"not audio")
    (folder / "notes.txt").write_text("not audio either")

    log_mels, skipped = training.unlabeled_log_mels(folder, preset=TINY)
    assert log_mels.shape == (2, 4, 16, 16) and log_mels.dtype == np.float32
    assert np.isfinite(log_mels).all() and log_mels.max() > 0
    assert [name for name, _ in skipped] == ["broken.mp3"]
    only_b, _ = training.unlabeled_log_mels(folder, preset=TINY, exclude=[folder / "a.wav"])
    np.testing.assert_array_equal(only_b, log_mels[1:])
    with pytest.raises(ParameterError, match="does not exist"):
        training.unlabeled_log_mels(tmp_path / "missing", preset=TINY)


def test_build_head_standardises_and_pools_only_with_enough_songs():
    from mer_tfx import presets

    # 27 * 2 wide: the small encoder map's 27 frames of 2 numbers each.
    few = np.random.default_rng(0).normal(size=(24, 6, 54)).astype("float32")
    many = np.random.default_rng(1).normal(size=(100, 6, 54)).astype("float32")
    small = presets.get("small")
    assert small.model.normalize_embeddings and small.model.normalize_min_songs == 100
    assert small.model.head_pool == "meanstd"  # chosen at 700 clips: docs/results.md
    assert training.build_head(small.replace(head_pool="none"), train_embeddings=many).pool == "none"
    head = training.build_head(small, train_embeddings=few)
    assert (head.normalize, head.pool) == (False, "none")
    head = training.build_head(small, train_embeddings=many)
    assert (head.normalize, head.pool, head.pool_frames) == (True, "meanstd", 27)
    assert head.get_layer("normalization").adapt_mean.shape[-1] == 4  # mean and std of 2
    head = training.build_head(small, train_embeddings=few, normalize=True, pool="mean")
    assert (head.normalize, head.pool) == (True, "mean")
    head = training.build_head("4q-5s", train_embeddings=many)
    assert (head.normalize, head.pool) == (False, "none")
