import keras
import numpy as np
import pytest

from mer_tfx import presets
from mer_tfx.errors import ParameterError
from mer_tfx.models.sequence_head import FramePooling, SequenceHead


@pytest.mark.parametrize(
    "rnn_type,bidirectional,layer_class",
    [
        ("lstm", True, keras.layers.Bidirectional),
        ("lstm", False, keras.layers.LSTM),
        ("gru", True, keras.layers.Bidirectional),
        ("gru", False, keras.layers.GRU),
    ],
)
def test_variants_give_probabilities(rnn_type, bidirectional, layer_class):
    head = SequenceHead(
        embedding_dim=12, rnn_units=4, rnn_type=rnn_type, bidirectional=bidirectional
    )
    assert isinstance(head.layers[1], layer_class)
    x = np.random.default_rng(0).random((3, 5, 12), dtype=np.float32)
    p = keras.ops.convert_to_numpy(head(x))
    assert p.shape == (3, 2) and p.dtype == np.float32
    # softmax rows sum to one up to float32 rounding.
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)


def test_paper_head_size():
    head = SequenceHead(embedding_dim=27 * 16 * 32)
    bilstm = head.get_layer("bilstm")
    assert bilstm.forward_layer.units == 512 and bilstm.backward_layer.units == 512
    assert head.get_layer("dropout").rate == 0.5
    assert head.output_shape == (None, 2)


def test_any_number_of_segments_when_unset():
    head = SequenceHead(embedding_dim=6, rnn_units=3)
    for segments in (1, 3, 30):
        assert head(np.zeros((2, segments, 6), "float32")).shape == (2, 2)


def test_config_and_saved_file_round_trip(tmp_path):
    head = SequenceHead(embedding_dim=10, num_segments=6, rnn_units=4, rnn_type="gru", dropout=0.25)
    assert SequenceHead.from_config(head.get_config()).get_config() == head.get_config()
    x = np.random.default_rng(1).random((4, 6, 10), dtype=np.float32)
    head.save(tmp_path / "head.keras")
    loaded = keras.saving.load_model(tmp_path / "head.keras")
    assert isinstance(loaded, SequenceHead)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), head.predict(x, verbose=0))


def test_from_preset_uses_encoder_size():
    head = SequenceHead.from_preset("4q-5s-small")
    assert head.input_shape == (None, 6, 27 * 16 * 8)
    assert head.rnn_units == 32
    assert SequenceHead.from_preset("pmemo-1s").input_shape == (None, 30, 27 * 16 * 32)


@pytest.mark.parametrize(
    "kwargs",
    [{"rnn_type": "rnn"}, {"rnn_units": 0}, {"dropout": 1.0}, {"num_classes": 1}, {"embedding_dim": 0}],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ParameterError, match=repr(list(kwargs.values())[0])):
        SequenceHead(**{"embedding_dim": 4, **kwargs})


def _embeddings(songs=12, segments=5, dim=6, seed=0):
    """Dimensions with very different scales and offsets, as raw ReLU embeddings have."""
    rng = np.random.default_rng(seed)
    scale = np.array([1e-3, 0.1, 1.0, 10.0, 100.0, 1.0])[:dim]
    return (5.0 * scale + scale * rng.normal(size=(songs, segments, dim))).astype("float32")


def test_normalize_standardises_with_the_adapted_statistics():
    head = SequenceHead(embedding_dim=6, rnn_units=3, normalize=True)
    x = _embeddings()
    head.adapt(x)
    normalization = head.get_layer("normalization")
    z = keras.ops.convert_to_numpy(normalization(x))
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0.0, atol=1e-4)
    # std / (std + 1e-3): 1 for every dimension but the one whose std is 1e-3.
    expected = x.std(axis=(0, 1)) / (x.std(axis=(0, 1)) + 1e-3)
    np.testing.assert_allclose(z.std(axis=(0, 1)), expected, rtol=1e-3)


def test_normalize_floor_keeps_a_constant_dimension_finite():
    head = SequenceHead(embedding_dim=3, rnn_units=2, normalize=True)
    x = np.zeros((4, 5, 3), "float32")
    x[..., 1] = np.random.default_rng(0).normal(size=(4, 5))
    head.adapt(x)  # dimensions 0 and 2 never vary: a dead ReLU unit
    later = np.ones((1, 5, 3), "float32")
    z = keras.ops.convert_to_numpy(head.get_layer("normalization")(later))
    assert np.all(np.abs(z[..., 0]) <= 1e3)


def test_normalize_off_is_the_papers_head_and_adapt_is_a_no_op():
    head = SequenceHead(embedding_dim=6, rnn_units=3)
    assert head.normalize is False
    assert "normalization" not in [layer.name for layer in head.layers]
    before = [w.copy() for w in head.get_weights()]
    head.adapt(_embeddings())
    for a, b in zip(before, head.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_adapt_rejects_embeddings_of_another_width():
    head = SequenceHead(embedding_dim=6, rnn_units=3, normalize=True)
    with pytest.raises(ParameterError, match="embeddings must be"):
        head.adapt(np.zeros((2, 5, 4), "float32"))


def test_normalized_head_config_and_saved_file_round_trip(tmp_path):
    head = SequenceHead(embedding_dim=6, num_segments=5, rnn_units=3, normalize=True)
    assert head.get_config()["normalize"] is True
    assert SequenceHead.from_config(head.get_config()).get_config() == head.get_config()
    x = _embeddings()
    head.adapt(x)
    head.save(tmp_path / "head.keras")
    loaded = keras.saving.load_model(tmp_path / "head.keras")
    assert loaded.normalize is True
    np.testing.assert_array_equal(
        loaded.get_layer("normalization").get_weights()[0],
        head.get_layer("normalization").get_weights()[0],
    )
    np.testing.assert_allclose(loaded.predict(x, verbose=0), head.predict(x, verbose=0),
                               rtol=0, atol=1e-6)
    # The loaded head standardises: its output differs from an unadapted copy's.
    fresh = SequenceHead.from_config(head.get_config())
    fresh.set_weights(head.get_weights())
    np.testing.assert_allclose(fresh.predict(x, verbose=0), head.predict(x, verbose=0),
                               rtol=0, atol=1e-6)


def test_from_preset_follows_the_presets_normalize_embeddings():
    # Off for the paper's presets (the paper's head), on for the -small ones; an
    # argument decides otherwise.
    assert SequenceHead.from_preset("small").normalize is True
    assert SequenceHead.from_preset("4q-5s").normalize is False
    assert SequenceHead.from_preset("small", normalize=False).normalize is False
    on = presets.get("4q-5s-small").replace(normalize_embeddings=True)
    assert SequenceHead.from_preset(on).normalize is True
    assert SequenceHead.from_preset("4q-5s", normalize=True).normalize is True


def test_frame_pooling_is_the_mean_and_std_over_the_encoder_maps_frames():
    # A flattened [frames=3, mels=2, filters=2] map: frame t is x[..., 4t:4t+4].
    x = np.random.default_rng(0).normal(size=(2, 5, 12)).astype("float32")
    frames = x.reshape(2, 5, 3, 4)
    mean = keras.ops.convert_to_numpy(FramePooling(3, "mean")(x))
    np.testing.assert_allclose(mean, frames.mean(axis=2), rtol=1e-5, atol=1e-6)
    both = keras.ops.convert_to_numpy(FramePooling(3, "meanstd")(x))
    np.testing.assert_allclose(both[..., :4], frames.mean(axis=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both[..., 4:], frames.std(axis=2), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pool,width", [("mean", 4), ("meanstd", 8)])
def test_pooled_head_reads_the_pooled_width_and_round_trips(tmp_path, pool, width):
    head = SequenceHead(embedding_dim=12, rnn_units=3, normalize=True, pool=pool, pool_frames=3)
    x = np.random.default_rng(1).normal(size=(6, 5, 12)).astype("float32") * 10 + 3
    head.adapt(x)
    normalization = head.get_layer("normalization")
    assert normalization.adapt_mean.shape[-1] == width
    # Adapted on the pooled features: they come out standardised.
    z = keras.ops.convert_to_numpy(normalization(head.get_layer("frame_pooling")(x)))
    np.testing.assert_allclose(z.mean(axis=(0, 1)), 0.0, atol=1e-4)
    head.save(tmp_path / "head.keras")
    loaded = keras.saving.load_model(tmp_path / "head.keras")
    assert (loaded.pool, loaded.pool_frames) == (pool, 3)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), head.predict(x, verbose=0),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs,match",
    [({"pool": "max", "pool_frames": 3}, "'max'"), ({"pool": "mean"}, "pool_frames"),
     ({"pool": "mean", "pool_frames": 5}, "dividing embedding_dim")],
)
def test_bad_pooling_arguments_raise(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        SequenceHead(embedding_dim=12, **kwargs)


def test_from_preset_pools_over_the_encoder_maps_frames():
    head = SequenceHead.from_preset("4q-5s-small", pool="mean")
    # The small preset's encoder map is [27, 16, 8]: 3456 numbers, 128 a frame.
    assert (head.embedding_dim, head.pool_frames) == (3456, 27)
    assert head(np.zeros((1, 6, 3456), "float32")).shape == (1, 2)
    assert head.get_layer("frame_pooling").compute_output_shape((1, 6, 3456)) == (1, 6, 128)
