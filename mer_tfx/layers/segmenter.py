"""`Segmenter`: a clip becomes contiguous, non-overlapping segments."""

from __future__ import annotations

from typing import Union

import keras
from keras import ops

from mer_tfx import features, presets
from mer_tfx.errors import ParameterError
from mer_tfx.layers._preset_utils import feature_config


def _check_optional_positive_int(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ParameterError(
            f"{name} must be a positive integer or None. Received: {name}={value!r}"
        )


@keras.saving.register_keras_serializable(package="mer_tfx")
class Segmenter(keras.layers.Layer):
    """Splits waveforms into contiguous, non-overlapping segments.

    Concatenating the segments of an example gives back its (looped or cut)
    waveform. When `clip_samples` is set, every input is first looped from its
    start or cut to that length, as the paper does with clips shorter or longer
    than 30 s, so inputs of any length >= 1 are accepted. Without it the number
    of input samples must be a multiple of `segment_samples`.

    Args:
        segment_samples: samples per segment (`segment_seconds * sample_rate`).
        num_segments: expected number of segments, which makes the output's
            static shape known when the input length is not. Defaults to None
            (inferred from `clip_samples` or the input shape).
        clip_samples: if set, loop or cut each input to this many samples
            first; must be a multiple of `segment_samples`. Defaults to None
            (the input is used as it is).
        **kwargs: standard `keras.layers.Layer` arguments (`name`...). `dtype`
            defaults to "float32", also under a mixed-precision policy.

    Input shape:
        float32 [batch, samples] (any leading dimensions work).

    Output shape:
        float32 [batch, num_segments, segment_samples].

    Examples:

    >>> import numpy as np
    >>> layer = Segmenter(segment_samples=4, clip_samples=12)
    >>> layer(np.arange(1, 6, dtype="float32")[None]).numpy()[0]
    array([[1., 2., 3., 4.],
           [5., 1., 2., 3.],
           [4., 5., 1., 2.]], dtype=float32)
    >>> Segmenter.from_preset("4q-5s")(np.zeros((2, 22050 * 12), "float32")).shape
    TensorShape([2, 6, 110250])

    Reference:
        He & Ferguson, "Music Emotion Recognition based on Segment-level
        Two-stage Learning", sections 3 and 4.2 (contiguous segments of 1, 3, 5
        or 10 s from 30 s clips; short clips repeated from the start).
    """

    def __init__(
        self,
        segment_samples: int,
        num_segments: int | None = None,
        clip_samples: int | None = None,
        **kwargs,
    ):
        # Waveforms and spectra stay float32 under a mixed-precision policy:
        # float16 audio would lose the precision the features need.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        _check_optional_positive_int("segment_samples", segment_samples)
        if segment_samples is None:
            raise ParameterError("segment_samples must be a positive integer. Received: None")
        _check_optional_positive_int("num_segments", num_segments)
        _check_optional_positive_int("clip_samples", clip_samples)
        if clip_samples is not None:
            if clip_samples % segment_samples:
                raise ParameterError(
                    "clip_samples must be a multiple of segment_samples. Received: "
                    f"clip_samples={clip_samples}, segment_samples={segment_samples}"
                )
            if num_segments is not None and num_segments * segment_samples != clip_samples:
                raise ParameterError(
                    "num_segments * segment_samples must equal clip_samples. Received: "
                    f"num_segments={num_segments}, segment_samples={segment_samples}, "
                    f"clip_samples={clip_samples}"
                )
        self.segment_samples = segment_samples
        self.num_segments = num_segments
        self.clip_samples = clip_samples

    @classmethod
    def from_preset(
        cls, name_or_preset: Union[str, presets.Preset, presets.FeatureConfig], **kwargs
    ) -> Segmenter:
        """A `Segmenter` that loops/cuts to the preset's clip and cuts its segments.

        Args:
            name_or_preset: a preset name (see `mer_tfx.presets.names()`), a
                `Preset` or a `FeatureConfig`.
            **kwargs: passed to the constructor (e.g. `name`).
        """
        config = feature_config(name_or_preset)
        return cls(
            segment_samples=config.segment_samples,
            num_segments=config.num_segments,
            clip_samples=config.clip_samples,
            **kwargs,
        )

    def build(self, input_shape):
        samples = input_shape[-1]
        if self.clip_samples is None and samples is not None and samples % self.segment_samples:
            raise ParameterError(
                "The number of samples must be a multiple of segment_samples (or set "
                f"clip_samples). Received: samples={samples}, "
                f"segment_samples={self.segment_samples}"
            )
        self.built = True

    def call(self, inputs):
        waveform = ops.cast(inputs, "float32")
        if self.clip_samples is not None:
            waveform = features.loop_to_length(waveform, num_samples=self.clip_samples)
        return features.segment(
            waveform, segment_samples=self.segment_samples, num_segments=self._num_segments()
        )

    def _num_segments(self) -> int | None:
        if self.num_segments is not None:
            return self.num_segments
        if self.clip_samples is not None:
            return self.clip_samples // self.segment_samples
        return None

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1] if self.clip_samples is None else self.clip_samples
        n = self._num_segments()
        if n is None and samples is not None:
            n = samples // self.segment_samples
        return tuple(input_shape[:-1]) + (n, self.segment_samples)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "segment_samples": self.segment_samples,
                "num_segments": self.num_segments,
                "clip_samples": self.clip_samples,
            }
        )
        return config
