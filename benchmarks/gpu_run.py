"""The paper-size model on one GPU with the JAX backend: epoch times, then 10-fold accuracy.

One call, about 5 minutes on one GPU, run from the checkout without installing
the package (the GPU machine has Python 3.12, JAX and CUDA but no TensorFlow):

1. log-mel features of every clip, computed on the GPU by the plugin's own
   `Segmenter` and `LogMelSpectrogram` layers, checked against librosa;
2. the paper-size autoencoder (preset 4q-5s: 128/64/32 filters, Table 2) timed
   per epoch in float32 (JAX's default matmul precision, which lets XLA use
   TF32 on the GPU, and "highest", true float32) and in mixed precision
   (`mixed_bfloat16`), each beside the time its FLOP count predicts;
3. the two-stage model at paper size (autoencoder, then the BiLSTM-512 head on
   the frozen encoder's embeddings), 10 folds, 5 s segments, mean-filled
   masks: accuracy and F1 for valence and arousal with the majority baseline.

Only `mer_tfx.layers`, `mer_tfx.models`, `mer_tfx.presets` and
`mer_tfx.features` are imported: none of them imports TensorFlow.

Steps:

    # here, where librosa and the data are: the clips re-encoded compactly (Opus
    # at 24 kHz, about 32 kbit/s), their labels and the mel filterbank constant
    .venv/bin/python benchmarks/gpu_run.py --prepare gpu_data/4q.npz

    # there (the wheels below in .whl/, carried with gpu_data/):
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:. python3 benchmarks/gpu_run.py --data gpu_data/4q.npz

    # on the CPU, tiny synthetic data (the test suite runs this)
    KERAS_BACKEND=jax python benchmarks/gpu_run.py --smoke

Wheels it needs on the GPU machine (Python 3.12, manylinux x86_64; its image
already has jax, numpy, scipy, scikit-learn, h5py, rich, ml-dtypes, absl-py,
packaging): keras==3.12.4, namex, optree (Keras's dependencies missing there),
soundfile, cffi, pycparser (soundfile bundles libsndfile, which decodes Opus).
librosa is not needed there (`mer_tfx.features` builds the filterbank in NumPy). Keras 3.12.4 is
the version pinned here; it has not been tried with that image's jax 0.11: if it
does not import there, carry the newest keras wheel instead.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mer_tfx import features as feature_maths  # noqa: E402
from mer_tfx import presets  # noqa: E402
from mer_tfx.layers import FrequencyMasking, LogMelSpectrogram, Segmenter, TimeMasking  # noqa: E402
from mer_tfx.models import ConvAutoencoder, SequenceHead  # noqa: E402

PRESET = "4q-5s"
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
# (valence high, arousal high) of each quadrant (Russell): Q1 +V+A, Q2 -V+A, Q3 -V-A, Q4 +V-A.
BINARY = {"Q1": (1, 1), "Q2": (0, 1), "Q3": (0, 0), "Q4": (1, 0)}
# Opus encodes 8, 12, 16, 24 or 48 kHz; 24 kHz keeps everything below 12 kHz, above the
# preset's 11.025 kHz Nyquist frequency. The GPU side resamples it to 22.05 kHz.
OPUS_RATE = 24000
# libsndfile's Opus compression level: 0.9 gives about 32 kbit/s (120 KB per 30 s clip).
OPUS_LEVEL = 0.9
# The paper's Table 4: 18 s per autoencoder epoch on a GTX 1080 for 4Q at 5 s, 900 clips.
PAPER_EPOCH_SECONDS, PAPER_CLIPS = 18.0, 900
# Dense peak throughput of one H200 (SXM) in TFLOP/s, from NVIDIA's data sheet.
H200_PEAK_TFLOPS = {"float32": 67.0, "tf32": 495.0, "bfloat16": 989.0}


def say(*parts) -> None:
    print(*parts, flush=True)


# --------------------------------------------------------------------------- data


def encode_clip(waveform: np.ndarray) -> bytes:
    """float32 mono at OPUS_RATE -> Ogg Opus bytes."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, waveform, OPUS_RATE, format="OGG", subtype="OPUS",
             compression_level=OPUS_LEVEL)
    return buffer.getvalue()


def decode_clip(data: bytes, sample_rate: int) -> np.ndarray:
    """Ogg Opus bytes -> float32 mono at `sample_rate` (polyphase resampling)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    waveform, rate = sf.read(io.BytesIO(data), dtype="float32")
    gcd = math.gcd(sample_rate, rate)
    return resample_poly(waveform, sample_rate // gcd, rate // gcd).astype(np.float32)


def pack(path: Path, *, clips, quadrants, names, reference=None) -> int:
    """Writes the .npz the GPU run reads; returns its size in bytes."""
    blob = b"".join(clips)
    offsets = np.cumsum([0] + [len(c) for c in clips]).astype(np.int64)
    arrays = {
        "opus": np.frombuffer(blob, dtype=np.uint8),
        "offsets": offsets,
        "quadrants": np.array(quadrants),
        "names": np.array(names),
    }
    if reference is not None:
        arrays["reference_log_mel"] = reference
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path.stat().st_size


def librosa_log_mel(waveform: np.ndarray, features) -> np.ndarray:
    """[segments, frames, mels] of one clip, computed by librosa (the reference)."""
    import librosa

    clip = np.tile(waveform, -(-features.clip_samples // len(waveform)))[: features.clip_samples]
    out = []
    for segment in clip.reshape(features.num_segments, features.segment_samples):
        mel = librosa.feature.melspectrogram(
            y=segment, sr=features.sample_rate, n_fft=features.n_fft,
            hop_length=features.hop_length, n_mels=features.n_mels)
        out.append(np.log10(mel + 1).T)
    return np.stack(out).astype(np.float32)


def prepare(out: Path, *, data_dir: Path, max_mib: float) -> None:
    """Encodes the 4Q clips of `data_dir` into `out` (as many as fit in `max_mib`)."""
    import librosa

    features = presets.get(PRESET).features
    files = {q: sorted((data_dir / q).glob("*.mp3")) for q in QUADRANTS}
    say(f"prepare: {sum(map(len, files.values()))} clips under {data_dir}")
    # Round-robin over the quadrants, so a budget cut keeps the classes balanced.
    order = [(quadrant, path)
             for group in zip(*files.values(), strict=False)  # stops at the smallest quadrant
             for quadrant, path in zip(QUADRANTS, group, strict=True)]

    def load_and_encode(path):
        try:
            waveform, _ = librosa.load(path, sr=OPUS_RATE, mono=True,
                                       duration=features.clip_seconds)
        except Exception as error:  # noqa: BLE001 - a file librosa cannot read is left out
            return None, f"{path.name}: {error}"
        return encode_clip(waveform), None

    with ThreadPoolExecutor(os.cpu_count()) as pool:  # decoding and resampling release the GIL
        encoded = list(pool.map(lambda item: load_and_encode(item[1]), order))
    clips, quadrants, names, paths = [], [], [], []
    budget = int(max_mib * 2**20) - 2**20  # 1 MiB for the filterbank and the reference
    size = 0
    for (quadrant, path), (data, error) in zip(order, encoded, strict=True):
        if error:
            say(f"prepare: left out {error}")
            continue
        if size + len(data) > budget:
            say(f"prepare: stopping at {len(clips)} clips: the next exceeds {max_mib} MiB")
            break
        clips.append(data)
        quadrants.append(quadrant)
        names.append(path.stem)
        paths.append(path)
        size += len(data)
    # What the codec does to the features, on the first clip: decoded vs. the original.
    first = paths[0]
    original, _ = librosa.load(first, sr=features.sample_rate, mono=True,
                               duration=features.clip_seconds)
    decoded = decode_clip(clips[0], features.sample_rate)
    reference = librosa_log_mel(decoded, features)
    codec_error = np.abs(librosa_log_mel(original, features) - reference)
    written = pack(out, clips=clips, quadrants=quadrants, names=names,
                   reference=reference)
    say(f"prepare: {len(clips)} clips, Opus {OPUS_RATE} Hz level {OPUS_LEVEL}: "
        f"{size / 2**20:.1f} MiB of audio ({size * 8 / len(clips) / features.clip_seconds / 1000:.0f}"
        f" kbit/s), {written / 2**20:.1f} MiB written to {out}")
    say(f"prepare: codec error on the log-mel of {first.name}: mean |d| "
        f"{codec_error.mean():.4f}, max {codec_error.max():.3f} "
        f"(mean log-mel value {reference.mean():.3f})")


def synthetic_npz(path: Path, *, clips_per_quadrant: int, seconds: float) -> None:
    """Tiny data for --smoke: tones whose pitch and loudness follow the quadrant."""
    features = presets.get(PRESET).features
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * OPUS_RATE)) / OPUS_RATE
    clips, quadrants, names = [], [], []
    for i, quadrant in enumerate(QUADRANTS):
        for k in range(clips_per_quadrant):
            tone = 0.3 * (1 + i) / 4 * np.sin(2 * np.pi * (220 * (1 + i) + 10 * k) * t)
            noise = 0.01 * rng.standard_normal(t.size)
            clips.append(encode_clip((tone + noise).astype(np.float32)))
            quadrants.append(quadrant)
            names.append(f"{quadrant}_{k}")
    reference = librosa_log_mel(decode_clip(clips[0], features.sample_rate), features)
    pack(path, clips=clips, quadrants=quadrants, names=names,
         reference=reference)


# --------------------------------------------------------------------------- features


def log_mels(data, features, *, batch: int):
    """Decodes every clip and computes [clips, segments, frames, mels] with the plugin's layers."""
    import jax

    blob, offsets = data["opus"].tobytes(), data["offsets"]
    start = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count()) as pool:  # libsndfile and scipy release the GIL
        waves = list(pool.map(
            lambda i: decode_clip(blob[offsets[i]:offsets[i + 1]], features.sample_rate),
            range(len(offsets) - 1)))
    decode_seconds = time.perf_counter() - start
    # Every clip looped or cut to 30 s, as the paper does.
    waves = np.stack([feature_maths.loop_to_length_np(w, num_samples=features.clip_samples)
                      for w in waves])
    segmenter = Segmenter.from_preset(features)
    log_mel = LogMelSpectrogram.from_preset(features)
    # Full float32 for the filterbank product: TF32 would cost the 1e-4 parity with librosa.
    with jax.default_matmul_precision("highest"):
        compute = jax.jit(lambda w: log_mel(segmenter(w)))
        compute(waves[:batch]).block_until_ready()  # compile
        start = time.perf_counter()
        out = np.concatenate([keras.ops.convert_to_numpy(compute(waves[i:i + batch]))
                              for i in range(0, len(waves), batch)])
    seconds = time.perf_counter() - start
    error = np.abs(out[0] - data["reference_log_mel"]).max()
    say(f"features: {len(waves)} clips decoded in {decode_seconds:.1f} s (CPU); log-mel "
        f"{out.shape} in {seconds:.2f} s on {jax.devices()[0].platform}; max |d| from librosa "
        f"on clip 0: {error:.2e}")
    return out


# --------------------------------------------------------------------------- autoencoder


def conv_flops(model) -> int:
    """FLOPs of one training step per example: every Conv2D's forward pass, its
    weight gradient and (except the first, whose input needs none) its input gradient."""
    total = 0
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        _, h, w, c_out = layer.output.shape
        c_in = layer.input.shape[-1]
        kh, kw = layer.kernel_size
        forward = 2 * h * w * c_out * kh * kw * c_in
        total += forward * (2 if c_in == 1 else 3)
    return total


def masked_autoencoder(preset, *, seed: int):
    """(trainable model: masks -> autoencoder, the autoencoder). Masks act only in fit."""
    keras.utils.set_random_seed(seed)
    autoencoder = ConvAutoencoder.from_preset(preset)
    inputs = keras.Input((*preset.features.spectrogram_shape, 1))
    x = FrequencyMasking(preset.training.freq_mask_param, fill=preset.training.mask_fill,
                         seed=seed)(inputs)
    x = TimeMasking(preset.training.time_mask_param, fill=preset.training.mask_fill,
                    seed=seed + 1)(x)
    model = keras.Model(inputs, autoencoder(x))
    model.compile(optimizer=keras.optimizers.Adam(preset.training.ae_learning_rate),
                  loss=keras.losses.Huber(delta=1.0))
    return model, autoencoder


class EpochTimer(keras.callbacks.Callback):
    """Collects the wall-clock seconds of each epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def matmul_precision(value):
    """JAX's default-precision context for `value`, or no change for None."""
    import jax

    return jax.default_matmul_precision(value) if value else contextlib.nullcontext()


def time_autoencoder(preset, segments: np.ndarray, *, epochs: int, clips: int) -> None:
    """Seconds per autoencoder epoch (the first epoch compiles and is not counted),
    in float32 at JAX's default precision, at "highest" precision, and in mixed bfloat16."""
    import jax

    default = getattr(jax.config, "jax_default_matmul_precision", None)
    say(f"autoencoder timing: {len(segments)} segments of {clips} clips, batch "
        f"{preset.training.ae_batch_size}; jax_default_matmul_precision={default!r} (None: "
        "XLA may use TF32 for float32 matmuls and convolutions on the GPU; the 'highest' "
        "row forbids it)")
    paper = PAPER_EPOCH_SECONDS * clips / PAPER_CLIPS
    runs = [("float32 (default precision)", "float32", None, "tf32"),
            ("float32 (precision highest)", "float32", "highest", "float32"),
            ("mixed_bfloat16", "mixed_bfloat16", None, "bfloat16")]
    x = segments[..., None]
    for label, policy, precision, peak_name in runs:
        keras.config.set_dtype_policy(policy)
        try:
            model, autoencoder = masked_autoencoder(preset, seed=0)
            timer = EpochTimer()
            with matmul_precision(precision):
                model.fit(x, x, batch_size=preset.training.ae_batch_size, epochs=epochs + 1,
                          callbacks=[timer], verbose=0)
        finally:
            keras.config.set_dtype_policy("float32")
        per_epoch = float(np.median(timer.seconds[1:]))
        tflop = conv_flops(autoencoder) * len(segments) / 1e12
        peak = H200_PEAK_TFLOPS[peak_name]
        say(f"  {label:28s} {per_epoch:7.3f} s/epoch (compile epoch {timer.seconds[0]:.1f} s) | "
            f"{tflop:.3g} TFLOP/epoch -> {tflop / per_epoch:.3g} TFLOP/s; {tflop / peak:.3g} s "
            f"at the H200's {peak_name} peak ({peak:.0f} TFLOP/s) | paper, GTX 1080: "
            f"{paper:.1f} s for {clips} clips")


# --------------------------------------------------------------------------- protocol


def binary_scores(y_true: np.ndarray, y_pred: np.ndarray):
    """(accuracy, F1 of class 1 "high"); F1 is 0 when nothing is predicted or labelled high."""
    from sklearn.metrics import f1_score

    return float(np.mean(y_true == y_pred)), float(
        f1_score(y_true, y_pred, pos_label=1, average="binary", zero_division=0))


class Restartable:
    """A compiled model trained afresh per fold: the same starting weights and a zeroed
    optimizer, so each fold reuses the compiled XLA steps instead of compiling anew."""

    def __init__(self, model: keras.Model):
        self.model = model
        self.initial = model.get_weights()

    def restart(self) -> keras.Model:
        self.model.set_weights(self.initial)
        for variable in self.model.optimizer.variables:
            if variable.name != "learning_rate":  # zero the step count and Adam's moments
                variable.assign(np.zeros(variable.shape, variable.dtype))
        return self.model

    def fit(self, x, y, val, *, batch_size, epochs, patience, monitor, mode) -> int:
        """Fits from where `restart` left it, early stopping on `monitor`; returns the epochs run."""
        stopper = keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=patience,
                                                restore_best_weights=True)
        history = self.model.fit(x, y, validation_data=val, batch_size=batch_size,
                                 epochs=epochs, callbacks=[stopper], shuffle=True, verbose=0)
        return len(history.history["loss"])


def run_folds(preset, log_mel: np.ndarray, quadrants: np.ndarray, *, folds: int,
              ae_epochs: int, head_epochs: int, budget_seconds: float, seed: int) -> None:
    """The two-stage protocol: per fold, an autoencoder on the training songs, then
    one head per target on the frozen encoder's embeddings, scored on the test songs."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    labels = {"valence": np.array([BINARY[q][0] for q in quadrants]),
              "arousal": np.array([BINARY[q][1] for q in quadrants])}
    strata = np.searchsorted(QUADRANTS, quadrants)
    training = preset.training
    model, autoencoder = masked_autoencoder(preset, seed=seed)
    stage_1 = Restartable(model)
    dim = math.prod(autoencoder.encoder.output_shape[1:])
    heads = {}
    for target in labels:
        head = SequenceHead.from_preset(preset, embedding_dim=dim)
        head.compile(optimizer=keras.optimizers.Adam(training.head_learning_rate),
                     loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        heads[target] = Restartable(head)
    say(f"folds: {folds}-fold, segments {preset.features.segment_seconds:g} s, masks "
        f"{training.mask_fill}-filled, autoencoder <= {ae_epochs} epochs, heads <= "
        f"{head_epochs} epochs, patience {training.patience}, budget {budget_seconds:.0f} s")
    segs = lambda idx: log_mel[idx].reshape(-1, *log_mel.shape[2:], 1)  # noqa: E731
    scores = {t: [] for t in labels}
    start = time.perf_counter()
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (side, test) in enumerate(splitter.split(np.zeros(len(strata)), strata)):
        elapsed = time.perf_counter() - start
        if fold and elapsed / fold * (fold + 1) > budget_seconds:
            say(f"folds: stopping after {fold} of {folds}: the next would pass the "
                f"{budget_seconds:.0f} s budget")
            break
        n_val = max(1, round(0.1 * len(side)))
        stratify = strata[side] if n_val >= len(QUADRANTS) else None
        train, val = train_test_split(side, test_size=n_val, stratify=stratify,
                                      random_state=seed + fold)
        stage_1.restart()
        ae_epochs_run = stage_1.fit(
            segs(train), segs(train), (segs(val), segs(val)), batch_size=training.ae_batch_size,
            epochs=ae_epochs, patience=training.patience, monitor="val_loss", mode="min")
        embeddings = autoencoder.encoder.predict(segs(np.arange(len(log_mel))), batch_size=256,
                                                 verbose=0)
        embeddings = np.asarray(embeddings).reshape(len(log_mel), log_mel.shape[1], -1)
        line = [f"fold {fold + 1:2d}: autoencoder {ae_epochs_run} epochs"]
        for target, y in labels.items():
            head = heads[target]
            head.restart()
            if hasattr(head.model, "adapt"):  # standardises the embeddings when the preset does
                head.model.adapt(embeddings[train])
            head_epochs_run = head.fit(
                embeddings[train], y[train], (embeddings[val], y[val]),
                batch_size=training.head_batch_size, epochs=head_epochs,
                patience=training.patience, monitor="val_accuracy", mode="max")
            predicted = np.argmax(head.model.predict(embeddings[test], verbose=0), axis=-1)
            majority = int(np.mean(y[side]) >= 0.5)
            scores[target].append(binary_scores(y[test], predicted)
                                  + binary_scores(y[test], np.full(len(test), majority)))
            acc, f1 = scores[target][-1][:2]
            line.append(f"{target} acc {acc:.3f} F1 {f1:.3f} ({head_epochs_run} epochs)")
        say("  " + "; ".join(line) + f" [{time.perf_counter() - start:.0f} s]")
    for target, rows in scores.items():
        if rows:
            acc, f1, base_acc, base_f1 = np.array(rows).mean(axis=0)
            say(f"{target}: accuracy {acc:.3f}, F1 {f1:.3f} | majority baseline accuracy "
                f"{base_acc:.3f}, F1 {base_f1:.3f} | mean of {len(rows)} folds")


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepare", type=Path, metavar="OUT.npz",
                        help="encode the 4Q clips (needs librosa and the data) and exit")
    parser.add_argument("--data-dir", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "data" / "4q")
    parser.add_argument("--max-mib", type=float, default=52.0,
                        help="size cap of the prepared clips (a GPU call carries 64 MiB)")
    parser.add_argument("--data", type=Path, help="the prepared .npz")
    parser.add_argument("--smoke", action="store_true",
                        help="CPU, a few synthetic clips, a small model, one epoch each")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--timing-epochs", type=int, default=2,
                        help="timed epochs per precision (after one compile epoch)")
    parser.add_argument("--ae-epochs", type=int, default=30,
                        help="cap on the autoencoder epochs per fold (preset: 200)")
    parser.add_argument("--head-epochs", type=int, default=100)
    parser.add_argument("--budget", type=float, default=170.0,
                        help="seconds for the folds; later folds are skipped past it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    if args.prepare:
        prepare(args.prepare, data_dir=args.data_dir, max_mib=args.max_mib)
        return 0

    import jax

    started = time.perf_counter()
    if keras.backend.backend() != "jax":
        parser.error(f"needs the JAX backend; KERAS_BACKEND={keras.backend.backend()!r}")
    preset = presets.get(PRESET).replace(mask_fill="mean")
    if args.smoke:
        import tempfile

        # The paper's features, a model small enough to compile and fit in seconds on a CPU.
        preset = presets.get(PRESET + "-small").replace(
            mask_fill="mean", encoder_filters=(2, 2, 2), rnn_units=4)
        tmp = Path(tempfile.mkdtemp())
        args.data = tmp / "smoke.npz"
        synthetic_npz(args.data, clips_per_quadrant=2, seconds=2.0)
        args.folds, args.timing_epochs, args.ae_epochs, args.head_epochs = 2, 1, 1, 1
    if args.data is None:
        parser.error("give --data OUT.npz (made with --prepare) or --smoke")
    device = jax.devices()[0]
    say(f"device: {device.platform} {getattr(device, 'device_kind', '')}; jax {jax.__version__}, "
        f"keras {keras.__version__}, python {sys.version.split()[0]}; preset {preset.name}")
    data = np.load(args.data)
    quadrants = data["quadrants"].astype(str)
    say(f"data: {len(quadrants)} clips ({', '.join(f'{q} {np.sum(quadrants == q)}' for q in QUADRANTS)}) "
        f"from {args.data} ({args.data.stat().st_size / 2**20:.1f} MiB)")
    log_mel = log_mels(data, preset.features, batch=4 if args.smoke else 16)
    segments = log_mel.reshape(-1, *preset.features.spectrogram_shape)
    time_autoencoder(preset, segments, epochs=args.timing_epochs, clips=len(quadrants))
    run_folds(preset, log_mel, quadrants, folds=args.folds, ae_epochs=args.ae_epochs,
              head_epochs=args.head_epochs, budget_seconds=args.budget, seed=args.seed)
    say(f"total: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
