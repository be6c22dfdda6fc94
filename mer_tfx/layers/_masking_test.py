"""Behaviour shared by FrequencyMasking and TimeMasking (paper section 3.1.1).

Each test runs for both layers. The statistical tests use fixed seeds, so they
are deterministic; their thresholds are those a correct sampler would fail with
probability 1e-3 at a fresh seed.
"""

import keras
import numpy as np
import pytest
import scipy.stats
from keras import ops

from mer_tfx.errors import ParameterError
from mer_tfx.layers import FrequencyMasking, TimeMasking

# tf.data.Dataset.map traces the layer into a TensorFlow graph: TensorFlow backend only.
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.data.Dataset.map runs layers as TensorFlow graphs (TensorFlow backend only)",
)


P_VALUE_FLOOR = 1e-3


def _make(kind, param, **kwargs):
    if kind == "time":
        return TimeMasking(time_mask_param=param, **kwargs)
    return FrequencyMasking(freq_mask_param=param, **kwargs)


def _shape(kind, batch, size, other=3):
    """[batch, frames, mels] with `size` on the masked axis."""
    return (batch, size, other) if kind == "time" else (batch, other, size)


def _inputs(shape, seed=0):
    # Values in [0.5, 1.5): never 0, and (with probability 1) never equal to the mean.
    return np.random.default_rng(seed).uniform(0.5, 1.5, size=shape).astype("float32")


def _spans(kind, x, y, fill):
    """Per example (start, width) of the masked span; asserts that it is one span.

    Checks that every changed element holds the fill value, that masked
    positions are contiguous and cover the whole other axes, and that nothing
    outside the span changed.
    """
    axis = 1 if kind == "time" else 2
    other_axes = tuple(a for a in range(1, x.ndim) if a != axis)
    fill_value = x.mean(axis=tuple(range(1, x.ndim)), keepdims=True) if fill == "mean" else 0.0
    fill_value = np.broadcast_to(fill_value, x.shape).astype("float32")
    # rtol: the backend's float32 mean may differ from NumPy's by a few ulps
    # (JAX sums in another order than NumPy's pairwise sum).
    is_fill = np.isclose(y, fill_value, rtol=1e-6, atol=1e-6)
    masked = is_fill.all(axis=other_axes)  # [batch, size]
    expected = np.where(np.expand_dims(masked, other_axes), fill_value, x)
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)
    spans = []
    for row in masked:
        idx = np.flatnonzero(row)
        if idx.size == 0:
            spans.append((None, 0))
            continue
        assert np.array_equal(idx, np.arange(idx[0], idx[-1] + 1)), f"not contiguous: {idx}"
        spans.append((int(idx[0]), int(idx.size)))
    return spans


KINDS = ["time", "frequency"]


@pytest.mark.parametrize("kind", KINDS)
def test_width_is_uniform_over_0_to_param(kind):
    param, size, draws = 30, 40, 2000
    x = _inputs(_shape(kind, draws, size))
    y = ops.convert_to_numpy(_make(kind, param, fill="zero", seed=1)(x, training=True))

    widths = np.array([w for _, w in _spans(kind, x, y, "zero")])

    assert widths.min() >= 0 and widths.max() <= param - 1
    counts = np.bincount(widths, minlength=param)
    assert counts.shape == (param,)  # no width >= param
    assert scipy.stats.chisquare(counts).pvalue > P_VALUE_FLOOR
    assert (counts > 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_start_is_uniform_and_span_never_runs_past_the_end(kind):
    # param 2: widths are 0 or 1; a width-1 span must start in [0, size - 1),
    # i.e. the last position (10) is never masked.
    size, draws = 11, 4000
    x = _inputs(_shape(kind, draws, size, other=2))
    y = ops.convert_to_numpy(_make(kind, 2, fill="zero", seed=2)(x, training=True))

    starts = np.array([s for s, w in _spans(kind, x, y, "zero") if w == 1])

    assert 1700 < starts.size < 2300  # about half the widths are 1
    assert starts.max() <= size - 2
    counts = np.bincount(starts, minlength=size - 1)
    assert scipy.stats.chisquare(counts).pvalue > P_VALUE_FLOOR


@pytest.mark.parametrize("kind", KINDS)
def test_largest_param_spans_stay_inside(kind):
    size = 16
    x = _inputs(_shape(kind, 500, size))
    y = ops.convert_to_numpy(_make(kind, size - 1, fill="zero", seed=3)(x, training=True))

    spans = [(s, w) for s, w in _spans(kind, x, y, "zero") if w]

    assert max(w for _, w in spans) == size - 2
    assert all(s + w <= size - 1 for s, w in spans)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fill", ["mean", "zero"])
def test_fill_is_example_mean_or_zero(kind, fill):
    x = _inputs(_shape(kind, 64, 40), seed=4)
    x[::2] += 5.0  # different means per example
    y = ops.convert_to_numpy(_make(kind, 30, fill=fill, seed=5)(x, training=True))

    spans = _spans(kind, x, y, fill)  # asserts the fill value of every masked element

    assert sum(w > 0 for _, w in spans) > 50


@pytest.mark.parametrize("kind", KINDS)
def test_rank_4_input_with_channel(kind):
    x = _inputs(_shape(kind, 32, 40) + (1,), seed=6)
    y = ops.convert_to_numpy(_make(kind, 30, fill="mean", seed=7)(x, training=True))

    assert y.shape == x.shape
    spans = _spans(kind, x[..., 0], y[..., 0], "mean")
    assert sum(w > 0 for _, w in spans) > 20


@pytest.mark.parametrize("kind", KINDS)
def test_identity_at_inference(kind):
    x = _inputs(_shape(kind, 4, 40))
    layer = _make(kind, 30, seed=0)

    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x)), x)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x, training=False)), x)
    assert not np.array_equal(ops.convert_to_numpy(layer(x, training=True)), x)


@pytest.mark.parametrize("kind", KINDS)
def test_seed_reproducibility(kind):
    x = _inputs(_shape(kind, 16, 40))
    a, b, c = (_make(kind, 30, seed=s) for s in (11, 11, 12))

    first_a, second_a = ops.convert_to_numpy(a(x, training=True)), ops.convert_to_numpy(a(x, training=True))
    np.testing.assert_array_equal(first_a, ops.convert_to_numpy(b(x, training=True)))
    np.testing.assert_array_equal(second_a, ops.convert_to_numpy(b(x, training=True)))
    assert not np.array_equal(first_a, second_a)  # the generator advances
    assert not np.array_equal(first_a, ops.convert_to_numpy(c(x, training=True)))


@tensorflow_only
@pytest.mark.parametrize("kind", KINDS)
def test_tf_data_map_draws_fresh_masks(kind):
    import tensorflow as tf

    x = _inputs(_shape(kind, 8, 40))
    layer = _make(kind, 30, fill="zero", seed=8)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(4)
    ds = ds.map(lambda batch: layer(batch, training=True))

    epoch_1 = np.concatenate([ops.convert_to_numpy(b) for b in ds])
    epoch_2 = np.concatenate([ops.convert_to_numpy(b) for b in ds])

    for epoch in (epoch_1, epoch_2):
        spans = _spans(kind, x, epoch, "zero")
        assert sum(w > 0 for _, w in spans) >= 6
    assert not np.array_equal(epoch_1[:4], epoch_1[4:])
    assert not np.array_equal(epoch_1, epoch_2)


@pytest.mark.parametrize("kind", KINDS)
def test_keras_file_reload_keeps_config_and_seed(kind, tmp_path):
    layer = _make(kind, 30, fill="zero", seed=9, name="mask")
    inputs = keras.Input(shape=_shape(kind, 1, 40)[1:] + (1,))
    model = keras.Model(inputs, layer(inputs))
    x = _inputs(_shape(kind, 4, 40) + (1,))
    path = tmp_path / "masks.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)

    assert reloaded.get_layer("mask").get_config() == layer.get_config()
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
    # Keras does not save SeedGenerator states: a reloaded layer draws the same
    # masks as a fresh layer with the same seed.
    fresh = _make(kind, 30, fill="zero", seed=9)
    masked = ops.convert_to_numpy(reloaded(x, training=True))
    np.testing.assert_array_equal(masked, ops.convert_to_numpy(fresh(x, training=True)))
    assert not np.array_equal(masked, x)


def test_config_round_trip():
    for layer in (
        TimeMasking(time_mask_param=12, fill="zero", seed=3, name="t"),
        FrequencyMasking(freq_mask_param=7, fill="mean", seed=None, name="f"),
    ):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("param", [0, -3, 2.5, True, None])
def test_bad_param_raises_with_the_value(kind, param):
    with pytest.raises(ParameterError, match=f"mask_param={param!r}"):
        _make(kind, param)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_fill_raises_with_the_value(kind):
    with pytest.raises(ParameterError, match="fill='ones'"):
        _make(kind, 30, fill="ones")


@pytest.mark.parametrize("kind", KINDS)
def test_param_must_be_smaller_than_the_axis(kind):
    layer = _make(kind, 40)
    with pytest.raises(ParameterError, match="mask_param=40.*input_shape"):
        layer(np.zeros(_shape(kind, 2, 40), "float32"), training=True)


@pytest.mark.parametrize("kind", KINDS)
def test_rank_must_be_3_or_4(kind):
    with pytest.raises(ParameterError, match=r"input_shape=\(216, 128\)"):
        _make(kind, 30)(np.zeros((216, 128), "float32"))


def test_both_masks_train_inside_model_fit_with_xla():
    # The autoencoder of stage 1 masks its input inside the model during fit.
    x = _inputs((8, 40, 36, 1))
    inputs = keras.Input(shape=(40, 36, 1))
    masks = [TimeMasking(seed=2), FrequencyMasking(seed=1)]
    masked = masks[1](masks[0](inputs))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(masked))
    model.compile(optimizer="adam", loss="mse", jit_compile=True)
    states = [ops.convert_to_numpy(m.generator.state).copy() for m in masks]

    history = model.fit(x, x, epochs=2, batch_size=4, verbose=0)

    assert np.isfinite(history.history["loss"]).all()
    # The generators advanced: masks were drawn in the compiled training steps.
    for mask, state in zip(masks, states, strict=True):
        assert not np.array_equal(ops.convert_to_numpy(mask.generator.state), state)


@pytest.mark.parametrize("kind", KINDS)
def test_param_is_checked_again_when_the_axis_was_unknown_at_build(kind):
    inputs = keras.Input(shape=(None, None))
    layer = _make(kind, 30)
    model = keras.Model(inputs, layer(inputs))
    small = np.ones(_shape(kind, 2, 20), "float32")

    np.testing.assert_array_equal(ops.convert_to_numpy(model(small)), small)  # inference: no mask, no check
    with pytest.raises(ParameterError, match="mask_param=30"):
        model(small, training=True)
