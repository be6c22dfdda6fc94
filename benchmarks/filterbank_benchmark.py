"""Why the mel filterbank is built in NumPy: the cost of librosa's in a component's process.

`mer_tfx.features.mel_filterbank` equals `librosa.filters.mel(...).T` value for
value (`mer_tfx/features_test.py`). What librosa would add is its import
(`librosa.filters` pulls in numba and scipy.signal), paid once by every process
that traces the log-mel graph: the LogMelTransform, each Beam worker, `mer
experiment`'s feature cache. This script measures it where it lands: in fresh
processes that have already imported what the LogMelTransform executor imports
(TensorFlow, Beam, TFX), it times building the 4q-5s preset's filterbank with
librosa (its import included) and with `mer_tfx.features`, alternating, and
prints the medians beside the LogMelTransform's own time for scale.

    .venv/bin/python benchmarks/filterbank_benchmark.py [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys

_CHILD = r"""
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
from components.log_mel_transform import executor  # what the component's process holds
from mer_tfx import presets
f = presets.get("4q-5s").features
start = time.perf_counter()
if sys.argv[1] == "librosa":
    import librosa.filters
    weights = librosa.filters.mel(sr=f.sample_rate, n_fft=f.n_fft, n_mels=f.n_mels).T
else:
    from mer_tfx import features
    weights = features.mel_filterbank(sample_rate=f.sample_rate, n_fft=f.n_fft, n_mels=f.n_mels)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "checksum": float(weights.astype("float64").sum())}))
"""


def _run(kind: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", _CHILD, kind], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="fresh processes per kind")
    args = parser.parse_args()
    times = {"librosa": [], "numpy": []}
    checksums = set()
    for _ in range(args.pairs):
        for kind in times:
            result = _run(kind)
            times[kind].append(result["seconds"])
            checksums.add(round(result["checksum"], 6))
    print(f"mel filterbank (4q-5s), {args.pairs} fresh processes each, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}; each process first imports the "
          "LogMelTransform executor (TensorFlow, Beam, TFX)")
    for kind, label in (("librosa", "librosa.filters.mel, import included"),
                        ("numpy", "mer_tfx.features.mel_filterbank")):
        print(f"  {label:<40} median {1000 * statistics.median(times[kind]):7.1f} ms "
              f"({', '.join(f'{1000 * t:.0f}' for t in times[kind])})")
    print(f"  same matrix from both: {len(checksums) == 1}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
