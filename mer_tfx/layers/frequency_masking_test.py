"""FrequencyMasking specifics; the shared statistics are in _masking_test.py."""

import keras
import numpy as np
from keras import ops

from mer_tfx.layers import FrequencyMasking


def test_defaults_are_the_papers():
    layer = FrequencyMasking()
    assert (layer.freq_mask_param, layer.fill, layer.seed) == (30, "mean", None)


def test_masks_whole_mel_channels_of_a_paper_sized_spectrogram():
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(32, 216, 128, 1)).astype("float32")
    y = ops.convert_to_numpy(FrequencyMasking(fill="zero", seed=0)(x, training=True))[..., 0]

    zero = y == 0
    mels_masked = zero.all(axis=1)  # [batch, mels]
    # Every zero belongs to a fully masked mel channel (frequency axis 2), never a frame alone.
    np.testing.assert_array_equal(zero, np.broadcast_to(mels_masked[:, None, :], zero.shape))
    widths = mels_masked.sum(axis=1)
    assert widths.max() < 30 and widths.max() > 0


def test_in_a_functional_model_masks_only_in_training():
    inputs = keras.Input(shape=(216, 128, 1))
    model = keras.Model(inputs, FrequencyMasking(seed=1)(inputs))
    x = np.random.default_rng(1).uniform(size=(2, 216, 128, 1)).astype("float32")

    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    assert model.output.shape == (None, 216, 128, 1)
    assert not np.array_equal(ops.convert_to_numpy(model(x, training=True)), x)
