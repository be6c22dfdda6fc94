import keras
import numpy as np
import pytest

from mer_tfx.errors import ParameterError
from mer_tfx.models.conv_autoencoder import ActivityL2, ConvAutoencoder
from mer_tfx.models.upsampling_conv import UpSamplingConv2D

SMALL = {"encoder_filters": (16, 8, 8)}

# Table 2 of the paper, row by row (batch dimension omitted).
TABLE_2 = [
    ("encoder_conv_1", (216, 128, 128)),
    ("encoder_pool_1", (108, 64, 128)),
    ("encoder_conv_2", (108, 64, 64)),
    ("encoder_pool_2", (54, 32, 64)),
    ("encoder_conv_3", (54, 32, 32)),
    ("encoder_pool_3", (27, 16, 32)),
    ("decoder_conv_1", (27, 16, 32)),
    ("decoder_upsample_1", (54, 32, 32)),
    ("decoder_conv_2", (54, 32, 64)),
    ("decoder_upsample_2", (108, 64, 64)),
    ("decoder_conv_3", (108, 64, 128)),
    ("decoder_upsample_3", (216, 128, 128)),
    ("reconstruction", (216, 128, 1)),
]


def test_paper_config_has_table_2_shapes():
    ae = ConvAutoencoder()
    assert ae.input_shape == (None, 216, 128, 1)
    rows = [(layer.name, tuple(layer.output.shape[1:])) for layer in ae.layers[1:]]
    # Each (UpSampling2D, Conv2D) pair of Table 2 is one UpSamplingConv2D layer.
    assert rows == [row for row in TABLE_2 if not row[0].startswith("decoder_upsample")]
    after_upsampling = [TABLE_2[i + 1][0] for i, row in enumerate(TABLE_2) if "upsample" in row[0]]
    assert after_upsampling == ["decoder_conv_2", "decoder_conv_3", "reconstruction"]
    for name in after_upsampling:
        assert isinstance(ae.get_layer(name), UpSamplingConv2D)
    assert ae.encoder.output_shape == (None, 27, 16, 32)
    assert ae.embedding_dim == 27 * 16 * 32
    for layer in ae.layers[1:]:
        if isinstance(layer, keras.layers.Conv2D):
            assert layer.kernel_size == (3, 3) and layer.strides == (1, 1)
            assert layer.activation is keras.activations.relu
        if isinstance(layer, keras.layers.MaxPooling2D):
            assert layer.pool_size == (2, 2) and layer.strides == (2, 2)


def test_activity_penalty_is_in_losses_and_per_example():
    ae = ConvAutoencoder(**SMALL, activity_l2=1e-3)
    x = np.random.default_rng(0).random((1, 216, 128, 1), dtype=np.float32)
    ae(x)
    assert len(ae.losses) == 1
    first_conv = ae.get_layer("encoder_conv_1")
    expected = 1e-3 * np.sum(np.square(keras.ops.convert_to_numpy(first_conv(x))))
    single = float(ae.losses[0])
    # float32 sums over 440k values: relative tolerance for summation order.
    np.testing.assert_allclose(single, expected, rtol=1e-4)
    assert single > 0
    # The penalty is averaged over the batch: a batch of copies costs the same.
    ae(np.repeat(x, 4, axis=0))
    np.testing.assert_allclose(float(ae.losses[0]), single, rtol=1e-4)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the gradient is taken with tf.GradientTape (the backend the product trains on)",
)
def test_activity_penalty_gradient_is_two_l2_x_over_batch():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(3).normal(size=(3, 5, 4, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        penalty = ActivityL2(0.25)(x)
    np.testing.assert_allclose(float(penalty), 0.25 * np.sum(np.square(x)) / 3, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(penalty, x), 2 * 0.25 * x.numpy() / 3, rtol=1e-6)


def test_no_penalty_when_disabled():
    ae = ConvAutoencoder(**SMALL, activity_l2=0.0)
    ae(np.ones((1, 216, 128, 1), "float32"))
    assert ae.losses == []


def test_encoder_shares_weights_with_autoencoder():
    ae = ConvAutoencoder(**SMALL)
    x = np.random.default_rng(1).random((2, 216, 128, 1), dtype=np.float32)
    before = keras.ops.convert_to_numpy(ae.encoder(x))
    conv = ae.get_layer("encoder_conv_3")
    conv.kernel.assign(conv.kernel * 2.0)
    after = keras.ops.convert_to_numpy(ae.encoder(x))
    assert not np.allclose(before, after)
    assert {id(v) for v in ae.encoder.weights} <= {id(v) for v in ae.weights}


def test_config_and_saved_file_round_trip(tmp_path):
    ae = ConvAutoencoder(**SMALL, activity_l2=2e-3)
    restored = ConvAutoencoder.from_config(ae.get_config())
    assert restored.get_config() == ae.get_config()

    x = np.random.default_rng(2).random((2, 216, 128, 1), dtype=np.float32)
    path = tmp_path / "ae.keras"
    ae.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ConvAutoencoder)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), ae.predict(x, verbose=0))
    np.testing.assert_array_equal(
        loaded.encoder.predict(x, verbose=0), ae.encoder.predict(x, verbose=0)
    )


def test_from_preset():
    from mer_tfx import presets

    filters = presets.get("4q-5s-small").model.encoder_filters
    ae = ConvAutoencoder.from_preset("4q-5s-small")
    assert ae.encoder_filters == filters
    assert ae.encoder.output_shape == (None, 27, 16, filters[2])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_shape": (215, 128)},
        {"input_shape": (216,)},
        {"encoder_filters": (16, 8)},
        {"encoder_filters": (16, 0, 8)},
        {"activity_l2": -1.0},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ParameterError, match=str(list(kwargs.values())[0]).split(",")[0][1:]):
        ConvAutoencoder(**{**SMALL, **kwargs})


def test_activity_l2_round_trips():
    reg = ActivityL2(0.5)
    assert ActivityL2.from_config(reg.get_config()).l2 == 0.5
