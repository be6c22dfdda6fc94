import keras
import numpy as np
import pytest

from mer_tfx.errors import ParameterError
from mer_tfx.models.upsampling_conv import UpSamplingConv2D


def _stock_pair(layer: UpSamplingConv2D, input_shape) -> keras.Model:
    """UpSampling2D(2) + Conv2D with `layer`'s config and weights: what it stands for."""
    config = layer.get_config()
    config.pop("name")
    inputs = keras.Input(input_shape)
    conv = keras.layers.Conv2D(**config)
    model = keras.Model(inputs, conv(keras.layers.UpSampling2D(2)(inputs)))
    conv.set_weights(layer.get_weights())
    return model


CASES = [((5, 7, 3), 1), ((4, 6, 8), 4), ((3, 3, 1), 2)]
TENSORFLOW_ONLY = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the gradients are taken with tf.GradientTape (the backend the product trains on)",
)


def _pair(shape, filters):
    layer = UpSamplingConv2D(filters, activation="relu", bias_initializer="random_normal")
    inputs = keras.Input(shape)
    return keras.Model(inputs, layer(inputs)), _stock_pair(layer, shape)


@pytest.mark.parametrize("shape, filters", CASES)
def test_equals_upsampling_then_conv(shape, filters):
    fused, stock = _pair(shape, filters)
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype(np.float32)
    np.testing.assert_allclose(fused(x), stock(x), rtol=1e-5, atol=1e-6)
    assert fused(x).shape == (2, 2 * shape[0], 2 * shape[1], filters)


@TENSORFLOW_ONLY
@pytest.mark.parametrize("shape, filters", CASES)
def test_gradients_equal_upsampling_then_conv(shape, filters):
    import tensorflow as tf

    fused, stock = _pair(shape, filters)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, *shape)).astype(np.float32))
    target = rng.normal(size=(2, 2 * shape[0], 2 * shape[1], filters)).astype(np.float32)

    def grads(model):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(model(x) - target))
        return tape.gradient(loss, [x, *model.trainable_variables])

    for a, b in zip(grads(fused), grads(stock), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_weights_are_a_conv2d_s_and_survive_saving(tmp_path):
    layer = UpSamplingConv2D(4, name="up")
    inputs = keras.Input((6, 4, 8))
    model = keras.Model(inputs, layer(inputs))
    assert [tuple(w.shape) for w in layer.get_weights()] == [(3, 3, 8, 4), (4,)]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.random.default_rng(1).random((1, 6, 4, 8), dtype=np.float32)
    assert isinstance(loaded.get_layer("up"), UpSamplingConv2D)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": 5},
        {"strides": 2},
        {"dilation_rate": 2},
        {"padding": "valid"},
        {"data_format": "channels_first"},
    ],
)
def test_refuses_what_it_does_not_compute(kwargs):
    with pytest.raises(ParameterError, match="UpSamplingConv2D supports"):
        UpSamplingConv2D(2, **kwargs)
