"""The recurrent classifier over a song's segment embeddings (stage 2)."""

from __future__ import annotations

from typing import Union

import keras

from mer_tfx import presets as presets_lib
from mer_tfx.errors import ParameterError
from mer_tfx.models import conv_autoencoder

RNN_TYPES = ("lstm", "gru")
POOLS = presets_lib.HEAD_POOLS
# Added to every standard deviation `adapt` measures: a dimension that never varied on the
# training songs (a ReLU unit that was always 0) must not blow up when it varies later.
STD_FLOOR = 1e-3


@keras.saving.register_keras_serializable(package="mer_tfx")
class Standardization(keras.layers.Normalization):
    """`keras.layers.Normalization` that reads its mean and variance variables at every call.

    The stock layer copies them into tensors when adapted or loaded, so weights set
    later (`set_weights`, a checkpoint, a copy of the head) would be ignored; here they
    always take effect, in Keras and in a traced or exported graph alike.
    """

    def call(self, inputs):
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        mean = keras.ops.reshape(self.adapt_mean, self._broadcast_shape)
        variance = keras.ops.reshape(self.adapt_variance, self._broadcast_shape)
        std = keras.ops.maximum(keras.ops.sqrt(variance), keras.config.epsilon())
        return (inputs - keras.ops.cast(mean, self.compute_dtype)) / keras.ops.cast(
            std, self.compute_dtype
        )


@keras.saving.register_keras_serializable(package="mer_tfx")
class FramePooling(keras.layers.Layer):
    """Statistics of a flattened encoder map over its time frames, one segment at a time.

    A segment embedding is the encoder's `[frames, mels, filters]` map flattened
    frame by frame; this layer reads it as `frames` vectors of `D / frames` and
    returns their mean ("mean") or their mean and standard deviation side by side
    ("meanstd"): `[batch, segments, D]` -> `[batch, segments, D / frames]` (or
    twice that). What stays is the spectral shape of the segment's learned
    features, not their order in time within it.

    Args:
        frames: time frames of the encoder's output map (27 for 5 s segments).
        mode: "mean" or "meanstd".
    """

    def __init__(self, frames: int, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(frames, int) or frames <= 0:
            raise ParameterError(f"frames must be a positive integer. Received: frames={frames!r}")
        if mode not in POOLS[1:]:
            raise ParameterError(f"mode must be one of {POOLS[1:]}. Received: mode={mode!r}")
        self.frames = frames
        self.mode = mode

    def call(self, inputs):
        shape = keras.ops.shape(inputs)  # the width may be unknown in a traced graph
        frames = keras.ops.reshape(inputs, (shape[0], shape[1], self.frames, -1))
        mean = keras.ops.mean(frames, axis=2)
        if self.mode == "mean":
            return mean
        std = keras.ops.sqrt(keras.ops.var(frames, axis=2) + 1e-8)
        return keras.ops.concatenate([mean, std], axis=-1)

    def compute_output_shape(self, input_shape):
        width = None if input_shape[-1] is None else (
            input_shape[-1] // self.frames * (2 if self.mode == "meanstd" else 1))
        return (*input_shape[:-1], width)

    def get_config(self) -> dict:
        return {**super().get_config(), "frames": self.frames, "mode": self.mode}


def check_head_args(
    *, rnn_units: int, rnn_type: str, dropout: float, num_classes: int
) -> None:
    if not isinstance(rnn_units, int) or rnn_units <= 0:
        raise ParameterError(
            f"rnn_units must be a positive integer. Received: rnn_units={rnn_units!r}"
        )
    if rnn_type not in RNN_TYPES:
        raise ParameterError(f"rnn_type must be 'lstm' or 'gru'. Received: rnn_type={rnn_type!r}")
    if not 0.0 <= dropout < 1.0:
        raise ParameterError(f"dropout must be in [0, 1). Received: dropout={dropout!r}")
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ParameterError(
            f"num_classes must be an integer >= 2. Received: num_classes={num_classes!r}"
        )


def head_layers(
    *, rnn_units: int, rnn_type: str, bidirectional: bool, dropout: float, num_classes: int
) -> list:
    """RNN (last output) -> Dropout -> Dense softmax (float32)."""
    check_head_args(
        rnn_units=rnn_units, rnn_type=rnn_type, dropout=dropout, num_classes=num_classes
    )
    rnn_class = keras.layers.LSTM if rnn_type == "lstm" else keras.layers.GRU
    rnn = rnn_class(rnn_units, name=rnn_type)
    if bidirectional:
        rnn = keras.layers.Bidirectional(rnn, merge_mode="concat", name=f"bi{rnn_type}")
    return [
        rnn,
        keras.layers.Dropout(dropout, name="dropout"),
        keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities"),
    ]


@keras.saving.register_keras_serializable(package="mer_tfx")
class SequenceHead(keras.Model):
    """BiLSTM classifier of a sequence of segment embeddings (section 3.2).

    A recurrent layer reads the song's segment embeddings in order and its last
    output (both directions concatenated when bidirectional) goes through
    Dropout and a softmax Dense layer. The paper's head is a BiLSTM with 512
    units each way and dropout 0.5; LSTM and GRU, uni- or bidirectional, are the
    variants it compared.

    Args:
        embedding_dim: length of one segment embedding (the flattened encoder
            output, 27 * 16 * 32 = 13824 for Table 2).
        num_segments: segments per song, or None to accept any number.
            Defaults to None.
        rnn_units: units of the recurrent layer, each direction. Defaults to 512.
        rnn_type: "lstm" or "gru". Defaults to "lstm".
        bidirectional: whether the recurrent layer reads both ways. Defaults to True.
        dropout: dropout rate after the recurrent layer. Defaults to 0.5.
        num_classes: softmax outputs. Defaults to 2 (index 1 = "high").
        normalize: standardise every embedding dimension before the recurrent
            layer (`keras.layers.Normalization(axis=-1)`, named "normalization"),
            with the mean and standard deviation `adapt` measures on the training
            songs' embeddings. Not part of the paper's head. Defaults to False.
        pool: "none" (the paper's head), "mean" or "meanstd": first summarise each
            segment embedding over the encoder map's time frames (`FramePooling`),
            so that the recurrent layer reads `embedding_dim / pool_frames` numbers
            a segment (twice that for "meanstd") instead of `embedding_dim`. Not
            part of the paper's head. Defaults to "none".
        pool_frames: time frames of the encoder map the embedding flattens (its
            first axis, 27 for Table 2's 216-frame segments); required when
            `pool` is not "none" and must divide `embedding_dim`.

    Input shape: float32 `[batch, segments, embedding_dim]`.
    Output shape: float32 `[batch, num_classes]`, rows summing to 1.

    Examples:

    >>> head = SequenceHead(embedding_dim=64, rnn_units=8)
    >>> head(np.zeros((3, 6, 64), "float32")).shape
    TensorShape([3, 2])

    Reference:
        He & Ferguson, "Music Emotion Recognition based on Segment-level
        Two-stage Learning", section 3.2.
    """

    def __init__(
        self,
        embedding_dim: int,
        num_segments: int | None = None,
        rnn_units: int = 512,
        rnn_type: str = "lstm",
        bidirectional: bool = True,
        dropout: float = 0.5,
        num_classes: int = 2,
        normalize: bool = False,
        pool: str = "none",
        pool_frames: int | None = None,
        **kwargs,
    ):
        if not isinstance(embedding_dim, int) or embedding_dim <= 0:
            raise ParameterError(
                f"embedding_dim must be a positive integer. Received: embedding_dim={embedding_dim!r}"
            )
        if num_segments is not None and (not isinstance(num_segments, int) or num_segments <= 0):
            raise ParameterError(
                f"num_segments must be a positive integer or None. Received: num_segments={num_segments!r}"
            )

        if pool not in POOLS:
            raise ParameterError(f"pool must be one of {POOLS}. Received: pool={pool!r}")
        if pool != "none" and (
            not isinstance(pool_frames, int) or pool_frames <= 0 or embedding_dim % pool_frames
        ):
            raise ParameterError(
                f"pool={pool!r} needs pool_frames, a positive integer dividing embedding_dim "
                f"({embedding_dim}). Received: pool_frames={pool_frames!r}"
            )

        # === Layers ===
        layers = head_layers(
            rnn_units=rnn_units,
            rnn_type=rnn_type,
            bidirectional=bidirectional,
            dropout=dropout,
            num_classes=num_classes,
        )

        if normalize:
            layers.insert(0, Standardization(axis=-1, name="normalization"))
        if pool != "none":
            layers.insert(0, FramePooling(pool_frames, pool, name="frame_pooling"))

        # === Functional Model ===
        inputs = keras.Input(shape=(num_segments, embedding_dim), name="embeddings")
        x = inputs
        for layer in layers:
            x = layer(x)
        super().__init__(inputs=inputs, outputs=x, **kwargs)

        # === Config ===
        self.embedding_dim = embedding_dim
        self.num_segments = num_segments
        self.rnn_units = rnn_units
        self.rnn_type = rnn_type
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.num_classes = num_classes
        self.normalize = bool(normalize)
        self.pool = pool
        self.pool_frames = pool_frames

    def adapt(self, embeddings) -> None:
        """Sets the standardisation to the mean and std of `embeddings`, per dimension.

        Call it with the training songs' embeddings only (never validation or test
        songs'), before training. The std gets `STD_FLOOR` added. A no-op when
        `normalize` is False.

        Args:
            embeddings: float `[songs, segments, embedding_dim]`.
        """
        if not self.normalize:
            return
        values = keras.ops.convert_to_numpy(embeddings).astype("float32")
        if values.ndim != 3 or values.shape[-1] != self.embedding_dim or values.size == 0:
            raise ParameterError(
                f"embeddings must be float [songs, segments, {self.embedding_dim}] with at "
                f"least one song. Received: embeddings of shape {values.shape}"
            )
        if self.pool != "none":
            values = keras.ops.convert_to_numpy(self.get_layer("frame_pooling")(values))
        layer = self.get_layer("normalization")
        layer.adapt(values)
        std = keras.ops.sqrt(layer.adapt_variance) + STD_FLOOR
        layer.adapt_variance.assign(keras.ops.square(std))
        layer.finalize_state()

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "embedding_dim": self.embedding_dim,
            "num_segments": self.num_segments,
            "rnn_units": self.rnn_units,
            "rnn_type": self.rnn_type,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "num_classes": self.num_classes,
            "normalize": self.normalize,
            "pool": self.pool,
            "pool_frames": self.pool_frames,
        }

    @classmethod
    def from_config(cls, config: dict) -> SequenceHead:
        return cls(**config)

    @classmethod
    def from_preset(
        cls,
        preset: Union[str, presets_lib.Preset],
        *,
        embedding_dim: int | None = None,
        **kwargs,
    ) -> SequenceHead:
        """Builds a preset's head (untrained).

        `embedding_dim` defaults to the flattened encoder output of the preset's
        autoencoder; `num_segments` to the preset's segments per clip; `pool_frames`
        to the time frames of that autoencoder's encoder map.
        """
        preset = presets_lib.resolve(preset)
        frames, mels, filters = conv_autoencoder.encoder_output_shape(
            preset.features.spectrogram_shape, preset.model.encoder_filters
        )
        if embedding_dim is None:
            embedding_dim = frames * mels * filters
        config = {
            "embedding_dim": embedding_dim,
            "num_segments": preset.features.num_segments,
            "rnn_units": preset.model.rnn_units,
            "rnn_type": preset.model.rnn_type,
            "bidirectional": preset.model.bidirectional,
            "dropout": preset.model.dropout,
            "normalize": preset.model.normalize_embeddings,
            "pool": preset.model.head_pool,
            "pool_frames": frames,
        }
        config.update(kwargs)
        return cls(**config)
