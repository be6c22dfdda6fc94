"""Client of the serving model: over TF Serving's REST API, or in process.

Both back ends have the same small API, so `mer predict` and the timeline work
the same against a remote `tensorflow/serving`, the local `mer serve`, or a
pushed SavedModel loaded in this process:

- `model_info()` -> `ModelInfo` (the sample rate the model wants, its preset),
  asked from the model's `model_info` signature;
- `predict(waveforms)` -> one `Prediction` per float32 [samples] waveform at the
  model's rate.

Audio files of any supported format are decoded on the client
(`mer_tfx.audio.load_audio`), since stock TF Serving has no MP3 decoder. Over
REST the audio travels as base64 16-bit WAV (`serving_wav`) by default: about 10x
smaller than a JSON list of floats and much faster to parse. `payload="json"`
sends the float waveform to `serving_default` instead.

Examples:

>>> model = RestModel(url="http://localhost:8501", model_name="mer")  # doctest: +SKIP
>>> info = model.model_info()  # doctest: +SKIP
>>> results, failures = predict_files(["song.mp3"], model=model)  # doctest: +SKIP
>>> results[0].prediction.quadrant  # doctest: +SKIP
'Q1'
"""

from __future__ import annotations

import binascii
import dataclasses
import http.client
import json
import os
import struct
import threading
from pathlib import Path
from typing import List, Sequence, Tuple, Union
from urllib.parse import urlparse

import numpy as np

from mer_tfx.errors import AudioLoadError, MerTfxError, ParameterError

PathLike = Union[str, os.PathLike]
PAYLOADS = ("wav", "json")
# Keep each REST request well below the server's default 64 MiB body limit.
_MAX_WAV_BYTES_PER_REQUEST = 32 * 1024 * 1024
_MAX_JSON_BYTES_PER_REQUEST = 32 * 1024 * 1024


class ServingError(MerTfxError):
    """The model (or the server in front of it) rejected a request.

    Attributes:
        status: the HTTP status (400 for invalid input); 0 when the server is unreachable.
        message: the server's error message.
    """

    def __init__(self, message: str, *, status: int = 400):
        self.status = status
        self.message = message
        super().__init__(message if not status else f"HTTP {status}: {message}")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the served model expects (its `model_info` signature)."""

    sample_rate: int
    clip_seconds: float
    segment_seconds: float
    preset: str


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The model's answer for one clip. Probabilities are P(high)."""

    valence_probability: float
    valence_label: int
    arousal_probability: float
    arousal_label: int
    quadrant: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _predictions_from_columns(columns: dict) -> List[Prediction]:
    def text(value):
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    return [
        Prediction(
            valence_probability=float(v),
            valence_label=int(vl),
            arousal_probability=float(a),
            arousal_label=int(al),
            quadrant=text(q),
        )
        for v, vl, a, al, q in zip(
            columns["valence_probability"],
            columns["valence_label"],
            columns["arousal_probability"],
            columns["arousal_label"],
            columns["quadrant"],
            strict=True,
        )
    ]


def _info_from_columns(columns: dict) -> ModelInfo:
    def first(name):
        value = columns[name][0]
        return value.decode("utf-8") if isinstance(value, bytes) else value

    return ModelInfo(
        sample_rate=int(first("sample_rate")),
        clip_seconds=float(first("clip_seconds")),
        segment_seconds=float(first("segment_seconds")),
        preset=str(first("preset")),
    )


# "RIFF" size "WAVE" "fmt " 16 PCM channels rate byte-rate block-align bits "data" size:
# the canonical 44-byte header, which the serving graph reads with its fast path.
_WAV_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")


def encode_wav(waveform: np.ndarray, *, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV file contents of float32 [samples] in [-1, 1] (clipped).

    The same bytes as the `wave` module writes, in one pass less: scaled, rounded
    and clipped in place in one float32 buffer (~1.1 ms for a 30 s clip at 22.05 kHz).
    """
    scaled = np.multiply(np.asarray(waveform, np.float32).reshape(-1), 32767.0, dtype=np.float32)
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32768.0, 32767.0, out=scaled)
    data = scaled.astype("<i2").tobytes()
    rate = int(sample_rate)
    # fmt: off
    header = _WAV_HEADER.pack(b"RIFF", 36 + len(data), b"WAVE",
                              b"fmt ", 16, 1, 1, rate, 2 * rate, 2, 16,  # PCM, mono, 16 bit
                              b"data", len(data))
    # fmt: on
    return header + data


class RestModel:
    """The served model behind TF Serving's REST API (`tensorflow/serving` or `mer serve`).

    Args:
        url: server root, e.g. "http://localhost:8501".
        model_name: the served model's name. Defaults to "mer".
        version: a numeric version to pin, or None for the latest. Defaults to None.
        payload: "wav" (base64 16-bit WAV to `serving_wav`, recommended) or "json"
            (float lists to `serving_default`). Defaults to "wav".
        timeout: seconds per request. Defaults to 300.

    The connection is kept alive between requests; one instance per thread.
    """

    def __init__(
        self,
        *,
        url: str,
        model_name: str = "mer",
        version: int | None = None,
        payload: str = "wav",
        timeout: float = 300.0,
    ):
        parts = urlparse(url if "//" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ParameterError(f"url must look like http://host:port. Received: url={url!r}")
        if payload not in PAYLOADS:
            raise ParameterError(
                f"payload must be one of {PAYLOADS}. Received: payload={payload!r}"
            )
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.model_name = model_name
        self.version = version
        self.payload = payload
        self._parts = parts
        self._timeout = timeout
        self._local = threading.local()
        self._info: ModelInfo | None = None

    @property
    def _prefix(self) -> str:
        suffix = f"/versions/{self.version}" if self.version is not None else ""
        return f"/v1/models/{self.model_name}{suffix}"

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._parts.scheme == "https"
                else http.client.HTTPConnection
            )
            conn = cls(self._parts.hostname, self._parts.port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def request(self, method: str, path: str, body: bytes | None = None) -> dict:
        """One HTTP call; returns the JSON answer or raises ServingError."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as error:
                conn.close()
                self._local.conn = None
                if attempt == 1 or isinstance(error, TimeoutError):
                    raise ServingError(f"Cannot reach {self.url}: {error}", status=0) from None
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {"error": data[:200].decode("utf-8", "replace")}
        if response.status != 200:
            raise ServingError(str(answer.get("error", answer)), status=response.status)
        return answer

    def status(self) -> dict:
        """GET /v1/models/<name>: the model version status."""
        return self.request("GET", self._prefix)

    def predict_raw(self, payload: dict) -> dict:
        """POST a predict body (`{"instances": ...}` or `{"inputs": ...}`) and return the answer."""
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return self.request("POST", f"{self._prefix}:predict", body)

    def model_info(self) -> ModelInfo:
        if self._info is None:
            answer = self.predict_raw({"signature_name": "model_info", "inputs": {"unused": [0]}})
            self._info = _info_from_columns(answer["outputs"])
        return self._info

    def predict(self, waveforms: Sequence[np.ndarray]) -> List[Prediction]:
        """One prediction per float32 [samples] waveform at the model's sample rate."""
        waveforms = [np.asarray(w, np.float32).reshape(-1) for w in waveforms]
        if not waveforms:
            return []
        if self.payload == "json":
            # Send exactly one clip (looped or cut as the graph would do it, so the
            # result is the same): equal shapes let TF Serving's batching merge requests.
            from mer_tfx.features import loop_to_length_np

            clip_samples = int(
                round(self.model_info().clip_seconds * self.model_info().sample_rate)
            )
            waveforms = [
                w if len(w) == 0 else loop_to_length_np(w, num_samples=clip_samples)
                for w in waveforms
            ]
            # ~21 bytes per float as JSON: keep each body well below the 64 MiB limit.
            per_request = max(1, _MAX_JSON_BYTES_PER_REQUEST // (21 * clip_samples))
            by_index: dict = {}
            for group in _same_length_groups(waveforms):
                for first in range(0, len(group), per_request):
                    chunk = group[first : first + per_request]
                    batch = np.stack([waveforms[i] for i in chunk]).tolist()
                    answer = self.predict_raw({"inputs": {"waveform": batch}})
                    predictions = _predictions_from_columns(answer["outputs"])
                    by_index.update(zip(chunk, predictions, strict=True))
            return [by_index[i] for i in range(len(waveforms))]
        rate = self.model_info().sample_rate
        results = []
        batch: List[bytes] = []
        size = 0
        for waveform in waveforms:
            encoded = binascii.b2a_base64(encode_wav(waveform, sample_rate=rate), newline=False)
            if batch and size + len(encoded) > _MAX_WAV_BYTES_PER_REQUEST:
                results.extend(self._predict_wav(batch))
                batch, size = [], 0
            batch.append(encoded)
            size += len(encoded)
        results.extend(self._predict_wav(batch))
        return results

    def _predict_wav(self, encoded: List[bytes]) -> List[Prediction]:
        # Base64 needs no JSON escaping: building the body from bytes skips json.dumps'
        # scan of megabytes of text (~13 ms per 30 s clip) and any str round trip.
        items = b",".join(b'{"b64":"' + e + b'"}' for e in encoded)
        body = b'{"signature_name":"serving_wav","inputs":{"wav_bytes":[' + items + b"]}}"
        answer = self.request("POST", f"{self._prefix}:predict", body)
        return _predictions_from_columns(answer["outputs"])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _same_length_groups(waveforms: Sequence[np.ndarray]) -> List[List[int]]:
    groups: dict = {}
    for index, waveform in enumerate(waveforms):
        groups.setdefault(len(waveform), []).append(index)
    return list(groups.values())


class LocalModel:
    """A pushed SavedModel loaded in this process (no server).

    Args:
        model_dir: a version folder, a model base path (latest version taken) or a
            Pusher base holding one model name.
    """

    def __init__(self, *, model_dir: PathLike):
        from mer_tfx.serve.servable import Servable, resolve_model_dir

        path = resolve_model_dir(model_dir)
        self.servable = Servable(path=path)
        self.path = path
        self._info: ModelInfo | None = None

    def model_info(self) -> ModelInfo:
        if self._info is None:
            self._info = _info_from_columns(
                self._run("model_info", {"unused": np.zeros([1], np.int32)})
            )
        return self._info

    def _run(self, signature: str, inputs: dict) -> dict:
        import tensorflow as tf

        from mer_tfx.serve.servable import graph_error_message

        try:
            return self.servable.run(signature, inputs)
        except tf.errors.InvalidArgumentError as error:
            raise ServingError(graph_error_message(error), status=400) from None

    def predict(self, waveforms: Sequence[np.ndarray]) -> List[Prediction]:
        """One prediction per float32 [samples] waveform at the model's sample rate."""
        waveforms = [np.asarray(w, np.float32).reshape(-1) for w in waveforms]
        results: dict = {}
        for group in _same_length_groups(waveforms):
            batch = np.stack([waveforms[i] for i in group])
            for index, prediction in zip(
                group,
                _predictions_from_columns(self._run("serving_default", {"waveform": batch})),
                strict=True,
            ):
                results[index] = prediction
        return [results[i] for i in range(len(waveforms))]

    def close(self) -> None:
        """Nothing to release (kept for symmetry with RestModel)."""


def open_model(
    *,
    url: str | None = None,
    model_dir: PathLike | None = None,
    model_name: str = "mer",
    version: int | None = None,
    payload: str = "wav",
) -> Union[RestModel, LocalModel]:
    """A `RestModel` when `url` is given, else a `LocalModel` from `model_dir`."""
    if url:
        return RestModel(url=url, model_name=model_name, version=version, payload=payload)
    if model_dir is None:
        raise ParameterError(
            "Pass --url (a running server) or --model-dir (a pushed model). Received: neither"
        )
    return LocalModel(model_dir=model_dir)


def load_for_model(path: PathLike, *, sample_rate: int) -> np.ndarray:
    """Decodes any supported audio file to float32 mono [samples] at `sample_rate`.

    Raises:
        AudioLoadError: the file is missing or cannot be decoded.
    """
    from mer_tfx.audio import load_audio

    return load_audio(path, sample_rate=sample_rate)


@dataclasses.dataclass(frozen=True)
class FileResult:
    """The prediction for one audio file."""

    path: str
    seconds: float
    prediction: Prediction

    def to_dict(self) -> dict:
        return {"file": self.path, "seconds": round(self.seconds, 3), **self.prediction.to_dict()}


def predict_files(
    paths: Sequence[PathLike], *, model: Union[RestModel, LocalModel]
) -> Tuple[List[FileResult], List[Tuple[str, str]]]:
    """Predicts each file; a file that fails is reported and the others still run.

    Returns:
        (results in input order, failures as (path, reason)).
    """
    rate = model.model_info().sample_rate
    results, failures = [], []
    for path in paths:
        try:
            waveform = load_for_model(path, sample_rate=rate)
            (prediction,) = model.predict([waveform])
        except AudioLoadError as error:
            failures.append((str(path), error.reason))
            continue
        except ServingError as error:
            if error.status == 0:
                raise
            failures.append((str(path), error.message))
            continue
        results.append(
            FileResult(path=str(path), seconds=len(waveform) / rate, prediction=prediction)
        )
    return results, failures


def _level(label: int) -> str:
    return "high" if label else "low"


def format_table(results: Sequence[FileResult]) -> str:
    """A fixed-width table: file, valence P(high) and label, arousal, quadrant."""
    header = ("file", "seconds", "valence", "arousal", "quadrant")
    rows = [
        (
            Path(r.path).name,
            f"{r.seconds:.1f}",
            f"{r.prediction.valence_probability:.3f} {_level(r.prediction.valence_label)}",
            f"{r.prediction.arousal_probability:.3f} {_level(r.prediction.arousal_label)}",
            r.prediction.quadrant,
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
