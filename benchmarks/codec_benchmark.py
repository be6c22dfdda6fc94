"""Per-song cost of the wire-level Example helpers and of the gzip level, against the libraries.

Measures, on one song of a preset (random audio, the real sizes):

1. building the ExampleGen's waveform Example: `tf.train.FloatList(value=array)`
   (the protobuf API) against `example_codec.float_feature`;
2. the LogMelTransform's per-song Example work (take the waveform out, put the
   log-mel in, serialize): `tf.train.Example` parse/edit/serialize against
   `example_codec.split_example` + `feature_entry`;
3. writing the waveform Examples as gzipped TFRecords: Beam's public
   `WriteToTFRecord` (gzip level 6) against `gzip_tfrecord.WriteToGzipTFRecord`
   (level 0).

The figures quoted in `example_codec.py` and `gzip_tfrecord.py` come from this script:

    .venv/bin/python benchmarks/codec_benchmark.py [--preset 4q-5s] [--songs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="4q-5s")
    parser.add_argument("--songs", type=int, default=20, help="songs written in step 3")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    import apache_beam as beam
    import numpy as np
    import tensorflow as tf

    from components import example_codec, gzip_tfrecord
    from mer_tfx import contract, presets

    features = presets.resolve(args.preset).features
    rng = np.random.default_rng(0)
    waveform = (0.3 * rng.standard_normal(features.clip_samples)).astype(np.float32)
    log_mel = rng.random(features.num_segments * features.num_frames * features.n_mels).astype(
        np.float32
    )
    head = tf.train.Example(
        features=tf.train.Features(
            feature={
                contract.SONG_ID: example_codec.bytes_feature("song"),
                contract.QUADRANT: example_codec.bytes_feature("Q1"),
                contract.SAMPLE_RATE: example_codec.int64_feature(features.sample_rate),
            }
        )
    )

    def build_with_protobuf():
        example = tf.train.Example()
        example.CopyFrom(head)
        example.features.feature[contract.WAVEFORM].float_list.value.extend(waveform)
        return example.SerializeToString()

    def build_with_codec():
        return head.SerializeToString() + example_codec.feature_entry(
            contract.WAVEFORM, example_codec.float_feature(waveform)
        )

    serialized = build_with_codec()
    assert tf.train.Example.FromString(build_with_protobuf()) == tf.train.Example.FromString(
        serialized
    )

    def transform_with_protobuf():
        example = tf.train.Example.FromString(serialized)
        feature = example.features.feature
        values = np.asarray(feature[contract.WAVEFORM].float_list.value, np.float32)
        del feature[contract.WAVEFORM]
        feature[contract.LOG_MEL].float_list.value.extend(log_mel)
        return values, example.SerializeToString()

    def transform_with_parse_example():
        # TensorFlow's parser for the waveform, protobuf for the rest.
        parsed = tf.io.parse_example(
            [serialized],
            {contract.WAVEFORM: tf.io.FixedLenFeature([features.clip_samples], tf.float32)},
        )
        example = tf.train.Example.FromString(serialized)
        feature = example.features.feature
        del feature[contract.WAVEFORM]
        feature[contract.LOG_MEL].float_list.value.extend(log_mel)
        return parsed[contract.WAVEFORM].numpy(), example.SerializeToString()

    def transform_with_codec():
        rest, taken = example_codec.split_example(serialized, (contract.WAVEFORM,))
        values = example_codec.float_values(tf.train.Feature.FromString(taken[contract.WAVEFORM]))
        tf.train.Example.FromString(rest)  # the executor reads song_id and sample_rate
        return values, rest + example_codec.feature_entry(
            contract.LOG_MEL, example_codec.float_feature(log_mel)
        )

    results = {
        "waveform Example, protobuf API": _median_seconds(build_with_protobuf, args.repeats),
        "waveform Example, example_codec": _median_seconds(build_with_codec, args.repeats),
        "log-mel Example, protobuf API": _median_seconds(transform_with_protobuf, args.repeats),
        "log-mel Example, tf.io.parse_example + protobuf": _median_seconds(
            transform_with_parse_example, args.repeats
        ),
        "log-mel Example, example_codec": _median_seconds(transform_with_codec, args.repeats),
    }

    records = [serialized] * args.songs
    with tempfile.TemporaryDirectory(prefix="mer-codec-") as tmp:

        def write(transform_factory, name):
            def run():
                with beam.Pipeline() as pipeline:
                    _ = pipeline | beam.Create(records) | transform_factory(
                        os.path.join(tmp, name, "data")
                    )

            return _median_seconds(run, max(1, args.repeats // 2)) / args.songs

        results["TFRecord write, Beam WriteToTFRecord (gzip 6)"] = write(
            lambda prefix: beam.io.WriteToTFRecord(prefix, file_name_suffix=".gz"), "beam"
        )
        results["TFRecord write, WriteToGzipTFRecord (gzip 0)"] = write(
            lambda prefix: gzip_tfrecord.WriteToGzipTFRecord(prefix), "level0"
        )

    print(
        f"preset {args.preset}: waveform {features.clip_samples} floats, log-mel {log_mel.size} "
        f"floats; median of {args.repeats}, load average {os.getloadavg()[0]:.2f}"
    )
    for name, seconds in results.items():
        print(f"{name:50s} {1000 * seconds:8.1f} ms per song")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
