"""Stage-2 epoch time with the embedding cache vs recomputing the frozen encoder.

The encoder is frozen in stage 2, so `mer experiment` embeds every song once per
fold (`encode_segments`) and trains the head on the cached embeddings. The
alternative — a `TwoStageClassifier` that runs the frozen encoder on every
segment in every epoch — computes the same function on the same data. This
script times both on the same random log-mel data and the same head, in the same
process, and prints seconds per epoch, the one-off encoding cost and the speed-up.

    .venv/bin/python benchmarks/experiment_benchmark.py --preset 4q-5s-small --songs 90
    .venv/bin/python benchmarks/experiment_benchmark.py --preset 4q-5s --songs 30

Epoch times are the median over epochs 2..N (epoch 1 includes tracing), as wall
time and as CPU time of the process (steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time


def _epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times, self.cpu_times = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self._start)
            self.cpu_times.append(time.process_time() - self._cpu)

    return EpochTimer()


def _steady(times):
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="4q-5s-small")
    parser.add_argument("--songs", type=int, default=90,
                        help="training songs per epoch (a 400-clip 4Q fold has ~324)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `mer experiment` runs (mer_tfx/cli.py)
    import keras
    import numpy as np
    import tensorflow as tf

    from mer_tfx import presets
    from mer_tfx.models import ConvAutoencoder, SequenceHead, TwoStageClassifier

    preset = presets.resolve(args.preset)
    keras.utils.set_random_seed(args.seed)
    f = preset.features
    rng = np.random.default_rng(args.seed)
    log_mels = rng.uniform(0.0, 3.0, (args.songs, f.num_segments, f.num_frames, f.n_mels))
    log_mels = log_mels.astype(np.float32)
    labels = rng.integers(0, 2, args.songs)
    batch = preset.training.head_batch_size
    encoder = ConvAutoencoder.from_preset(preset).encoder

    def compiled(model):
        model.compile(optimizer=keras.optimizers.Adam(preset.training.head_learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

    # Cached: embed once, then every epoch trains the head on [songs, segments, D].
    flat = log_mels.reshape(-1, f.num_frames, f.n_mels, 1)
    encoder.predict(flat[:64], batch_size=64, verbose=0)  # trace outside the timing
    start = time.perf_counter()
    embeddings = encoder.predict(flat, batch_size=64, verbose=0)
    embeddings = embeddings.reshape(args.songs, f.num_segments, -1)
    encode_seconds = time.perf_counter() - start
    head = compiled(SequenceHead.from_preset(preset, embedding_dim=embeddings.shape[-1]))
    cached_timer = _epoch_timer()
    head.fit(embeddings, labels, batch_size=batch, epochs=args.epochs, verbose=0,
             callbacks=[cached_timer])

    # Recomputed: the frozen encoder runs on every segment in every epoch.
    keras.utils.set_random_seed(args.seed)
    full = compiled(TwoStageClassifier(
        encoder=encoder, head=SequenceHead.from_preset(preset, embedding_dim=embeddings.shape[-1])))
    full_timer = _epoch_timer()
    full.fit(log_mels, labels, batch_size=batch, epochs=args.epochs, verbose=0,
             callbacks=[full_timer])

    cached, recomputed = _steady(cached_timer.times), _steady(full_timer.times)
    cached_cpu, recomputed_cpu = _steady(cached_timer.cpu_times), _steady(full_timer.cpu_times)
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    print(f"preset {preset.name}: encoder filters {preset.model.encoder_filters}, "
          f"head {preset.model.rnn_units} units, {args.songs} songs x {f.num_segments} segments, "
          f"batch {batch}, device {'GPU ' + ','.join(gpus) if gpus else 'CPU'} "
          f"({os.cpu_count()} cores)")
    print(f"one-off encoding of all segments: {encode_seconds:.2f} s")
    print(f"stage-2 epoch, cached embeddings:  {cached:.3f} s  (epochs: "
          f"{', '.join(f'{t:.2f}' for t in cached_timer.times)})")
    print(f"stage-2 epoch, encoder recomputed: {recomputed:.3f} s  (epochs: "
          f"{', '.join(f'{t:.2f}' for t in full_timer.times)})")
    # CPU seconds (all threads) are steadier than wall time on a shared machine.
    print(f"stage-2 epoch CPU time, cached: {cached_cpu:.3f} s, recomputed: {recomputed_cpu:.3f} s "
          f"-> {recomputed_cpu / cached_cpu:.1f}x")
    print(f"speed-up per epoch (wall): {recomputed / cached:.1f}x; over a 25-epoch fold including the "
          f"one-off encoding: {25 * recomputed / (25 * cached + encode_seconds):.1f}x")


if __name__ == "__main__":
    main()
