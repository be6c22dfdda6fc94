"""Serving latency and throughput: REST (local TF-Serving-compatible server) vs in process.

Measures, in one run, for one 30 s clip at the model's sample rate:

- in-process latency: `serving_default` of the loaded SavedModel (the floor);
- REST latency with a base64 16-bit WAV body (`serving_wav`, the recommended path),
  timed from the float waveform on the client to the parsed answer, so it
  includes WAV encoding, base64, HTTP, JSON and the in-graph WAV decode;
- REST latency with a JSON float body (`serving_default`), the same way;
- request body sizes of both;
- throughput with N concurrent clients (keep-alive connections, b64 WAV);
- the memory one large request costs: the server process's peak RSS growth while it
  answers a valid JSON-floats body of `--memory-body-mib` MiB (default 60, just under
  the 64 MiB limit), against a target of at most 1 GiB (local server only).

Usage:

    .venv/bin/python benchmarks/serving_benchmark.py                      # untrained "small" model
    .venv/bin/python benchmarks/serving_benchmark.py --model-dir outputs/serving_model
    .venv/bin/python benchmarks/serving_benchmark.py --url http://localhost:8501   # a running server
    .venv/bin/python benchmarks/serving_benchmark.py --architecture tiny --memory-only

Without --url the server runs in a thread of this process (so client and server
share this machine's cores, as on a laptop). Without --model-dir the "small"
preset's architecture is exported untrained to a temporary folder (~40 s): the
graph and its cost are the production ones, only the weights are random
(`--architecture tiny` uses the test fixture's pooled dense head instead).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from mer_tfx.contract import MODEL_INFO, MODEL_NAME, SERVING_DEFAULT, SERVING_WAV

REPO = Path(__file__).resolve().parents[1]


def _serving_fixtures():
    """tests/fixtures/serving.py: the tests' tiny served model, which the library does not ship."""
    import importlib.util

    path = REPO / "tests" / "fixtures" / "serving.py"
    spec = importlib.util.spec_from_file_location("serving_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as `mer serve` runs (mer_tfx/cli.py)


def percentile(values, q):
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def timed(fn, repeats, warmup=2):
    return interleaved({"one": fn}, repeats, warmup=warmup)["one"]


def interleaved(fns, repeats, warmup=2):
    """{name: [seconds]}: the functions take turns, so load from other processes on
    this machine hits every path alike instead of whichever happened to run then."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


MEMORY_TARGET_BYTES = 1 << 30  # peak RSS growth for one 60 MiB JSON body; 1.8 GB before


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_growth(fn) -> int:
    """Bytes the process's resident set grew to at its peak while `fn()` ran.

    Linux: resets the kernel's peak (VmHWM) through /proc/self/clear_refs and reads it
    after; where that is not allowed, samples VmRSS every 2 ms instead (may miss a peak).
    """
    import gc

    gc.collect()
    before = _proc_status_kib("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        fn()
        return (_proc_status_kib("VmHWM") - before) * 1024
    except OSError:
        pass
    peak, done = [before], threading.Event()

    def sample():
        while not done.wait(0.002):
            peak[0] = max(peak[0], _proc_status_kib("VmRSS"))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return (max(peak[0], _proc_status_kib("VmRSS")) - before) * 1024


def json_floats_body(*, mebibytes: float, sample_rate: int, decimals: int | None) -> bytes:
    """A valid `serving_default` body of about `mebibytes` MiB: one long clip as JSON floats,
    written in full (float32 values as Python prints them, ~20 characters) or rounded to
    `decimals` places (shorter numbers: more samples in the same bytes)."""
    music_like = _serving_fixtures().music_like

    def text(seconds, seed=0):
        clip = music_like(seconds=seconds, sample_rate=sample_rate, seed=seed).astype(np.float64)
        if decimals is not None:
            clip = clip.round(decimals)
        return json.dumps({"instances": [clip.tolist()]}).encode()

    seconds = mebibytes * (1 << 20) / len(text(1.0))
    return text(seconds, seed=1)


def memory_figures(
    *, url: str, path: str, mebibytes: float, sample_rate: int, decimals: int | None = None
) -> dict:
    """The server's (this process's) peak RSS growth answering one large JSON body."""
    body = json_floats_body(mebibytes=mebibytes, sample_rate=sample_rate, decimals=decimals)
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    # Not warmed first: memory a previous large request left with the allocator would
    # hide part of the growth.
    rss_before = _proc_status_kib("VmRSS") * 1024
    started = time.perf_counter()
    growth = peak_rss_growth(lambda: post(conn, path, body))
    seconds = time.perf_counter() - started
    conn.close()
    return {
        "body_bytes": len(body),
        "decimals": decimals,
        "samples": body.count(b",") + 1,
        "rss_before_bytes": rss_before,
        "peak_rss_growth_bytes": growth,
        "target_bytes": MEMORY_TARGET_BYTES,
        "met": growth <= MEMORY_TARGET_BYTES,
        "seconds": seconds,
    }


def print_memory(figures: dict) -> None:
    verdict = "met" if figures["met"] else "NOT met"
    print(
        f"memory: one {figures['body_bytes'] / (1 << 20):.1f} MiB JSON-floats request "
        f"({figures['samples']} samples, "
        f"{'full precision' if figures['decimals'] is None else str(figures['decimals']) + ' decimals'}) grew the "
        f"server's peak RSS by {figures['peak_rss_growth_bytes'] / (1 << 20):.0f} MiB "
        f"(from {figures['rss_before_bytes'] / (1 << 20):.0f} MiB) "
        f"(target <= {figures['target_bytes'] / (1 << 20):.0f} MiB: {verdict}; "
        f"answered in {figures['seconds']:.1f} s)"
    )


def post(conn, path, body):
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {data[:300]!r}")
    return json.loads(data)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-dir", help="pushed model (base, model base path or version folder)"
    )
    parser.add_argument("--url", help="benchmark this running server instead of a local one")
    parser.add_argument(
        "--architecture",
        choices=("small", "tiny"),
        default="small",
        help="without --model-dir: export the untrained 'small' preset architecture (default) "
        "or the tiny test fixture",
    )
    parser.add_argument(
        "--preset",
        default="small",
        help="without --model-dir, the preset whose architecture is exported (default small; "
        "4q-5s for the paper's Table 2 sizes)",
    )
    parser.add_argument(
        "--model-name", default=MODEL_NAME, help=f"served model name (default: {MODEL_NAME})"
    )
    parser.add_argument(
        "--repeats", type=int, default=30, help="latency samples per path (default 30)"
    )
    parser.add_argument(
        "--json-repeats", type=int, default=5, help="samples of the slow JSON path (default 5)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--requests", type=int, default=10, help="requests per client (default 10)")
    parser.add_argument(
        "--workers", type=int, default=2, help="local server's prediction workers (default 2)"
    )
    parser.add_argument(
        "--memory-body-mib",
        type=float,
        default=60.0,
        help="size of the JSON body whose memory cost is measured (default 60; 0 skips; "
        "local server only)",
    )
    parser.add_argument(
        "--memory-only", action="store_true", help="measure only the memory of one large request"
    )
    parser.add_argument("--output", help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    from mer_tfx.client.rest_model import RestModel, encode_wav
    from mer_tfx.server.json_codec import decode_predict_request
    from mer_tfx.server.rest_server import RestServer, ServedModelConfig
    from mer_tfx.server.servable import Servable, resolve_model_dir
    fixtures = _serving_fixtures()
    music_like, write_pushed_model = fixtures.music_like, fixtures.write_pushed_model

    workdir = tempfile.TemporaryDirectory(prefix="mer-serving-bench-")
    if args.model_dir:
        version_dir = resolve_model_dir(args.model_dir)
        model_label = str(version_dir)
    else:
        print(f"exporting the untrained '{args.architecture}' model ...", file=sys.stderr)
        write_pushed_model(
            workdir.name,
            model_name=args.model_name,
            version=1,
            architecture=args.architecture,
            preset=args.preset,
        )
        version_dir = Path(workdir.name) / args.model_name / "1"
        model_label = {
            "small": f"untrained '{args.preset}' preset architecture "
            "(ConvAutoencoder encoder + 2 BiLSTM heads)",
            "tiny": "tiny test fixture (real feature graph, pooled dense head)",
        }[args.architecture]
    servable = Servable(path=version_dir)
    info = servable.run(MODEL_INFO, {"unused": np.zeros([1], np.int32)})
    rate = int(info["sample_rate"][0])
    clip_samples = int(round(float(info["clip_seconds"][0]) * rate))
    waveform = music_like(seconds=clip_samples / rate, sample_rate=rate, seed=0)

    server = None
    if args.url:
        url = args.url
    else:
        server = RestServer(
            models=[ServedModelConfig(name=args.model_name, base_path=str(version_dir.parent))],
            port=0,
            poll_seconds=0,
            workers=args.workers,
        ).start()
        url = server.url
    parts = urlparse(url)
    path = f"/v1/models/{args.model_name}:predict"
    memory = None
    if server is not None and args.memory_body_mib > 0:
        print(f"memory of one {args.memory_body_mib:g} MiB JSON body ...", file=sys.stderr)
        memory = [
            memory_figures(
                url=url, path=path, mebibytes=args.memory_body_mib, sample_rate=rate, decimals=d
            )
            for d in (None, 4)
        ]
    if args.memory_only:
        if server is not None:
            server.shutdown()
        for figures in memory or []:
            print_memory(figures)
        if args.output:
            Path(args.output).write_text(json.dumps({"memory": memory}, indent=2))
        workdir.cleanup()
        return 0 if all(figures["met"] for figures in memory or []) else 1
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)

    def in_process():
        servable.run(SERVING_DEFAULT, {"waveform": waveform[None]})

    rest_model = RestModel(url=url, model_name=args.model_name, payload="wav")
    rest_model.model_info()

    def in_process_wav():
        servable.run(
            SERVING_WAV,
            {"wav_bytes": np.array([encode_wav(waveform, sample_rate=rate)], dtype=object)},
        )

    def rest_wav():
        # The client library's path: float waveform -> 16-bit WAV -> base64 -> JSON body.
        return rest_model.predict([waveform])

    def rest_json():
        body = json.dumps({"instances": [waveform.tolist()]}).encode()
        return post(conn, path, body)

    wav_body = json.dumps(
        {
            "signature_name": SERVING_WAV,
            "instances": [
                {"b64": base64.b64encode(encode_wav(waveform, sample_rate=rate)).decode()}
            ],
        }
    ).encode()
    json_body = json.dumps({"instances": [waveform.tolist()]}).encode()

    print(
        f"model: {model_label}; clip: {clip_samples} samples at {rate} Hz; server: {url}",
        file=sys.stderr,
    )
    print("timing in-process and REST b64 WAV, interleaved ...", file=sys.stderr)
    t = interleaved(
        {"inproc": in_process, "inproc_wav": in_process_wav, "rest_wav": rest_wav}, args.repeats
    )
    t_inproc, t_inproc_wav, t_wav = t["inproc"], t["inproc_wav"], t["rest_wav"]
    print("timing the pieces of the REST b64 WAV path ...", file=sys.stderr)
    wav = encode_wav(waveform, sample_rate=rate)
    wav_b64 = binascii.b2a_base64(wav, newline=False)
    wav_array = np.array([wav], dtype=object)
    pieces = interleaved(
        {
            "client: float -> 16-bit WAV": lambda: encode_wav(waveform, sample_rate=rate),
            "client: base64 encode": lambda: binascii.b2a_base64(wav, newline=False),
            "server: parse body (incl. base64 decode)": lambda: decode_predict_request(
                wav_body, servable
            ),
            "  of which base64 decode (CPython's C codec)": lambda: binascii.a2b_base64(wav_b64),
            "model: serving_wav on WAV bytes": lambda: servable.run(
                SERVING_WAV, {"wav_bytes": wav_array}
            ),
        },
        args.repeats,
    )
    print("timing REST JSON floats ...", file=sys.stderr)
    t_json = timed(rest_json, args.json_repeats, warmup=1)

    # Server-side cost of the JSON body alone (parse + list -> array), without the client's encode.
    t_json_server = timed(lambda: post(conn, path, json_body), args.json_repeats, warmup=0)

    print(f"throughput: {args.clients} clients x {args.requests} requests ...", file=sys.stderr)
    errors = []

    def client():
        c = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
        try:
            for _ in range(args.requests):
                post(c, path, wav_body)
        except Exception as error:  # reported below
            errors.append(repr(error))
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    total = args.clients * args.requests
    conn.close()
    rest_model.close()
    if server is not None:
        server.shutdown()

    rows = [
        ("in process (serving_default)", t_inproc, None),
        ("in process (serving_wav, incl. WAV encode)", t_inproc_wav, None),
        ("REST b64 WAV (serving_wav)", t_wav, len(wav_body)),
        ("REST JSON floats (serving_default)", t_json, len(json_body)),
        ("  of which server only (pre-encoded JSON)", t_json_server, len(json_body)),
    ]
    base = statistics.median(t_inproc)
    print()
    print(f"{'path':<44} {'n':>3} {'p50 ms':>9} {'p99 ms':>9} {'x in-proc':>9} {'body':>10}")
    figures = {"model": model_label, "sample_rate": rate, "clip_samples": clip_samples, "paths": {}}
    for name, times, size in rows:
        p50, p99 = percentile(times, 50), percentile(times, 99)
        ratio = statistics.median(times) / base
        body = f"{size / 1e6:.2f} MB" if size else "-"
        print(f"{name:<44} {len(times):>3} {p50:>9.1f} {p99:>9.1f} {ratio:>9.2f} {body:>10}")
        figures["paths"][name.strip()] = {
            "n": len(times),
            "p50_ms": p50,
            "p99_ms": p99,
            "x_in_process": ratio,
            "body_bytes": size,
        }
    throughput = (total - len(errors)) / elapsed
    print(
        f"\nthroughput, {args.clients} concurrent clients, b64 WAV: {throughput:.1f} requests/s "
        f"({total} requests in {elapsed:.1f} s, {len(errors)} errors); "
        f"in process, one at a time: {1.0 / base:.1f} clips/s"
    )
    print("\nwhere the REST b64 WAV path's time goes (p50 ms, same run):")
    for name, times in pieces.items():
        print(f"  {name:<46} {percentile(times, 50):>7.2f}")
    figures["rest_wav_pieces_p50_ms"] = {n.strip(): percentile(t, 50) for n, t in pieces.items()}
    print(
        "REST b64 WAV over in-process serving_wav (the REST overhead alone): "
        f"{statistics.median(t_wav) / statistics.median(t_inproc_wav):.2f}x"
    )
    print(f"JSON / WAV body size: {len(json_body) / len(wav_body):.1f}x")
    for one in memory or []:
        print_memory(one)
    figures["memory"] = memory
    figures["throughput"] = {
        "clients": args.clients,
        "requests": total,
        "seconds": elapsed,
        "requests_per_second": throughput,
        "errors": errors[:5],
        "in_process_sequential_per_second": 1.0 / base,
    }
    if args.output:
        Path(args.output).write_text(json.dumps(figures, indent=2))
    workdir.cleanup()
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
