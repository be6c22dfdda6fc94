"""Tests of the serving SavedModel (mer_tfx.export) on a tiny untrained model."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import wave

import keras
import numpy as np
import pytest
import tensorflow as tf

from mer_tfx import export, presets
from mer_tfx.errors import ParameterError
from mer_tfx.features import clip_to_log_mel_segments

PRESET = presets.get("small")
RATE = PRESET.features.sample_rate
TRAINING_DATA = "synthetic test tones, 0 training songs"
GATE = "accuracy >= 0.6 and F1 >= 0.6"


def _tiny_models(seed: int = 0):
    """Encoder [n, 216, 128, 1] -> [n, 27, 16, 2] and two heads [b, 6, 864] -> softmax [b, 2]."""
    keras.utils.set_random_seed(seed)
    f = PRESET.features
    inp = keras.Input((f.num_frames, f.n_mels, 1))
    enc = keras.Model(inp, keras.layers.Conv2D(2, 8, strides=8, padding="same")(inp))
    dim = 27 * 16 * 2

    def head():
        x = keras.Input((f.num_segments, dim))
        y = keras.layers.GlobalAveragePooling1D()(x)
        return keras.Model(x, keras.layers.Dense(2, activation="softmax")(y))

    return enc, head(), head()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "model"
    encoder, valence, arousal = _tiny_models()
    export.export_serving_model(
        path,
        encoder=encoder,
        valence_head=valence,
        arousal_head=arousal,
        preset=PRESET,
        label_info={"source": "test"},
        training_data=TRAINING_DATA,
        gate=GATE,
    )
    return path, tf.saved_model.load(str(path))


def _tone(seconds: float, freq: float = 440.0, batch: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    rows = [0.5 * np.sin(2 * np.pi * (freq + 110 * i) * t) for i in range(batch)]
    return np.stack(rows).astype(np.float32)


def _wav_bytes(waveform: np.ndarray, rate: int = RATE, channels: int = 1) -> bytes:
    pcm = np.clip(np.round(waveform * 32767), -32768, 32767).astype("<i2")
    if channels > 1:
        pcm = np.repeat(pcm[:, None], channels, axis=1)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def test_signatures_and_assets(exported):
    path, loaded = exported
    assert set(loaded.signatures) == set(export.SIGNATURES)
    preset = export.read_preset(path)
    assert preset == PRESET
    info = json.loads((path / "assets.extra" / "label_info.json").read_text())
    assert info == {"source": "test"}


@pytest.mark.parametrize("seconds", [5.0, 40.0])
def test_waveform_signature_outputs(exported, seconds):
    _, loaded = exported
    out = loaded.signatures["serving_default"](waveform=tf.constant(_tone(seconds, batch=2)))
    assert set(out) == {
        "valence_probability", "arousal_probability", "valence_label", "arousal_label", "quadrant"
    }
    for key in ("valence_probability", "arousal_probability"):
        assert out[key].dtype == tf.float32 and out[key].shape == (2,)
        assert np.all((out[key].numpy() >= 0) & (out[key].numpy() <= 1))
    for key in ("valence_label", "arousal_label"):
        assert out[key].dtype == tf.int64 and out[key].shape == (2,)
        np.testing.assert_array_equal(
            out[key].numpy(), (out[key.replace("label", "probability")].numpy() > 0.5).astype(int)
        )
    expected = {(1, 1): b"Q1", (0, 1): b"Q2", (0, 0): b"Q3", (1, 0): b"Q4"}
    for v, a, q in zip(out["valence_label"].numpy(), out["arousal_label"].numpy(), out["quadrant"].numpy(), strict=True):
        assert expected[(int(v), int(a))] == q


def test_model_info(exported):
    _, loaded = exported
    out = loaded.signatures["model_info"](unused=tf.constant([0, 0, 0], tf.int32))
    np.testing.assert_array_equal(out["sample_rate"].numpy(), [RATE] * 3)
    assert out["sample_rate"].dtype == tf.int64
    np.testing.assert_allclose(out["clip_seconds"].numpy(), [30.0] * 3)
    np.testing.assert_allclose(out["segment_seconds"].numpy(), [PRESET.features.segment_seconds] * 3)
    assert list(out["preset"].numpy()) == [b"small"] * 3
    assert list(out["training_data"].numpy()) == [TRAINING_DATA.encode()] * 3
    assert list(out["gate"].numpy()) == [GATE.encode()] * 3


def test_model_info_json_is_the_signatures_answer(exported):
    """`assets.extra/model_info.json` says what `model_info` says, without TensorFlow."""
    path, loaded = exported
    out = loaded.signatures["model_info"](unused=tf.constant([0], tf.int32))
    saved = export.read_model_info(path)
    assert set(saved) == set(out)
    for key, value in out.items():
        row = value.numpy()[0]
        assert saved[key] == (row.decode() if isinstance(row, bytes) else pytest.approx(row))


def test_model_info_defaults_say_unknown_and_none():
    encoder, valence, arousal = _tiny_models()
    info = export.ServingModule(encoder=encoder, valence_head=valence, arousal_head=arousal,
                                preset=PRESET).info_values()
    assert (info["training_data"], info["gate"]) == ("unknown", "none")


def test_warmup_requests_replay_through_their_signatures(exported):
    """TF Serving's warm-up file: PredictionLog records whose requests the model answers."""
    from tensorflow_serving.apis import prediction_log_pb2

    path, loaded = exported
    records = list(tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests")))
    expected_keys = {
        "serving_default": {"valence_probability", "arousal_probability", "valence_label",
                            "arousal_label", "quadrant"},
        "serving_wav": {"valence_probability", "arousal_probability", "valence_label",
                        "arousal_label", "quadrant"},
        "model_info": {"sample_rate", "clip_seconds", "segment_seconds", "preset",
                       "training_data", "gate"},
    }
    answered = []
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        request = log.predict_log.request
        assert request.model_spec.name == "mer"
        signature = request.model_spec.signature_name
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        out = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        assert set(out) == expected_keys[signature]
        answered.append(signature)
    assert sorted(answered) == sorted(expected_keys)


def test_examples_signature_agrees_with_waveform(exported):
    _, loaded = exported
    audio = _tone(7.0, batch=2)
    by_wave = loaded.signatures["serving_default"](waveform=tf.constant(audio))
    log_mel = clip_to_log_mel_segments(tf.constant(audio), PRESET.features).numpy()
    serialized = [
        tf.train.Example(
            features=tf.train.Features(
                feature={"log_mel": tf.train.Feature(float_list=tf.train.FloatList(value=row.ravel()))}
            )
        ).SerializeToString()
        for row in log_mel
    ]
    by_example = loaded.signatures["serving_examples"](examples=tf.constant(serialized))
    assert by_example["valence"].shape == (2,) and by_example["valence"].dtype == tf.float32
    # Same graph on the same float32 features: only op-ordering rounding can differ.
    np.testing.assert_allclose(by_example["valence"], by_wave["valence_probability"], atol=1e-5)
    np.testing.assert_allclose(by_example["arousal"], by_wave["arousal_probability"], atol=1e-5)


def test_wav_signature_agrees_with_waveform(exported):
    _, loaded = exported
    audio = _tone(3.0, batch=2)
    quantised = np.round(audio * 32767) / 32768  # what decode_wav gives back for 16-bit PCM
    by_wave = loaded.signatures["serving_default"](waveform=tf.constant(quantised.astype(np.float32)))
    wavs = [_wav_bytes(audio[0]), _wav_bytes(audio[1], channels=2)]  # mono and stereo
    by_wav = loaded.signatures["serving_wav"](wav_bytes=tf.constant(wavs))
    # Identical samples after decoding; tolerance covers float reduction order only.
    np.testing.assert_allclose(by_wav["valence_probability"], by_wave["valence_probability"], atol=1e-5)
    np.testing.assert_array_equal(by_wav["quadrant"].numpy(), by_wave["quadrant"].numpy())


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((1, 0), np.float32),
        np.zeros((1, RATE), np.float32),
        np.array([[0.1, np.nan, 0.2] * 100], np.float32),
        np.array([[0.1, np.inf, 0.2] * 100], np.float32),
    ],
    ids=["empty", "silent", "nan", "inf"],
)
def test_bad_waveform_raises_invalid_argument(exported, bad):
    _, loaded = exported
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["serving_default"](waveform=tf.constant(bad))


def test_bad_wav_raises_invalid_argument(exported):
    _, loaded = exported
    fn = loaded.signatures["serving_wav"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample rate"):
        fn(wav_bytes=tf.constant([_wav_bytes(_tone(1.0)[0], rate=16000)]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(wav_bytes=tf.constant([_wav_bytes(np.zeros(RATE, np.float32))]))
    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(wav_bytes=tf.constant([b"not a wav file"]))


def test_refuses_to_overwrite(exported):
    path, _ = exported
    encoder, valence, arousal = _tiny_models()
    with pytest.raises(ParameterError, match="already holds"):
        export.export_serving_model(
            path, encoder=encoder, valence_head=valence, arousal_head=arousal, preset=PRESET
        )


_OP_CHECK = r"""
import json
import sys
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry
sm = saved_model_pb2.SavedModel()
sm.ParseFromString(open(sys.argv[1], "rb").read())
ops = set()
for mg in sm.meta_graphs:
    ops.update(n.op for n in mg.graph_def.node)
    for fn in mg.graph_def.library.function:
        ops.update(n.op for n in fn.node_def)
assert "tensorflow_io" not in sys.modules
missing = sorted(op for op in ops if op_def_registry.get(op) is None)
print(json.dumps({"ops": sorted(ops), "missing": missing}))
"""


def test_saved_graph_uses_only_core_tf_ops(exported):
    """Stock TF Serving has no tensorflow-io kernels: every op must be core TF."""
    path, _ = exported
    result = subprocess.run(
        [sys.executable, "-c", _OP_CHECK, str(path / "saved_model.pb")],
        capture_output=True, text=True, timeout=120, check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # The graph really was read: the feature, parsing and WAV ops are all there.
    assert {"RFFT", "ParseExampleV2", "DecodeWav", "Conv2D"} <= set(report["ops"])
    assert report["missing"] == [], f"ops not in core TensorFlow: {report['missing']}"


def _with_list_chunk(wav: bytes) -> bytes:
    """The same file with a LIST chunk between "fmt " and "data" (not the canonical layout)."""
    chunk = b"LIST" + (12).to_bytes(4, "little") + b"INFOISFT\x00\x00\x00\x00"
    body = wav[12:36] + chunk + wav[36:]
    return b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WAVE" + body


@pytest.mark.parametrize("channels", [1, 2])
def test_decode_wav_mono_matches_tf_decode_wav(channels):
    rng = np.random.default_rng(0)
    audio = rng.uniform(-1, 1, 5000).astype(np.float32)
    canonical = _wav_bytes(audio, rate=16000, channels=channels)
    reference, ref_rate = tf.audio.decode_wav(canonical)
    for data in (canonical, _with_list_chunk(canonical)):  # fast path, general path
        mono, rate = export.decode_wav_mono(tf.constant(data))
        assert int(rate) == int(ref_rate) == 16000
        np.testing.assert_array_equal(mono.numpy(), tf.reduce_mean(reference, axis=-1).numpy())


def test_decode_wav_mono_reads_what_a_streamed_or_cut_file_holds():
    audio = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    wav = _wav_bytes(audio)
    expected = np.round(audio * 32767) / 32768
    streamed = wav[:40] + b"\xff\xff\xff\xff" + wav[44:]  # data size unknown when written
    mono, _ = export.decode_wav_mono(tf.constant(streamed))
    np.testing.assert_allclose(mono.numpy(), expected, atol=1e-7)
    cut = wav[:-101]  # 50 whole samples and half of one missing: the half is dropped
    mono, _ = export.decode_wav_mono(tf.constant(cut))
    np.testing.assert_allclose(mono.numpy(), expected[:949], atol=1e-7)


@pytest.mark.parametrize("data", [b"", b"RIFF", b"not a wav file at all" * 3])
def test_decode_wav_mono_rejects_what_is_not_a_wav(data):
    with pytest.raises(tf.errors.InvalidArgumentError):
        export.decode_wav_mono(tf.constant(data))


@pytest.mark.parametrize("pool", ["none", "meanstd"])
def test_export_keeps_the_heads_standardisation(tmp_path, pool):
    """A `SequenceHead(normalize=True)`'s adapted mean and variance are variables of the
    SavedModel, and the served probabilities are the Keras model's (with or without
    the head's pooling over the encoder map's 27 frames)."""
    from mer_tfx.models import SequenceHead

    encoder, _, _ = _tiny_models(seed=1)
    f = PRESET.features
    log_mel = clip_to_log_mel_segments(tf.constant(_tone(30.0, batch=3)), f)
    embeddings = encoder.predict(tf.reshape(log_mel, (-1, f.num_frames, f.n_mels, 1)), verbose=0)
    embeddings = embeddings.reshape(3, f.num_segments, -1)
    heads = []
    for seed in (2, 3):
        keras.utils.set_random_seed(seed)
        head = SequenceHead(embedding_dim=embeddings.shape[-1], num_segments=f.num_segments,
                            rnn_units=4, normalize=True, pool=pool, pool_frames=27)
        head.adapt(embeddings * (1.0 + seed))  # distinct statistics per head
        heads.append(head)
    path = tmp_path / "model"
    export.export_serving_model(path, encoder=encoder, valence_head=heads[0],
                                arousal_head=heads[1], preset=PRESET)
    loaded = tf.saved_model.load(str(path))
    reader = tf.train.load_checkpoint(str(path / "variables" / "variables"))
    saved = [reader.get_tensor(key) for key in reader.get_variable_to_shape_map()]
    for head in heads:
        mean = head.get_layer("normalization").adapt_mean.numpy()
        assert any(np.shape(value) == mean.shape and np.array_equal(value, mean)
                   for value in saved)
    out = loaded.signatures["serving_default"](waveform=tf.constant(_tone(30.0, batch=3)))
    for key, head in (("valence_probability", heads[0]), ("arousal_probability", heads[1])):
        expected = head.predict(embeddings, verbose=0)[:, 1]
        np.testing.assert_allclose(out[key].numpy(), expected, rtol=0, atol=1e-5)


def test_export_serves_the_average_of_several_seeds_heads(tmp_path):
    """`TrainingConfig.head_seeds` heads averaged (`recipe.average_heads`) export as one
    model per target, and the served probabilities are the heads' mean."""
    from mer_tfx import recipe
    from mer_tfx.models import SequenceHead

    encoder, _, _ = _tiny_models(seed=1)
    f = PRESET.features
    log_mel = clip_to_log_mel_segments(tf.constant(_tone(30.0, batch=2)), f)
    embeddings = encoder.predict(tf.reshape(log_mel, (-1, f.num_frames, f.n_mels, 1)), verbose=0)
    embeddings = embeddings.reshape(2, f.num_segments, -1)
    members = []
    for seed in (4, 5, 6):
        keras.utils.set_random_seed(seed)
        members.append(SequenceHead(embedding_dim=embeddings.shape[-1], num_segments=None,
                                    rnn_units=4))
    averaged = recipe.average_heads(members, name="valence_heads")
    path = tmp_path / "model"
    export.export_serving_model(path, encoder=encoder, valence_head=averaged,
                                arousal_head=members[0], preset=PRESET)
    out = tf.saved_model.load(str(path)).signatures["serving_default"](
        waveform=tf.constant(_tone(30.0, batch=2)))
    expected = np.mean([m.predict(embeddings, verbose=0)[:, 1] for m in members], axis=0)
    np.testing.assert_allclose(out["valence_probability"].numpy(), expected, rtol=0, atol=1e-5)


def test_export_of_trained_models_holds_weights_only(tmp_path):
    """Compiled, fitted models export without their optimizer: the checkpoint holds each
    model's weights and nothing else, and serves the Keras models' probabilities."""
    from mer_tfx import training

    encoder, _, _ = _tiny_models(seed=1)
    f = PRESET.features
    audio = _tone(30.0, batch=4)
    log_mel = clip_to_log_mel_segments(tf.constant(audio), f)
    segments = tf.reshape(log_mel, (-1, f.num_frames, f.n_mels, 1))
    encoder.compile(optimizer="adam", loss="mse")
    encoder.fit(segments, encoder.predict(segments, verbose=0), epochs=1, verbose=0)
    embeddings = encoder.predict(segments, verbose=0).reshape(4, f.num_segments, -1)
    heads = []
    for seed in (2, 3):
        keras.utils.set_random_seed(seed)
        head = training.build_head(PRESET, train_embeddings=embeddings, rnn_units=4)
        training._compile_classifier(head, 1e-3)
        head.fit(embeddings, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
        assert head.optimizer.variables  # the state the export must leave out
        heads.append(head)
    path = tmp_path / "model"
    export.export_serving_model(path, encoder=encoder, valence_head=heads[0],
                                arousal_head=heads[1], preset=PRESET)
    names = [name for name, _ in tf.train.list_variables(str(path / "variables" / "variables"))
             if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert not [name for name in names if "optimizer" in name]
    assert len(names) == len(encoder.weights) + len(heads[0].weights) + len(heads[1].weights)
    out = tf.saved_model.load(str(path)).signatures["serving_default"](waveform=tf.constant(audio))
    for key, head in (("valence_probability", heads[0]), ("arousal_probability", heads[1])):
        expected = head.predict(embeddings, verbose=0)[:, 1]
        # Same weights, same float32 maths: only op-ordering rounding can differ.
        np.testing.assert_allclose(out[key].numpy(), expected, rtol=0, atol=1e-5)


def test_load_keras_models_serves_the_same_probabilities(tmp_path):
    """The exported encoder and heads come back as Keras models (a standardised, pooled
    head; three averaged heads) that answer as the SavedModel does on the same log-mels."""
    from mer_tfx import recipe
    from mer_tfx.models import ConvAutoencoder, SequenceHead

    keras.utils.set_random_seed(7)
    f = PRESET.features
    encoder = ConvAutoencoder.from_preset(PRESET).encoder
    log_mel = clip_to_log_mel_segments(tf.constant(_tone(30.0, batch=3)), f).numpy()
    embeddings = encoder(log_mel.reshape(-1, f.num_frames, f.n_mels, 1)).numpy()
    embeddings = embeddings.reshape(3, f.num_segments, -1)
    valence = SequenceHead(embedding_dim=embeddings.shape[-1], num_segments=None, rnn_units=4,
                           normalize=True, pool="meanstd", pool_frames=27)
    valence.adapt(embeddings)
    arousal = recipe.average_heads(
        [SequenceHead(embedding_dim=embeddings.shape[-1], num_segments=None, rnn_units=3)
         for _ in range(3)], name="arousal_heads")
    path = tmp_path / "model"
    export.export_serving_model(path, encoder=encoder, valence_head=valence,
                                arousal_head=arousal, preset=PRESET)
    del encoder, valence, arousal  # nothing below may read the originals
    keras.backend.clear_session()
    rebuilt_encoder, rebuilt_valence, rebuilt_arousal = export.load_keras_models(path)
    serialized = [
        tf.train.Example(features=tf.train.Features(feature={
            "log_mel": tf.train.Feature(float_list=tf.train.FloatList(value=row.ravel()))
        })).SerializeToString()
        for row in log_mel
    ]
    served = tf.saved_model.load(str(path)).signatures["serving_examples"](
        examples=tf.constant(serialized))
    rebuilt = rebuilt_encoder(log_mel.reshape(-1, f.num_frames, f.n_mels, 1)).numpy()
    rebuilt = rebuilt.reshape(3, f.num_segments, -1)
    # Same weights, same float32 maths: only op-ordering rounding can differ.
    np.testing.assert_allclose(rebuilt_valence(rebuilt).numpy()[:, 1],
                               served["valence"].numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(rebuilt_arousal(rebuilt).numpy()[:, 1],
                               served["arousal"].numpy(), rtol=0, atol=1e-5)
    # A fresh model of the same configs (other weights) answers differently: the
    # weights really were read.
    fresh = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(rebuilt_valence))
    assert not np.allclose(fresh(rebuilt).numpy()[:, 1], served["valence"].numpy(), atol=1e-5)


def test_load_keras_models_needs_the_configs(exported, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(exported[0], copy)
    (copy / "assets.extra" / "keras_models.json").unlink()
    with pytest.raises(ParameterError, match="keras_models.json"):
        export.load_keras_models(copy)
