import keras
import numpy as np
import pytest
from keras import ops

from mer_tfx import presets
from mer_tfx.errors import ParameterError
from mer_tfx.layers import Segmenter

# tf.data.Dataset.map traces the layer into a TensorFlow graph: TensorFlow backend only.
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.data.Dataset.map runs layers as TensorFlow graphs (TensorFlow backend only)",
)


def test_segments_are_contiguous_and_concatenate_to_the_input():
    x = np.arange(2 * 24, dtype="float32").reshape(2, 24)
    out = ops.convert_to_numpy(Segmenter(segment_samples=6)(x))

    assert out.shape == (2, 4, 6)
    np.testing.assert_array_equal(out.reshape(2, 24), x)
    np.testing.assert_array_equal(out[1, 2], x[1, 12:18])


def test_short_input_is_looped_from_its_start():
    x = np.array([[1, 2, 3, 4, 5]], "float32")
    out = ops.convert_to_numpy(Segmenter(segment_samples=4, clip_samples=12)(x))

    np.testing.assert_array_equal(out[0], [[1, 2, 3, 4], [5, 1, 2, 3], [4, 5, 1, 2]])


def test_long_input_is_cut_to_the_clip():
    x = np.arange(30, dtype="float32")[None]
    out = ops.convert_to_numpy(Segmenter(segment_samples=5, clip_samples=20)(x))

    np.testing.assert_array_equal(out.reshape(-1), x[0, :20])


@pytest.mark.parametrize("preset_name", ["4q-3s", "pmemo-10s"])
def test_from_preset_gives_the_papers_segments(preset_name):
    features = presets.get(preset_name).features
    layer = Segmenter.from_preset(preset_name)
    # 7 s of a ramp: looped to 30 s then cut in segments.
    x = np.linspace(-1, 1, 7 * features.sample_rate, dtype="float32")[None]

    out = ops.convert_to_numpy(layer(x))

    assert out.shape == (1, features.num_segments, features.segment_samples)
    clip = np.tile(x[0], 5)[: features.clip_samples]
    np.testing.assert_array_equal(out.reshape(-1), clip)


def test_any_length_input_in_a_functional_model_has_a_static_output_shape():
    inputs = keras.Input(shape=(None,))
    outputs = Segmenter(segment_samples=8, clip_samples=32)(inputs)
    model = keras.Model(inputs, outputs)

    assert outputs.shape == (None, 4, 8)
    for length in (3, 32, 50):
        x = np.random.default_rng(length).uniform(size=(2, length)).astype("float32")
        assert model.predict(x, verbose=0).shape == (2, 4, 8)


def test_num_segments_sets_the_static_shape():
    layer = Segmenter(segment_samples=8, num_segments=3)
    assert layer.compute_output_shape((None, None)) == (None, 3, 8)
    assert Segmenter(segment_samples=8).compute_output_shape((None, 24)) == (None, 3, 8)


@tensorflow_only
def test_works_in_tf_data_map():
    import tensorflow as tf

    layer = Segmenter(segment_samples=4, clip_samples=8)
    x = np.arange(12, dtype="float32").reshape(2, 6)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2).map(layer)

    (out,) = [ops.convert_to_numpy(b) for b in ds]

    np.testing.assert_array_equal(out[1], [[6, 7, 8, 9], [10, 11, 6, 7]])


def test_config_round_trip_and_keras_file_reload(tmp_path):
    layer = Segmenter(segment_samples=5, num_segments=4, clip_samples=20, name="seg")
    assert Segmenter.from_config(layer.get_config()).get_config() == layer.get_config()

    inputs = keras.Input(shape=(None,))
    model = keras.Model(inputs, layer(inputs))
    path = tmp_path / "seg.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    x = np.random.default_rng(0).uniform(size=(3, 13)).astype("float32")

    assert isinstance(reloaded.get_layer("seg"), Segmenter)
    np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_input_not_a_multiple_of_segment_samples_raises():
    with pytest.raises(ParameterError, match="samples=10, segment_samples=4"):
        Segmenter(segment_samples=4)(np.zeros((1, 10), "float32"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"segment_samples": 0}, "segment_samples=0"),
        ({"segment_samples": None}, "segment_samples"),
        ({"segment_samples": 4, "num_segments": -1}, "num_segments=-1"),
        ({"segment_samples": 4, "clip_samples": 2.0}, "clip_samples=2.0"),
        ({"segment_samples": 4, "clip_samples": 10}, "clip_samples=10, segment_samples=4"),
        ({"segment_samples": 4, "num_segments": 2, "clip_samples": 12}, "num_segments=2"),
    ],
)
def test_bad_arguments_raise_with_the_value(kwargs, message):
    with pytest.raises(ParameterError, match=message):
        Segmenter(**kwargs)
