"""Stage-1 (autoencoder) training throughput: today's path, the reference, and variants.

Prints, for each preset asked (the small preset and the paper-size model by default):

- segments trained per second of `training.pretrain_autoencoder` as it is now (wall
  time, and per CPU-second of this process, which is steadier on a shared machine);
- the achieved FLOP rate (multiply-adds of the convolutions, forward and backward)
  as a fraction of this machine's dense float32 matmul rate, measured in the same run;
- the same for the reference: the stage-1 path of commit f949de2 (batch 32, 384
  freshly drawn segments per epoch out of a shuffle buffer of all of them, the masks
  in the tf.data pipeline, a fixed validation subset of 96, and its model: stock
  UpSampling2D + Conv2D layers in the decoder, the activity penalty as Square + Sum),
  rebuilt below;
- today's path with f949de2's model ("today, f949de2's layers"): what the decoder's
  `UpSamplingConv2D` layers and the one-pass activity penalty gain on their own;
- optional variants, each one change to today's path: `--batch-sizes`, `--bfloat16`
  (the `mixed_bfloat16` policy: bfloat16 convolutions where the CPU has AVX512_BF16),
  `--jit` (XLA).

    .venv/bin/python benchmarks/stage1_benchmark.py
    .venv/bin/python benchmarks/stage1_benchmark.py --presets small --batch-sizes 64 128 \
        --bfloat16 --jit
    .venv/bin/python benchmarks/stage1_benchmark.py --intra-threads 1   # thread settings
    .venv/bin/python benchmarks/stage1_benchmark.py --presets small --repeats 3  # interleaved

Random log-mel data of the preset's shape; every figure is the median over the
epochs after the first (the first includes tracing). Thread settings must be made
before TensorFlow starts, so they are one run each (`--intra-threads`,
`--inter-threads`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time
from pathlib import Path

REFERENCE_BATCH = 32
REFERENCE_SEGMENTS_PER_EPOCH = 384


def _epoch_timer(segments_per_epoch: int):
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.wall, self.cpu = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._wall, self._cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self._wall)
            self.cpu.append(time.process_time() - self._cpu)

        def rates(self):
            steady = lambda values: statistics.median(values[1:] or values)  # noqa: E731
            return segments_per_epoch / steady(self.wall), segments_per_epoch / steady(self.cpu)

    return EpochTimer()


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    """This machine's dense float32 matmul rate (GFLOP/s, all TensorFlow threads)."""
    import tensorflow as tf

    a = tf.random.uniform((n, n))
    b = tf.random.uniform((n, n))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        result = matmul(a, b)
    result.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def training_flops_per_segment(model) -> float:
    """Multiply-add FLOPs of one segment's training step: the convolutions forward (2
    per multiply-add), their weight gradients (as many) and their input gradients (as
    many, except the first layer's, which nothing needs). Pooling, upsampling, the loss
    and the optimizer are left out (a small share)."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    total = 0.0
    for i, conv in enumerate(convs):
        _, height, width, out_channels = conv.output.shape
        k_h, k_w, in_channels, _ = conv.kernel.shape
        forward = 2.0 * height * width * out_channels * k_h * k_w * in_channels
        total += forward * (2 if i == 0 else 3)
    return total


def reference_dataset(segments, *, preset, seed: int):
    """f949de2's `masked_autoencoder_dataset` with its small-preset settings."""
    import tensorflow as tf

    from mer_tfx.layers import FrequencyMasking, TimeMasking

    training = preset.training
    dataset = tf.data.Dataset.from_tensor_slices(segments)
    dataset = dataset.shuffle(len(segments), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.take(REFERENCE_SEGMENTS_PER_EPOCH).batch(REFERENCE_BATCH)
    with tf.device("/CPU:0"):
        freq_mask = FrequencyMasking(freq_mask_param=training.freq_mask_param, fill="mean",
                                     seed=seed)
        time_mask = TimeMasking(time_mask_param=training.time_mask_param, fill="mean",
                                seed=seed + 1)

    def mask(x):
        clean = x[..., None]
        return time_mask(freq_mask(clean, training=True), training=True), clean

    return dataset.map(mask).prefetch(tf.data.AUTOTUNE)


def reference_autoencoder(preset):
    """f949de2's `ConvAutoencoder` of `preset`: the same weights as today's, built from
    stock layers (UpSampling2D then Conv2D in the decoder) with its activity penalty,
    `l2 * sum(square(x)) / batch` through Square and Sum and their automatic gradients."""
    import keras
    from keras import ops

    class SquareSumL2(keras.regularizers.Regularizer):
        def __init__(self, l2):
            self.l2 = l2

        def __call__(self, x):
            batch = ops.cast(ops.shape(x)[0], "float32")
            return self.l2 * ops.sum(ops.square(ops.cast(x, "float32"))) / ops.maximum(batch, 1.0)

    filters = preset.model.encoder_filters
    l2 = preset.model.activity_l2
    conv = lambda f, name, **kw: keras.layers.Conv2D(  # noqa: E731
        f, 3, padding="same", activation="relu", name=name, **kw)
    inputs = keras.Input((*preset.features.spectrogram_shape, 1))
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = conv(f, f"encoder_conv_{i}",
                 activity_regularizer=SquareSumL2(l2) if i == 1 and l2 > 0 else None)(x)
        x = keras.layers.MaxPooling2D(2, name=f"encoder_pool_{i}")(x)
    x = conv(filters[2], "decoder_conv_1")(x)
    for i, f in enumerate((filters[1], filters[0]), start=1):
        x = keras.layers.UpSampling2D(2, name=f"decoder_upsample_{i}")(x)
        x = conv(f, f"decoder_conv_{i + 1}")(x)
    x = keras.layers.UpSampling2D(2, name="decoder_upsample_3")(x)
    x = conv(1, "reconstruction", dtype="float32")(x)
    return keras.Model(inputs, x, name="reference_autoencoder")


@contextlib.contextmanager
def _reference_layers():
    """Makes `training.pretrain_autoencoder` build f949de2's model."""
    from mer_tfx.training import pretraining as training  # where stage 1 builds its model

    original = training.ConvAutoencoder

    class Reference:
        @staticmethod
        def from_preset(preset):
            return reference_autoencoder(preset)

    training.ConvAutoencoder = Reference
    try:
        yield
    finally:
        training.ConvAutoencoder = original


def _with_reference_layers(function):
    def run(*args, **kwargs):
        with _reference_layers():
            return function(*args, **kwargs)
    return run


def reference_stage1(train, val, *, preset, epochs: int, seed: int = 0):
    """f949de2's `pretrain_autoencoder` for a `-small` preset: 384 segments an epoch,
    batch 32, validation on a fixed subset of 96. Returns (segments/s wall, per CPU-s)."""
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    model = reference_autoencoder(preset)
    model.compile(optimizer=keras.optimizers.Adam(preset.training.ae_learning_rate),
                  loss=keras.losses.Huber(delta=1.0))
    keep = np.random.default_rng(seed).permutation(len(val))[: REFERENCE_SEGMENTS_PER_EPOCH // 4]
    val = val[np.sort(keep)]
    timer = _epoch_timer(min(REFERENCE_SEGMENTS_PER_EPOCH, len(train)))
    model.fit(reference_dataset(train, preset=preset, seed=seed), epochs=epochs, verbose=0,
              validation_data=tf.data.Dataset.from_tensor_slices(
                  (val[..., None], val[..., None])).batch(REFERENCE_BATCH),
              callbacks=[timer, keras.callbacks.EarlyStopping(patience=10)])
    return timer.rates(), model


@contextlib.contextmanager
def _policy(name: str):
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@contextlib.contextmanager
def _jit():
    """Compiles stage 1's training step with XLA (`jit_compile=True`)."""
    import keras

    original = keras.Model.compile

    def compile_with_xla(self, *args, **kwargs):
        kwargs["jit_compile"] = True
        return original(self, *args, **kwargs)

    keras.Model.compile = compile_with_xla
    try:
        yield
    finally:
        keras.Model.compile = original


def _bfloat16(function):
    def run(*args, **kwargs):
        with _policy("mixed_bfloat16"):
            return function(*args, **kwargs)
    return run


def _with_xla(function):
    def run(*args, **kwargs):
        with _jit():
            return function(*args, **kwargs)
    return run


def today_stage1(train, val, *, preset, epochs: int, seed: int = 0):
    """`training.pretrain_autoencoder` as it is now. Returns (rates, model)."""
    from mer_tfx import training

    segments = len(train)
    if preset.training.ae_segments_per_epoch:
        segments = min(segments, preset.training.ae_segments_per_epoch)
    timer = _epoch_timer(segments)
    result = training.pretrain_autoencoder(
        train, val, preset=preset.replace(ae_min_delta=0.0, ae_patience=epochs + 1),
        seed=seed, verbose=0, max_epochs=epochs, callbacks=[timer])
    return timer.rates(), result.model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "4q-5s"])
    parser.add_argument("--segments", type=int, default=1944,
                        help="training segments of the small preset (a 400-clip 4Q fold: "
                             "324 songs x 6 = 1944)")
    parser.add_argument("--paper-segments", type=int, default=96,
                        help="training segments of paper-size presets (25x the cost each)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is "
                        "warm-up")
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[],
                        help="also time today's path with these batch sizes")
    parser.add_argument("--bfloat16", action="store_true",
                        help="also time today's path under the mixed_bfloat16 policy")
    parser.add_argument("--jit", action="store_true", help="also time it with XLA")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--repeats", type=int, default=1,
                        help="run every path this many times, interleaved, and summarise "
                             "the medians (a busy machine's figures move between runs)")
    parser.add_argument("--intra-threads", type=int, default=0)
    parser.add_argument("--inter-threads", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `mer` runs (mer_tfx/cli.py)
    import numpy as np
    import tensorflow as tf

    if args.intra_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.intra_threads)
    if args.inter_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_threads)
    from mer_tfx import presets

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    peak = matmul_gflops()
    print(f"CPUs: {os.cpu_count()}, AVX512_BF16: {'avx512_bf16' in flags}, threads intra/inter: "
          f"{args.intra_threads or 'default'}/{args.inter_threads or 'default'}; dense float32 "
          f"matmul (2048^2) now: {peak:.1f} GFLOP/s (measured again after every run)\n")
    print(f"{'preset':<10} {'path':<30} {'segments/s':>10} {'per CPU-s':>10} {'GFLOP/s':>8} "
          f"{'matmul':>8} {'of matmul':>9}")
    rows = []
    for name in args.presets:
        preset = presets.get(name)
        f = preset.features
        small = preset.model.encoder_filters[0] <= 16
        n = args.segments if small else args.paper_segments
        rng = np.random.default_rng(0)
        train = rng.uniform(0.0, 3.0, (n, f.num_frames, f.n_mels)).astype(np.float32)
        val = rng.uniform(0.0, 3.0, (max(8, n // 9), f.num_frames, f.n_mels)).astype(np.float32)
        runs = []  # (label, function of (train, val, preset, epochs), preset)
        if small and not args.no_reference:  # f949de2's paper presets: today's path
            runs.append(("reference (f949de2)", reference_stage1, preset))
        runs.append(("today", today_stage1, preset))
        if not args.no_reference:
            runs.append(("today, f949de2's layers", _with_reference_layers(today_stage1), preset))
        for batch in args.batch_sizes:
            runs.append((f"today, batch {batch}", today_stage1,
                         preset.replace(ae_batch_size=batch)))
        if args.bfloat16:
            runs.append(("today, mixed_bfloat16", _bfloat16(today_stage1), preset))
        if args.jit:
            runs.append(("today, jit_compile", _with_xla(today_stage1), preset))
        for repeat, (label, function, run_preset) in (
                (r, run) for r in range(args.repeats) for run in runs):
            (wall, cpu), model = function(train, val, preset=run_preset, epochs=args.epochs)
            gflops = wall * training_flops_per_segment(model) / 1e9
            peak = matmul_gflops()  # right after the run: the load on a shared machine varies
            row = {"preset": name, "path": label, "repeat": repeat, "segments_per_s": wall,
                   "segments_per_cpu_s": cpu, "gflops": gflops, "of_matmul": gflops / peak,
                   "matmul_gflops": peak}
            rows.append(row)
            print(f"{name:<10} {label:<30} {wall:>10.1f} {cpu:>10.1f} {gflops:>8.2f} "
                  f"{peak:>8.1f} {gflops / peak:>9.1%}", flush=True)
    summarise(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def summarise(rows) -> None:
    """Median segments per second (wall, per CPU-second) of each path, and its ratio to the
    reference of the same preset."""
    print(f"\nmedians over {max(r['repeat'] for r in rows) + 1} run(s) of each path:")
    print(f"{'preset':<10} {'path':<30} {'segments/s':>10} {'per CPU-s':>10} "
          f"{'x reference':>11} {'x ref. CPU':>10}")
    for preset in dict.fromkeys(r["preset"] for r in rows):
        paths = dict.fromkeys(r["path"] for r in rows if r["preset"] == preset)
        medians = {
            path: [statistics.median(r[key] for r in rows if (r["preset"], r["path"]) == (preset, path))
                   for key in ("segments_per_s", "segments_per_cpu_s")]
            for path in paths
        }
        reference = medians.get("reference (f949de2)")
        for path, (wall, cpu) in medians.items():
            ratios = (f"{wall / reference[0]:>10.2f}x {cpu / reference[1]:>9.2f}x"
                      if reference else f"{'-':>11} {'-':>10}")
            print(f"{preset:<10} {path:<30} {wall:>10.1f} {cpu:>10.1f} {ratios}")


if __name__ == "__main__":
    main()
