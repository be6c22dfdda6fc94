"""The serving SavedModel: raw audio in, valence/arousal/quadrant out.

One SavedModel (written with `tf.saved_model.save` of a `tf.Module` that calls the
Keras 3 encoder and the two heads and saves their weights only, no optimizer state)
carries four signatures, the contract of docs/architecture.md:

| signature | inputs | outputs |
|---|---|---|
| `serving_default` | `waveform` float32 [batch, samples] | `valence_probability`, `arousal_probability` float32 [batch]; `valence_label`, `arousal_label` int64 [batch]; `quadrant` string [batch] |
| `serving_wav` | `wav_bytes` string [batch] | same as `serving_default` |
| `serving_examples` | `examples` string [batch] (serialized tf.Example with `log_mel`) | `valence`, `arousal` float32 [batch] |
| `model_info` | `unused` int32 [batch] | `sample_rate` int64, `clip_seconds` float32, `segment_seconds` float32, `preset` string |

The log-mel features are computed inside the graph with
`mer_tfx.features.clip_to_log_mel_segments`, the same function the pipeline's
transform uses, so serving sees exactly the training features. Bad audio (no
samples, all silent, NaN/inf, a WAV at another sample rate) fails inside the
graph with `InvalidArgumentError`. Only core TensorFlow ops are used, so stock
TF Serving runs the graph.

`preset.json` and `label_info.json` are written to `<export_dir>/assets.extra/`,
which TF Serving ignores.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping, Union

import tensorflow as tf

from mer_tfx.contract import (
    ASSETS_EXTRA,
    LABEL_INFO_FILE,
    LOG_MEL,
    MODEL_INFO,
    PRESET_FILE,
    QUADRANT_BY_INDEX,
    SERVING_DEFAULT,
    SERVING_EXAMPLES,
    SERVING_WAV,
    SIGNATURES,
    WAV_CANONICAL_HEADER,
    WAV_CHANNELS_OFFSET,
    WAV_DATA_SIZE_OFFSET,
    WAV_HEADER_BYTES,
    WAV_PCM_SCALE,
    WAV_RATE_OFFSET,
    WAV_SAMPLE_WIDTH_BYTES,
)
from mer_tfx.errors import ParameterError
from mer_tfx.features import clip_to_log_mel_segments, loop_to_length
from mer_tfx.presets import Preset

__all__ = ["SIGNATURES", "ServingModule", "decode_wav_mono", "export_serving_model", "read_preset"]
# A clip whose largest absolute sample is at or below this is "silent"; 16-bit PCM's
# smallest step is 3e-5, so any audible signal is far above it.
_SILENCE_LEVEL = 1e-6


def _check_audio(waveform: tf.Tensor) -> tf.Tensor:
    """In-graph checks of float32 [batch, samples] audio; returns it with the checks attached."""
    samples = tf.shape(waveform)[-1]
    checks = [
        tf.debugging.assert_positive(
            samples, message="waveform must have at least one sample (received 0 samples)"
        ),
        tf.debugging.assert_equal(
            tf.reduce_all(tf.math.is_finite(waveform)),
            True,
            message="waveform contains NaN or infinite values",
        ),
        tf.debugging.assert_equal(
            tf.reduce_all(tf.reduce_max(tf.abs(waveform), axis=-1) > _SILENCE_LEVEL),
            True,
            message="waveform is silent (every sample is zero) in at least one clip",
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(waveform)


def decode_wav_mono(contents: tf.Tensor) -> tuple:
    """Scalar string WAV file contents -> (float32 [samples] in [-1, 1), int32 sample rate).

    Channels are averaged. A canonical 16-bit PCM file (44-byte header, the data
    chunk right after "fmt ") is read with `tf.io.decode_raw`, about 3x faster than
    `tf.audio.decode_wav` on a 30 s clip (whose per-sample loop then dominates the
    request); any other layout goes through `tf.audio.decode_wav`, which also
    raises `InvalidArgumentError` for what it cannot read. Same samples either way.
    """
    padded = tf.strings.join([tf.strings.substr(contents, 0, WAV_HEADER_BYTES),
                              tf.constant(b"\x00" * WAV_HEADER_BYTES)])
    header_ok = [tf.equal(tf.strings.substr(padded, offset, len(magic)), magic)
                 for offset, magic in WAV_CANONICAL_HEADER]
    channels = tf.io.decode_raw(tf.strings.substr(padded, WAV_CHANNELS_OFFSET, 2), tf.uint16)[0]
    channels = tf.cast(channels, tf.int32)
    canonical = tf.logical_and(tf.reduce_all(tf.stack(header_ok)), channels > 0)

    def fast():
        rate = tf.io.decode_raw(tf.strings.substr(padded, WAV_RATE_OFFSET, 4), tf.int32)[0]
        declared = tf.io.decode_raw(tf.strings.substr(padded, WAV_DATA_SIZE_OFFSET, 4), tf.int32)[0]
        available = tf.strings.length(contents) - WAV_HEADER_BYTES
        # A streamed file may declare 0 or 0xFFFFFFFF (-1 here): then read to the end.
        size = tf.where(declared > 0, tf.minimum(declared, available), available)
        frame = WAV_SAMPLE_WIDTH_BYTES * channels
        size = size // frame * frame
        pcm = tf.io.decode_raw(tf.strings.substr(contents, WAV_HEADER_BYTES, size), tf.int16)
        frames = tf.reshape(tf.cast(pcm, tf.float32) * (1.0 / WAV_PCM_SCALE), [-1, channels])
        return tf.reduce_mean(frames, axis=-1), rate

    def general():
        audio, rate = tf.audio.decode_wav(contents)
        return tf.reduce_mean(audio, axis=-1), rate

    return tf.cond(canonical, fast, general)


@dataclasses.dataclass(frozen=True)
class _Untracked:
    """The three Keras models, out of reach of TensorFlow's object tracking."""

    encoder: Any
    valence_head: Any
    arousal_head: Any


class ServingModule(tf.Module):
    """A tf.Module calling the frozen encoder and the two heads, with the serving functions.

    Its tracked state is the models' weights, one list per model in Keras `weights`
    order (`encoder_weights`, `valence_head_weights`, `arousal_head_weights`); the
    models themselves, and so their optimizers and metrics, are not saved.

    Args:
        encoder: Keras model, log-mel segments [n, frames, mels, 1] (or [n, frames, mels])
            -> embeddings [n, ...].
        valence_head: Keras model, [batch, num_segments, embedding_dim] -> softmax [batch, 2].
        arousal_head: same, for arousal.
        preset: the preset the models were trained with.
    """

    def __init__(self, *, encoder, valence_head, arousal_head, preset: Preset):
        super().__init__(name="mer_serving")
        # The models are called but not tracked: tracking a compiled Keras model saves
        # everything it references, its optimizer's slots included (twice the heads'
        # size with Adam). Their weights are tracked instead, as lists in each model's
        # `weights` order, so the SavedModel holds exactly the variables inference reads.
        self._models = _Untracked(encoder=encoder, valence_head=valence_head,
                                  arousal_head=arousal_head)
        self.encoder_weights = list(encoder.weights)
        self.valence_head_weights = list(valence_head.weights)
        self.arousal_head_weights = list(arousal_head.weights)
        self._features = preset.features
        self._preset_name = preset.name
        self._encoder_rank = len(encoder.inputs[0].shape) if getattr(encoder, "inputs", None) else 4

    def predict_log_mel(self, log_mel: tf.Tensor) -> tuple:
        """log_mel float32 [batch, segments, frames, mels] -> (P(valence high), P(arousal high)) [batch]."""
        f = self._features
        batch = tf.shape(log_mel)[0]
        flat = tf.reshape(log_mel, [-1, f.num_frames, f.n_mels])
        if self._encoder_rank == 4:
            flat = flat[..., tf.newaxis]
        models = self._models
        embedded = models.encoder(flat, training=False)
        embedded = tf.reshape(embedded, [batch, f.num_segments, -1])
        valence = models.valence_head(embedded, training=False)
        arousal = models.arousal_head(embedded, training=False)
        return tf.cast(valence[:, 1], tf.float32), tf.cast(arousal[:, 1], tf.float32)

    def _outputs(self, log_mel: tf.Tensor) -> dict:
        valence, arousal = self.predict_log_mel(log_mel)
        valence_label = tf.cast(valence > 0.5, tf.int64)
        arousal_label = tf.cast(arousal > 0.5, tf.int64)
        quadrant = tf.gather(tf.constant(QUADRANT_BY_INDEX), valence_label + 2 * arousal_label)
        return {
            "valence_probability": valence,
            "arousal_probability": arousal,
            "valence_label": valence_label,
            "arousal_label": arousal_label,
            "quadrant": quadrant,
        }

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="waveform")])
    def serve_waveform(self, waveform):
        waveform = _check_audio(waveform)
        return self._outputs(clip_to_log_mel_segments(waveform, self._features))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="wav_bytes")])
    def serve_wav(self, wav_bytes):
        f = self._features

        def decode_one(contents):
            mono, rate = decode_wav_mono(contents)
            check_rate = tf.debugging.assert_equal(
                rate,
                tf.constant(f.sample_rate, tf.int32),
                message=f"WAV sample rate differs from the model's {f.sample_rate} Hz",
            )
            with tf.control_dependencies([check_rate]):
                mono = tf.identity(mono)
            mono = _check_audio(mono[tf.newaxis, :])[0]
            return loop_to_length(mono, num_samples=f.clip_samples)

        clips = tf.map_fn(
            decode_one, wav_bytes, fn_output_signature=tf.TensorSpec([f.clip_samples], tf.float32)
        )
        return self._outputs(clip_to_log_mel_segments(clips, f))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(self, examples):
        f = self._features
        size = f.num_segments * f.num_frames * f.n_mels
        parsed = tf.io.parse_example(
            examples, {LOG_MEL: tf.io.FixedLenFeature([size], tf.float32)}
        )
        log_mel = tf.reshape(parsed[LOG_MEL], [-1, f.num_segments, f.num_frames, f.n_mels])
        valence, arousal = self.predict_log_mel(log_mel)
        return {"valence": valence, "arousal": arousal}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="unused")])
    def info(self, unused):
        f = self._features
        batch = tf.shape(unused)[:1]
        return {
            "sample_rate": tf.fill(batch, tf.constant(f.sample_rate, tf.int64)),
            "clip_seconds": tf.fill(batch, tf.constant(float(f.clip_seconds), tf.float32)),
            "segment_seconds": tf.fill(batch, tf.constant(float(f.segment_seconds), tf.float32)),
            "preset": tf.fill(batch, tf.constant(self._preset_name)),
        }

    def signatures(self) -> dict:
        """The four concrete functions keyed by signature name."""
        return {
            SERVING_DEFAULT: self.serve_waveform.get_concrete_function(),
            SERVING_WAV: self.serve_wav.get_concrete_function(),
            SERVING_EXAMPLES: self.serve_examples.get_concrete_function(),
            MODEL_INFO: self.info.get_concrete_function(),
        }


def export_serving_model(
    export_dir: Union[str, os.PathLike],
    *,
    encoder,
    valence_head,
    arousal_head,
    preset: Preset,
    label_info: Mapping[str, Any] | None = None,
) -> Path:
    """Writes the serving SavedModel with the four signatures of docs/architecture.md.

    Args:
        export_dir: folder to write (created; must not hold a SavedModel already).
        encoder: Keras encoder, log-mel segment [n, frames, mels, 1] -> embedding [n, ...].
        valence_head: Keras head, embeddings [batch, num_segments, D] -> softmax [batch, 2]
            (index 1 = high valence).
        arousal_head: same for arousal.
        preset: the preset used for training; its features are computed in the graph.
        label_info: optional JSON-serialisable description of the labels (e.g. the
            thresholds ExampleGen used), saved as `assets.extra/label_info.json`.

    Returns:
        The export folder.

    Raises:
        ParameterError: export_dir already holds a SavedModel, or a model is missing.
    """
    export_dir = Path(export_dir)
    if (export_dir / "saved_model.pb").exists():
        raise ParameterError(f"export_dir already holds a SavedModel. Received: export_dir={str(export_dir)!r}")
    for name, model in (("encoder", encoder), ("valence_head", valence_head), ("arousal_head", arousal_head)):
        if model is None:
            raise ParameterError(f"{name} is required. Received: {name}=None")
    module = ServingModule(
        encoder=encoder, valence_head=valence_head, arousal_head=arousal_head, preset=preset
    )
    export_dir.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(export_dir), signatures=module.signatures())
    extra = export_dir / ASSETS_EXTRA
    extra.mkdir(exist_ok=True)
    (extra / PRESET_FILE).write_text(json.dumps(preset.to_dict(), indent=2, sort_keys=True))
    (extra / LABEL_INFO_FILE).write_text(json.dumps(dict(label_info or {}), indent=2, sort_keys=True))
    return export_dir


def read_preset(export_dir: Union[str, os.PathLike]) -> Preset:
    """The preset saved beside a serving SavedModel (`assets.extra/preset.json`)."""
    path = Path(export_dir) / ASSETS_EXTRA / PRESET_FILE
    if not path.exists():
        raise ParameterError(f"No preset.json beside the SavedModel. Received: export_dir={str(export_dir)!r}")
    return Preset.from_dict(json.loads(path.read_text()))
