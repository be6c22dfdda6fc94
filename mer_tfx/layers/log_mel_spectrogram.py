"""`LogMelSpectrogram`: the paper's log10(mel power + 1) features as a layer."""

from __future__ import annotations

from typing import Union

import keras
from keras import ops

from mer_tfx import features, presets
from mer_tfx.errors import ParameterError
from mer_tfx.layers._preset_utils import feature_config


@keras.saving.register_keras_serializable(package="mer_tfx")
class LogMelSpectrogram(keras.layers.Layer):
    """Computes log10(mel power spectrogram + 1), frames by mels, like librosa.

    A thin layer over `mer_tfx.features.log_mel_spectrogram`, the one
    implementation shared with the TFX transform and the serving signatures, so a
    model built with this layer sees exactly the features the pipeline computes.
    It equals ``np.log10(librosa.feature.melspectrogram(y=y, sr=sample_rate,
    n_fft=n_fft, hop_length=hop_length, n_mels=n_mels) + 1).T`` (centred frames,
    periodic Hann window, power 2, Slaney mel filterbank) to about 1e-6. It has
    no weights and uses `keras.ops` only, so it runs on the TensorFlow, JAX and
    PyTorch backends; on TensorFlow it emits core ops only (it runs in TF
    Serving and in `tf.data.Dataset.map`). With the paper's presets (Table 1)
    every segment gives 216 frames of 128 mels.

    Args:
        sample_rate: sample rate of the input waveform in Hz.
        n_fft: FFT window length in samples.
        hop_length: samples between successive frames.
        n_mels: mel bands. Defaults to 128.
        **kwargs: standard `keras.layers.Layer` arguments (`name`...). `dtype`
            defaults to "float32", also under a mixed-precision policy.

    Input shape:
        float32 [batch, samples] or [batch, segments, samples] (any number of
        leading dimensions).

    Output shape:
        float32 [batch, frames, n_mels] or [batch, segments, frames, n_mels],
        with frames = 1 + samples // hop_length.

    Examples:

    >>> import numpy as np
    >>> layer = LogMelSpectrogram(sample_rate=22050, n_fft=1024, hop_length=512)
    >>> layer(np.zeros((2, 5 * 22050), "float32")).shape
    TensorShape([2, 216, 128])
    >>> LogMelSpectrogram.from_preset("pmemo-1s")(np.zeros((2, 30, 44100), "float32")).shape
    TensorShape([2, 30, 216, 128])

    Reference:
        He & Ferguson, "Music Emotion Recognition based on Segment-level
        Two-stage Learning", section 4.2 and Table 1.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int,
        hop_length: int,
        n_mels: int = presets.NUM_MELS,
        **kwargs,
    ):
        # Waveforms and spectra stay float32 under a mixed-precision policy:
        # float16 audio would lose the precision the features need.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        for name, value in (
            ("sample_rate", sample_rate),
            ("n_fft", n_fft),
            ("hop_length", hop_length),
            ("n_mels", n_mels),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ParameterError(
                    f"{name} must be a positive integer. Received: {name}={value!r}"
                )
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels

    @classmethod
    def from_preset(
        cls, name_or_preset: Union[str, presets.Preset, presets.FeatureConfig], **kwargs
    ) -> LogMelSpectrogram:
        """The layer with a preset's sample rate, FFT size, hop and mel count.

        Args:
            name_or_preset: a preset name (see `mer_tfx.presets.names()`), a
                `Preset` or a `FeatureConfig`.
            **kwargs: passed to the constructor (e.g. `name`).

        Raises:
            ParameterError: unknown preset name (the message lists the known ones).
        """
        config = feature_config(name_or_preset)
        return cls(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            **kwargs,
        )

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ParameterError(
                "Expected input of shape [batch, samples] or [batch, segments, samples]. "
                f"Received: input_shape={tuple(input_shape)}"
            )
        self.built = True

    def call(self, inputs):
        return features.log_mel_spectrogram(
            ops.cast(inputs, "float32"),
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            n_mels=self.n_mels,
        )

    def compute_output_shape(self, input_shape):
        samples = input_shape[-1]
        frames = None if samples is None else 1 + samples // self.hop_length
        return tuple(input_shape[:-1]) + (frames, self.n_mels)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sample_rate": self.sample_rate,
                "n_fft": self.n_fft,
                "hop_length": self.hop_length,
                "n_mels": self.n_mels,
            }
        )
        return config
