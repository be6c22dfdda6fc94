"""Nearest-neighbour 2x upsampling and a 3x3 convolution, computed at the low resolution."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from mer_tfx.errors import ParameterError

# For output row 2i + a of a 'same' 3x3 convolution over a 2x nearest upsampling, the
# kernel row u reads upsampled row 2i + a + u - 1, i.e. low-resolution row
# i + floor((a + u - 1) / 2). _TAPS[a, d, u] = 1 when that row is i + d - 1.
_TAPS = np.zeros((2, 3, 3), np.float32)
for _a in range(2):
    for _u in range(3):
        _TAPS[_a, (_a + _u - 1) // 2 + 1, _u] = 1.0


@keras.saving.register_keras_serializable(package="mer_tfx")
class UpSamplingConv2D(keras.layers.Conv2D):
    """`UpSampling2D(2)` (nearest) then `Conv2D(filters, 3, padding="same")`, in one layer.

    The result is that of the two stock layers, but the upsampled tensor is never
    built: the 3x3 kernel is folded into one 3x3 kernel per output phase (2 x 2 of
    them) that runs on the low-resolution input, and the four phases are interleaved
    into the output ("sub-pixel" form). The convolution then works on a quarter of
    the pixels with four times the output channels, which CPU convolution kernels
    run far better when `filters` is small (the last layer of an autoencoder has one).

    The weights are those of the `Conv2D` it replaces (kernel `[3, 3, in, filters]`
    and bias), so weights move between the two forms unchanged. Only the
    arguments below are supported; the rest are `Conv2D`'s.

    Args:
        filters: output channels.
        activation, use_bias, kernel_initializer, ...: as for `keras.layers.Conv2D`.

    Input shape: `[batch, rows, cols, channels]` (channels last).
    Output shape: `[batch, 2 * rows, 2 * cols, filters]`.

    Examples:

    >>> layer = UpSamplingConv2D(4)
    >>> layer.compute_output_shape((None, 27, 16, 8))
    (None, 54, 32, 4)
    """

    def __init__(self, filters: int, kernel_size=3, **kwargs):
        ones = (1, (1, 1), [1, 1])
        supported = (
            kernel_size in (3, (3, 3), [3, 3])
            and kwargs.get("strides", 1) in ones
            and kwargs.get("dilation_rate", 1) in ones
            and kwargs.get("groups", 1) == 1
            and kwargs.get("padding", "same") == "same"
            and kwargs.get("data_format") in (None, "channels_last")
        )
        if not supported:
            raise ParameterError(
                "UpSamplingConv2D supports kernel_size=3, strides=1, dilation_rate=1, groups=1, "
                f"padding='same' and channels_last only. Received: kernel_size={kernel_size!r}, "
                f"{ {k: v for k, v in kwargs.items() if k in ('strides', 'dilation_rate', 'groups', 'padding', 'data_format')} }"
            )
        kwargs["padding"] = "same"
        kwargs["data_format"] = "channels_last"
        super().__init__(filters, 3, **kwargs)

    def _phase_kernel(self):
        """`[3, 3, in, 4 * filters]`: the kernel of each output phase (a, b), phase-major."""
        kernel = ops.convert_to_tensor(self.kernel)
        taps = ops.cast(ops.convert_to_tensor(_TAPS), kernel.dtype)
        folded = ops.einsum("adu,bev,uvio->deiabo", taps, taps, kernel)
        shape = ops.shape(kernel)
        return ops.reshape(folded, (3, 3, shape[2], 4 * self.filters))

    def call(self, inputs):
        outputs = ops.conv(inputs, self._phase_kernel(), strides=1, padding="same")
        if self.use_bias:
            outputs = outputs + ops.tile(ops.convert_to_tensor(self.bias), [4])
        if self.activation is not None:
            outputs = self.activation(outputs)
        shape = ops.shape(inputs)
        rows, cols = shape[1], shape[2]
        # [b, r, c, (a, b', f)] -> [b, r, a, c, b', f] -> [b, 2r, 2c, f]
        outputs = ops.reshape(outputs, (-1, rows, cols, 2, 2, self.filters))
        outputs = ops.transpose(outputs, (0, 1, 3, 2, 4, 5))
        return ops.reshape(outputs, (-1, 2 * rows, 2 * cols, self.filters))

    def compute_output_shape(self, input_shape):
        batch, rows, cols, _ = input_shape
        double = lambda d: None if d is None else 2 * d  # noqa: E731
        return (batch, double(rows), double(cols), self.filters)
