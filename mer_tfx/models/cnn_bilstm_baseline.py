"""The paper's baseline: the encoder's CNN and the BiLSTM trained jointly."""

from __future__ import annotations

from typing import Sequence, Tuple, Union

import keras

from mer_tfx import presets as presets_lib
from mer_tfx.errors import ParameterError
from mer_tfx.models import conv_autoencoder
from mer_tfx.models.segment_encoder import SegmentEncoder
from mer_tfx.models.sequence_head import head_layers


@keras.saving.register_keras_serializable(package="mer_tfx")
class CnnBiLstmBaseline(keras.Model):
    """CNN + BiLSTM baseline trained end to end (section 5, Table 6 "The baseline").

    The CNN has the structure of the autoencoder's encoder (three blocks of
    Conv2D 3x3 ReLU + MaxPool 2x2) but starts from fresh weights and is
    trained jointly with the recurrent head on the emotion labels, with no
    stage-1 pretraining.

    Args:
        input_shape: (frames, mels) of one segment, divisible by 8. Defaults to
            (216, 128).
        num_segments: segments per song, or None for any number. Defaults to None.
        encoder_filters: filters of the three convolutions. Defaults to (128, 64, 32).
        activity_l2: L2 activity penalty on the first convolution's output. The
            paper uses it to train the autoencoder; for the baseline it defaults
            to 0 (not stated for the baseline). Defaults to 0.0.
        rnn_units: recurrent units each direction. Defaults to 512.
        rnn_type: "lstm" or "gru". Defaults to "lstm".
        bidirectional: whether the recurrent layer reads both ways. Defaults to True.
        dropout: dropout after the recurrent layer. Defaults to 0.5.
        num_classes: softmax outputs. Defaults to 2.

    Input shape: float32 `[batch, segments, frames, mels]`.
    Output shape: float32 `[batch, num_classes]` softmax (index 1 = "high").

    Examples:

    >>> model = CnnBiLstmBaseline(encoder_filters=(16, 8, 8), rnn_units=32, num_segments=6)
    >>> model.output_shape
    (None, 2)

    Reference:
        He & Ferguson, "Music Emotion Recognition based on Segment-level
        Two-stage Learning", section 4.4 (baseline) and Table 6.
    """

    def __init__(
        self,
        input_shape: Union[Tuple[int, int], Sequence[int]] = (216, 128),
        num_segments: int | None = None,
        encoder_filters: Sequence[int] = (128, 64, 32),
        activity_l2: float = 0.0,
        rnn_units: int = 512,
        rnn_type: str = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.5,
        num_classes: int = 2,
        **kwargs,
    ):
        spectrogram_shape = conv_autoencoder.check_spectrogram_shape(input_shape)
        filters = conv_autoencoder.check_filters(encoder_filters)
        if activity_l2 < 0:
            raise ParameterError(
                f"activity_l2 must be non-negative. Received: activity_l2={activity_l2}"
            )
        if num_segments is not None and (not isinstance(num_segments, int) or num_segments <= 0):
            raise ParameterError(
                f"num_segments must be a positive integer or None. Received: num_segments={num_segments!r}"
            )

        # === Layers ===
        cnn_input = keras.Input(shape=(*spectrogram_shape, 1), name="segment")
        x = cnn_input
        for layer in conv_autoencoder.encoder_layers(filters, activity_l2, prefix="cnn"):
            x = layer(x)
        cnn = keras.Model(cnn_input, x, name="cnn")
        segment_encoder = SegmentEncoder(cnn, frozen=False, name="segment_encoder")
        head = head_layers(
            rnn_units=rnn_units,
            rnn_type=rnn_type,
            bidirectional=bidirectional,
            dropout=dropout,
            num_classes=num_classes,
        )

        # === Functional Model ===
        inputs = keras.Input(shape=(num_segments, *spectrogram_shape), name="log_mel")
        x = segment_encoder(inputs)
        for layer in head:
            x = layer(x)
        super().__init__(inputs=inputs, outputs=x, **kwargs)

        # === Config ===
        self.spectrogram_shape = spectrogram_shape
        self.num_segments = num_segments
        self.encoder_filters = filters
        self.activity_l2 = float(activity_l2)
        self.rnn_units = rnn_units
        self.rnn_type = rnn_type
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.num_classes = num_classes

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": list(self.spectrogram_shape),
            "num_segments": self.num_segments,
            "encoder_filters": list(self.encoder_filters),
            "activity_l2": self.activity_l2,
            "rnn_units": self.rnn_units,
            "rnn_type": self.rnn_type,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_config(cls, config: dict) -> CnnBiLstmBaseline:
        return cls(**config)

    @classmethod
    def from_preset(cls, preset: Union[str, presets_lib.Preset], **kwargs) -> CnnBiLstmBaseline:
        """Builds a preset's baseline (untrained) with the preset's encoder and head sizes."""
        preset = presets_lib.resolve(preset)
        config = {
            "input_shape": preset.features.spectrogram_shape,
            "num_segments": preset.features.num_segments,
            "encoder_filters": preset.model.encoder_filters,
            "rnn_units": preset.model.rnn_units,
            "rnn_type": preset.model.rnn_type,
            "bidirectional": preset.model.bidirectional,
            "dropout": preset.model.dropout,
        }
        config.update(kwargs)
        return cls(**config)
