"""The convolutional autoencoder of the paper's Table 2 (stage 1)."""

from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import keras
from keras import ops

from mer_tfx import presets as presets_lib
from mer_tfx.errors import ParameterError
from mer_tfx.models.upsampling_conv import UpSamplingConv2D

NUM_POOLS = 3


@ops.custom_gradient
def _sum_of_squares(x):
    """`sum(square(x))` with its gradient, `2 * x * upstream`, written out.

    The automatic gradient broadcasts the upstream scalar to x's shape (a Tile as
    large as the first convolution's full-size output) and multiplies twice; this
    is one pass. (TensorFlow's fused `tf.nn.l2_loss` would also shorten the forward
    sum, by ~5 % of a step per CPU-second, but this module stays backend-neutral.)
    """
    total = ops.sum(ops.square(x))

    def grad(*args, upstream=None):
        upstream = args[0] if upstream is None else upstream
        return x * (2.0 * upstream)

    return total, grad


@keras.saving.register_keras_serializable(package="mer_tfx")
class ActivityL2(keras.regularizers.Regularizer):
    """L2 penalty on a layer's output, summed per example and averaged over the batch.

    `l2 * sum(square(x)) / batch_size`. tf.keras 2 (which the paper used) divided
    activity penalties by the batch size; Keras 3 does not, so the stock
    `keras.regularizers.L2` would make the penalty grow with the batch size.

    Args:
        l2: the penalty factor. Defaults to 1e-3.
    """

    def __init__(self, l2: float = 1e-3):
        if l2 < 0:
            raise ParameterError(f"l2 must be non-negative. Received: l2={l2}")
        self.l2 = float(l2)

    def __call__(self, x):
        batch = ops.cast(ops.shape(x)[0], "float32")
        penalty = _sum_of_squares(ops.cast(x, "float32"))
        return self.l2 * penalty / ops.maximum(batch, 1.0)

    def get_config(self) -> dict:
        return {"l2": self.l2}


def check_spectrogram_shape(input_shape) -> Tuple[int, int]:
    """Checks a (frames, mels) shape can go through three 2x2 poolings and back."""
    shape = tuple(input_shape)
    if len(shape) != 2 or any(not isinstance(d, int) or d <= 0 for d in shape):
        raise ParameterError(
            f"input_shape must be (frames, mels) positive integers. Received: input_shape={input_shape!r}"
        )
    factor = 2**NUM_POOLS
    if any(d % factor for d in shape):
        raise ParameterError(
            f"input_shape must be divisible by {factor} in both dimensions (three 2x2 "
            f"poolings, then three upsamplings). Received: input_shape={input_shape!r}"
        )
    return shape


def check_filters(encoder_filters) -> Tuple[int, int, int]:
    filters = tuple(encoder_filters)
    if len(filters) != NUM_POOLS or any(not isinstance(f, int) or f <= 0 for f in filters):
        raise ParameterError(
            "encoder_filters must be three positive integers. "
            f"Received: encoder_filters={encoder_filters!r}"
        )
    return filters


def encoder_output_shape(input_shape, encoder_filters) -> Tuple[int, int, int]:
    """(frames / 8, mels / 8, filters[2]): the encoder's output for one segment."""
    frames, mels = check_spectrogram_shape(input_shape)
    filters = check_filters(encoder_filters)
    factor = 2**NUM_POOLS
    return (frames // factor, mels // factor, filters[-1])


def embedding_dim(input_shape=(216, 128), encoder_filters=(128, 64, 32)) -> int:
    """Length of a flattened segment embedding (27 * 16 * 32 = 13824 for Table 2)."""
    h, w, c = encoder_output_shape(input_shape, encoder_filters)
    return h * w * c


def encoder_layers(
    encoder_filters: Sequence[int], activity_l2: float, *, prefix: str = "encoder"
) -> List[keras.layers.Layer]:
    """The encoder half of Table 2: (Conv2D 3x3 ReLU, MaxPool 2x2) three times.

    The first convolution carries the L2 activity penalty when `activity_l2 > 0`.
    """
    layers = []
    for i, filters in enumerate(check_filters(encoder_filters), start=1):
        regularizer = ActivityL2(activity_l2) if (i == 1 and activity_l2 > 0) else None
        layers.append(
            keras.layers.Conv2D(
                filters,
                3,
                strides=1,
                padding="same",
                activation="relu",
                activity_regularizer=regularizer,
                name=f"{prefix}_conv_{i}",
            )
        )
        layers.append(keras.layers.MaxPooling2D(2, strides=2, name=f"{prefix}_pool_{i}"))
    return layers


@keras.saving.register_keras_serializable(package="mer_tfx")
class ConvAutoencoder(keras.Model):
    """Convolutional autoencoder of one log-mel segment (He & Ferguson, Table 2).

    Encoder: three blocks of Conv2D (3x3, stride 1, "same", ReLU) followed by
    MaxPooling2D (2x2, stride 2), with `encoder_filters` filters; the first
    convolution's output carries an L2 activity penalty. Decoder: Conv2D with
    `encoder_filters[2]` filters, then (UpSampling2D 2x2, Conv2D) with
    `encoder_filters[1]`, `encoder_filters[0]` filters, then UpSampling2D and a
    one-filter Conv2D back to the input's shape. Each (UpSampling2D, Conv2D) pair is
    one `UpSamplingConv2D` layer, named after its convolution: the same function and
    weights, computed without building the upsampled tensor. Every convolution uses ReLU, as
    the paper states; the targets log10(S + 1) are non-negative. The
    reconstruction is float32 even under a mixed-precision policy. Train it with
    `keras.losses.Huber(delta=1.0)` on masked inputs and clean targets
    (`mer_tfx.training.pretrain_autoencoder` does).

    Args:
        input_shape: (frames, mels) of one segment, both divisible by 8.
            Defaults to (216, 128).
        encoder_filters: filters of the three encoder convolutions. Defaults to
            (128, 64, 32).
        activity_l2: L2 activity penalty on the first convolution's output, per
            example (see `ActivityL2`); 0 disables it. Defaults to 1e-3.

    Input shape: float32 `[batch, frames, mels, 1]`.
    Output shape: float32 `[batch, frames, mels, 1]`.

    `.encoder` is a `keras.Model` of its own, `[batch, frames, mels, 1]` ->
    `[batch, frames / 8, mels / 8, encoder_filters[2]]` (27 x 16 x 32 for Table 2),
    sharing its weights with the autoencoder.

    Examples:

    >>> ae = ConvAutoencoder(encoder_filters=(16, 8, 8))
    >>> ae.output_shape, ae.encoder.output_shape
    ((None, 216, 128, 1), (None, 27, 16, 8))

    Reference:
        He & Ferguson, "Music Emotion Recognition based on Segment-level
        Two-stage Learning", section 3.1.2 and Table 2.
    """

    def __init__(
        self,
        input_shape: Union[Tuple[int, int], Sequence[int]] = (216, 128),
        encoder_filters: Sequence[int] = (128, 64, 32),
        activity_l2: float = 1e-3,
        **kwargs,
    ):
        spectrogram_shape = check_spectrogram_shape(input_shape)
        filters = check_filters(encoder_filters)
        if activity_l2 < 0:
            raise ParameterError(
                f"activity_l2 must be non-negative. Received: activity_l2={activity_l2}"
            )

        # === Layers ===
        encoder_stack = encoder_layers(filters, activity_l2, prefix="encoder")
        decoder_stack = [
            keras.layers.Conv2D(
                filters[2], 3, padding="same", activation="relu", name="decoder_conv_1"
            )
        ]
        # Each 2x upsampling and the convolution after it run as one UpSamplingConv2D:
        # the same function and weights, computed without building the upsampled tensor.
        for i, f in enumerate((filters[1], filters[0]), start=1):
            decoder_stack.append(
                UpSamplingConv2D(f, 3, activation="relu", name=f"decoder_conv_{i + 1}")
            )
        decoder_stack.append(
            UpSamplingConv2D(1, 3, activation="relu", dtype="float32", name="reconstruction")
        )

        # === Functional Model ===
        inputs = keras.Input(shape=(*spectrogram_shape, 1), name="log_mel")
        x = inputs
        for layer in encoder_stack:
            x = layer(x)
        encoded = x
        for layer in decoder_stack:
            x = layer(x)
        encoder = keras.Model(inputs, encoded, name="conv_encoder")
        super().__init__(inputs=inputs, outputs=x, **kwargs)

        # === Config ===
        self.spectrogram_shape = spectrogram_shape
        self.encoder_filters = filters
        self.activity_l2 = float(activity_l2)
        # Not tracked as a sub-layer: its layers already belong to this model, so
        # tracking it would save the same weights twice.
        object.__setattr__(self, "_encoder_model", encoder)

    @property
    def encoder(self) -> keras.Model:
        """The encoder half, `[batch, frames, mels, 1] -> [batch, frames/8, mels/8, filters[2]]`."""
        return self._encoder_model

    @property
    def embedding_dim(self) -> int:
        """Length of one flattened segment embedding."""
        return embedding_dim(self.spectrogram_shape, self.encoder_filters)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": list(self.spectrogram_shape),
            "encoder_filters": list(self.encoder_filters),
            "activity_l2": self.activity_l2,
        }

    @classmethod
    def from_config(cls, config: dict) -> ConvAutoencoder:
        return cls(**config)

    @classmethod
    def from_preset(cls, preset: Union[str, presets_lib.Preset], **kwargs) -> ConvAutoencoder:
        """Builds the autoencoder of a preset (name or `Preset`), untrained."""
        preset = presets_lib.resolve(preset)
        config = {
            "input_shape": preset.features.spectrogram_shape,
            "encoder_filters": preset.model.encoder_filters,
            "activity_l2": preset.model.activity_l2,
        }
        config.update(kwargs)
        return cls(**config)
