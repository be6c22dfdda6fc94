"""Ingestion speed: AudioExampleGen + LogMelTransform vs a plain librosa loop.

Takes the first N clips of a 4Q folder (N/4 per quadrant, listed in a temporary
manifest: the audio is not copied), then in the same process

1. runs the two TFX executors (Beam DirectRunner) end to end: decode, resample,
   loop/cut to 30 s, write waveform Examples, segment, log-mel, write log-mel
   Examples;
2. runs the paper's loop: `librosa.load` + `librosa.feature.melspectrogram` per
   segment + log10(S + 1);

and prints clips/second for both, plus the largest difference between their
log-mel outputs on the same clips.

Usage:
    .venv/bin/python benchmarks/ingest_benchmark.py [--data ../shared/data/4q]
        [--clips 40] [--preset 4q-5s] [--beam-arg=--direct_num_workers=2 ...]
"""

from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

REPO = Path(__file__).resolve().parents[1]


def default_data() -> Path:
    shared = os.environ.get("MER_SHARED_DATA")
    return Path(shared) / "4q" if shared else REPO.parent / "shared" / "data" / "4q"


def write_manifest(data: Path, clips: int, out: Path) -> Path:
    """A manifest of the first clips//4 files of each quadrant folder."""
    rows = []
    for quadrant in ("Q1", "Q2", "Q3", "Q4"):
        files = sorted((data / quadrant).glob("*.mp3"))[: max(1, clips // 4)]
        rows += [[str(path), quadrant] for path in files]
    if not rows:
        raise SystemExit(f"No 4Q audio under {data} (expected Q1..Q4/*.mp3)")
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "quadrant"])
        writer.writerows(rows)
    return manifest


def run_pipeline(manifest: Path, preset, out: Path, beam_args):
    from tfx.components.example_gen import utils as example_gen_utils
    from tfx.dsl.components.base import base_beam_executor
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components.audio_example_gen import component as gen_component
    from components.audio_example_gen import executor as gen_executor
    from components.log_mel_transform import executor as mel_executor

    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args)
    raw = standard_artifacts.Examples()
    raw.uri = str(out / "raw")
    mel = standard_artifacts.Examples()
    mel.uri = str(out / "log_mel")
    start = time.perf_counter()
    gen_executor.Executor(context).Do(
        {},
        {"examples": [raw]},
        {
            "input_base": str(manifest),
            "input_config": proto_utils.proto_to_json(
                example_gen_utils.make_default_input_config()
            ),
            "output_config": proto_utils.proto_to_json(gen_component.default_output_config()),
            "custom_config": proto_utils.proto_to_json(
                gen_executor.make_custom_config(preset=preset)
            ),
            "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
            "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        },
    )
    middle = time.perf_counter()
    mel_executor.Executor(context).Do(
        {mel_executor.WAVEFORM_EXAMPLES_KEY: [raw]},
        {mel_executor.EXAMPLES_KEY: [mel]},
        {mel_executor.PRESET_KEY: preset.name},
    )
    end = time.perf_counter()
    return mel.uri, middle - start, end - middle


def read_log_mels(uri: str, features):
    import tensorflow as tf

    from components import example_codec

    out = {}
    files = glob.glob(os.path.join(uri, "Split-*", "*.gz"))
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        song = example.features.feature["audio_path"].bytes_list.value[0].decode()
        out[song] = example_codec.float_values(example.features.feature["log_mel"]).reshape(
            features.num_segments, features.num_frames, features.n_mels
        )
    return out


def librosa_loop(paths, features):
    import librosa
    import numpy as np

    out = {}
    for path in paths:
        y, _ = librosa.load(path, sr=features.sample_rate, mono=True)
        y = np.tile(y, -(-features.clip_samples // len(y)))[: features.clip_samples]
        segments = y.reshape(features.num_segments, features.segment_samples)
        out[path] = np.stack(
            [
                np.log10(
                    librosa.feature.melspectrogram(
                        y=segment,
                        sr=features.sample_rate,
                        n_fft=features.n_fft,
                        hop_length=features.hop_length,
                        n_mels=features.n_mels,
                    )
                    + 1
                ).T
                for segment in segments
            ]
        )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=default_data(), help="a 4Q folder")
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--preset", default="4q-5s")
    parser.add_argument("--beam-arg", action="append", default=[], help="a Beam pipeline argument")
    args = parser.parse_args(argv)

    # Imports first, so that neither timing includes them.
    import librosa  # noqa: F401
    import tensorflow  # noqa: F401
    from tfx.components.example_gen import utils  # noqa: F401

    import components.audio_example_gen.executor  # noqa: F401
    import components.log_mel_transform.executor  # noqa: F401
    from mer_tfx import presets

    preset = presets.resolve(args.preset)
    features = preset.features
    with tempfile.TemporaryDirectory(prefix="mer-ingest-") as tmp:
        manifest = write_manifest(args.data, args.clips, Path(tmp))
        with open(manifest) as handle:
            paths = [row["path"] for row in csv.DictReader(handle)]
        n = len(paths)
        print(f"{n} clips from {args.data}, preset {preset.name}, load average {os.getloadavg()}")

        cpu = time.process_time()
        uri, t_gen, t_mel = run_pipeline(manifest, preset, Path(tmp), args.beam_arg)
        cpu_pipeline = time.process_time() - cpu
        pipeline_out = read_log_mels(uri, features)
        start, cpu = time.perf_counter(), time.process_time()
        reference = librosa_loop(paths, features)
        t_librosa = time.perf_counter() - start
        cpu_librosa = time.process_time() - cpu

    t_pipeline = t_gen + t_mel
    print(
        f"pipeline (AudioExampleGen + LogMelTransform, DirectRunner {args.beam_arg or 'defaults'}): "
        f"{len(pipeline_out)} clips in {t_pipeline:.1f} s = {len(pipeline_out) / t_pipeline:.2f} clips/s "
        f"(ExampleGen {t_gen:.1f} s, LogMelTransform {t_mel:.1f} s; "
        f"{cpu_pipeline:.1f} s CPU in this process)"
    )
    print(
        f"librosa loop (load + melspectrogram per segment): {n} clips in {t_librosa:.1f} s = "
        f"{n / t_librosa:.2f} clips/s ({cpu_librosa:.1f} s CPU)"
    )
    import numpy as np

    diffs = [np.abs(pipeline_out[p] - reference[p]).max() for p in paths if p in pipeline_out]
    if diffs:
        print(
            f"log-mel difference pipeline vs librosa (decoders/resamplers differ): "
            f"median of per-clip max |diff| {np.median(diffs):.2e}, worst {max(diffs):.2e} (log10 units)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
