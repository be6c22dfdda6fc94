"""The serving SavedModel: raw audio in, valence/arousal/quadrant out.

One SavedModel (written with `tf.saved_model.save` of a `tf.Module` that calls the
Keras 3 encoder and the two heads and saves their weights only, no optimizer state)
carries four signatures, the contract of docs/architecture.md:

| signature | inputs | outputs |
|---|---|---|
| `serving_default` | `waveform` float32 [batch, samples] | `valence_probability`, `arousal_probability` float32 [batch]; `valence_label`, `arousal_label` int64 [batch]; `quadrant` string [batch] |
| `serving_wav` | `wav_bytes` string [batch] | same as `serving_default` |
| `serving_examples` | `examples` string [batch] (serialized tf.Example with `log_mel`) | `valence`, `arousal` float32 [batch] |
| `model_info` | `unused` int32 [batch] | `sample_rate` int64, `clip_seconds` float32, `segment_seconds` float32, `preset`, `training_data`, `gate` string |

The log-mel features are computed inside the graph with
`mer_tfx.features.clip_to_log_mel_segments`, the same function the pipeline's
transform uses, so serving sees exactly the training features. Bad audio (no
samples, all silent, NaN/inf, a WAV at another sample rate) fails inside the
graph with `InvalidArgumentError`. Only core TensorFlow ops are used, so stock
TF Serving runs the graph.

`<export_dir>/assets.extra/` holds `preset.json`, `label_info.json`,
`model_info.json` (the `model_info` answer, readable without TensorFlow),
`keras_models.json` (the three Keras models' configs, which `load_keras_models`
rebuilds them from, with the SavedModel's weights) and
`tf_serving_warmup_requests` (TF Serving replays these requests when it loads the
model, so the first client request does not pay for TensorFlow's lazy set-up).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import wave
from pathlib import Path
from typing import Any, Mapping, Union

import keras
import numpy as np
import tensorflow as tf

from mer_tfx.contract import (
    ASSETS_EXTRA,
    KERAS_MODELS_FILE,
    LABEL_INFO_FILE,
    LOG_MEL,
    MODEL_INFO,
    MODEL_INFO_FILE,
    MODEL_NAME,
    PRESET_FILE,
    QUADRANT_BY_INDEX,
    SERVING_DEFAULT,
    SERVING_EXAMPLES,
    SERVING_WAV,
    SIGNATURES,
    WARMUP_FILE,
    WAV_CANONICAL_HEADER,
    WAV_CHANNELS_OFFSET,
    WAV_DATA_SIZE_OFFSET,
    WAV_ENCODE_SCALE,
    WAV_HEADER_BYTES,
    WAV_PCM_SCALE,
    WAV_RATE_OFFSET,
    WAV_SAMPLE_WIDTH_BYTES,
    log_mel_example_schema,
)
from mer_tfx.errors import ParameterError
from mer_tfx.features import clip_to_log_mel_segments, loop_to_length
from mer_tfx.presets import Preset

__all__ = [
    "SIGNATURES",
    "ServingModule",
    "decode_wav_mono",
    "export_serving_model",
    "load_keras_models",
    "read_model_info",
    "read_preset",
    "write_warmup_requests",
]
# The models the SavedModel saves, by the name of their weight lists and configs.
MODELS = ("encoder", "valence_head", "arousal_head")
# What `model_info` says when the exporter does not tell.
UNKNOWN_TRAINING_DATA = "unknown"
NO_GATE = "none"
# The warm-up requests' clip: long enough to hold a sound, short enough to keep the file
# small (the graph loops any clip to the preset's length, so the work is a full request's).
WARMUP_SECONDS = 1.0
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
        training_data: what the models were trained on, for `model_info`.
        gate: the evaluation gate the model had to pass to be pushed, for `model_info`.
    """

    def __init__(self, *, encoder, valence_head, arousal_head, preset: Preset,
                 training_data: str = UNKNOWN_TRAINING_DATA, gate: str = NO_GATE):
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
        self._training_data = str(training_data)
        self._gate = str(gate)
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
        parsed = tf.io.parse_example(
            examples, {k: tf.io.FixedLenFeature(*v) for k, v in log_mel_example_schema(f).items()}
        )
        log_mel = tf.reshape(parsed[LOG_MEL], [-1, f.num_segments, f.num_frames, f.n_mels])
        valence, arousal = self.predict_log_mel(log_mel)
        return {"valence": valence, "arousal": arousal}

    def info_values(self) -> dict:
        """The `model_info` answer for one row, as JSON-ready Python values."""
        f = self._features
        return {
            "sample_rate": int(f.sample_rate),
            "clip_seconds": float(f.clip_seconds),
            "segment_seconds": float(f.segment_seconds),
            "preset": self._preset_name,
            "training_data": self._training_data,
            "gate": self._gate,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="unused")])
    def info(self, unused):
        batch = tf.shape(unused)[:1]
        dtypes = {"sample_rate": tf.int64, "clip_seconds": tf.float32,
                  "segment_seconds": tf.float32}
        return {
            key: tf.fill(batch, tf.constant(value, dtypes.get(key, tf.string)))
            for key, value in self.info_values().items()
        }

    def signatures(self) -> dict:
        """The four concrete functions keyed by signature name."""
        return {
            SERVING_DEFAULT: self.serve_waveform.get_concrete_function(),
            SERVING_WAV: self.serve_wav.get_concrete_function(),
            SERVING_EXAMPLES: self.serve_examples.get_concrete_function(),
            MODEL_INFO: self.info.get_concrete_function(),
        }


def _warmup_logs(sample_rate: int) -> list:
    """PredictionLog records: one `serving_default`, one `serving_wav`, one `model_info` request.

    The audio is a 440 Hz tone of `WARMUP_SECONDS` at the model's rate, a float32
    waveform and the same as a canonical 16-bit PCM WAV file.
    """
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    t = np.arange(int(WARMUP_SECONDS * sample_rate)) / sample_rate
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    pcm = np.clip(np.rint(tone * WAV_ENCODE_SCALE), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:  # the canonical 44-byte header
        writer.setnchannels(1)
        writer.setsampwidth(WAV_SAMPLE_WIDTH_BYTES)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm.tobytes())
    wav = buffer.getvalue()
    requests = (
        (SERVING_DEFAULT, {"waveform": tone[np.newaxis, :]}),
        (SERVING_WAV, {"wav_bytes": np.array([wav], dtype=object)}),
        (MODEL_INFO, {"unused": np.zeros([1], np.int32)}),
    )
    logs = []
    for signature, inputs in requests:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=MODEL_NAME, signature_name=signature)
        )
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)
        ))
    return logs


def write_warmup_requests(path: Union[str, os.PathLike], *, sample_rate: int) -> Path:
    """Writes TF Serving's warm-up file (a TFRecord file of PredictionLog records).

    TF Serving replays `<model>/assets.extra/tf_serving_warmup_requests` when it loads
    a model (its SavedModel warm-up), so the first client request does not pay for
    TensorFlow's lazy initialisation. One request per signature a client uses:
    `serving_default` (a waveform), `serving_wav` (WAV bytes) and `model_info`.

    Args:
        path: the file to write.
        sample_rate: the model's sample rate (Hz) for the requests' audio.

    Returns:
        The file written.
    """
    path = Path(path)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in _warmup_logs(int(sample_rate)):
            writer.write(log.SerializeToString())
    return path


def export_serving_model(
    export_dir: Union[str, os.PathLike],
    *,
    encoder,
    valence_head,
    arousal_head,
    preset: Preset,
    label_info: Mapping[str, Any] | None = None,
    training_data: str = UNKNOWN_TRAINING_DATA,
    gate: str = NO_GATE,
) -> Path:
    """Writes the serving SavedModel with the four signatures of docs/architecture.md.

    Only the models' weights are saved (no optimizer state), and beside them, in
    `assets.extra/`, the preset, the label information, the `model_info` answer as
    JSON, the models' Keras configs (`load_keras_models`) and TF Serving's warm-up
    requests.

    Args:
        export_dir: folder to write (created; must not hold a SavedModel already).
        encoder: Keras encoder, log-mel segment [n, frames, mels, 1] -> embedding [n, ...].
        valence_head: Keras head, embeddings [batch, num_segments, D] -> softmax [batch, 2]
            (index 1 = high valence).
        arousal_head: same for arousal.
        preset: the preset used for training; its features are computed in the graph.
        label_info: optional JSON-serialisable description of the labels (e.g. the
            thresholds ExampleGen used), saved as `assets.extra/label_info.json`.
        training_data: what the models were trained on, e.g.
            "4Q (Panda et al. 2018), 607 training songs"; `model_info`'s
            `training_data`. Defaults to "unknown".
        gate: the evaluation gate the model must pass to be pushed, as text;
            `model_info`'s `gate`. Defaults to "none".

    Returns:
        The export folder.

    Raises:
        ParameterError: export_dir already holds a SavedModel, or a model is missing.
    """
    export_dir = Path(export_dir)
    if (export_dir / "saved_model.pb").exists():
        raise ParameterError(f"export_dir already holds a SavedModel. Received: export_dir={str(export_dir)!r}")
    models = {"encoder": encoder, "valence_head": valence_head, "arousal_head": arousal_head}
    for name, model in models.items():
        if model is None:
            raise ParameterError(f"{name} is required. Received: {name}=None")
    module = ServingModule(**models, preset=preset, training_data=training_data, gate=gate)
    export_dir.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(export_dir), signatures=module.signatures())
    extra = export_dir / ASSETS_EXTRA
    extra.mkdir(exist_ok=True)
    (extra / PRESET_FILE).write_text(json.dumps(preset.to_dict(), indent=2, sort_keys=True))
    (extra / LABEL_INFO_FILE).write_text(json.dumps(dict(label_info or {}), indent=2, sort_keys=True))
    (extra / MODEL_INFO_FILE).write_text(json.dumps(module.info_values(), indent=2, sort_keys=True))
    configs = {name: keras.saving.serialize_keras_object(model) for name, model in models.items()}
    (extra / KERAS_MODELS_FILE).write_text(json.dumps(configs, indent=1, sort_keys=True))
    write_warmup_requests(extra / WARMUP_FILE, sample_rate=preset.features.sample_rate)
    return export_dir


def load_keras_models(export_dir: Union[str, os.PathLike]) -> tuple:
    """The exported encoder and heads as Keras models, for embeddings and fine-tuning.

    Each model is rebuilt from its Keras config (`assets.extra/keras_models.json`, so
    the Tuner's hyperparameters, the heads' standardisation and pooling and averaged
    seeds come back as trained) and its weights are read from the SavedModel's
    variables. The models are not compiled.

    Args:
        export_dir: a folder written by `export_serving_model`.

    Returns:
        (encoder, valence_head, arousal_head): the encoder maps log-mel segments
        float32 [n, frames, mels, 1] to embeddings, each head maps
        [batch, segments, D] embeddings to softmax [batch, 2] (index 1 = high).

    Raises:
        ParameterError: the folder has no `keras_models.json` (an export from before
            it was written), or its variables do not fit the rebuilt models.
    """
    import mer_tfx.models  # noqa: F401  (registers the project's layers for deserialising)

    export_dir = Path(export_dir)
    path = export_dir / ASSETS_EXTRA / KERAS_MODELS_FILE
    if not path.exists():
        raise ParameterError(
            f"No {KERAS_MODELS_FILE} beside the SavedModel. Received: export_dir={str(export_dir)!r}"
        )
    configs = json.loads(path.read_text())
    models = {name: keras.saving.deserialize_keras_object(configs[name]) for name in MODELS}
    # The SavedModel's checkpoint holds ServingModule's weight lists under these names.
    checkpoint = tf.train.Checkpoint(
        **{f"{name}_weights": list(model.weights) for name, model in models.items()}
    )
    try:
        checkpoint.read(str(export_dir / "variables" / "variables")).assert_consumed()
    except (AssertionError, ValueError) as error:
        raise ParameterError(
            f"The SavedModel's variables do not fit the models of {KERAS_MODELS_FILE}. "
            f"Received: export_dir={str(export_dir)!r} ({error})"
        ) from error
    return tuple(models[name] for name in MODELS)


def read_model_info(export_dir: Union[str, os.PathLike]) -> dict:
    """The `model_info` answer saved beside a serving SavedModel (`assets.extra/model_info.json`)."""
    path = Path(export_dir) / ASSETS_EXTRA / MODEL_INFO_FILE
    if not path.exists():
        raise ParameterError(f"No {MODEL_INFO_FILE} beside the SavedModel. Received: export_dir={str(export_dir)!r}")
    return json.loads(path.read_text())


def read_preset(export_dir: Union[str, os.PathLike]) -> Preset:
    """The preset saved beside a serving SavedModel (`assets.extra/preset.json`)."""
    path = Path(export_dir) / ASSETS_EXTRA / PRESET_FILE
    if not path.exists():
        raise ParameterError(f"No preset.json beside the SavedModel. Received: export_dir={str(export_dir)!r}")
    return Preset.from_dict(json.loads(path.read_text()))
