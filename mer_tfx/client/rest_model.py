"""Client of TF Serving's REST API (`tensorflow/serving` or `mer serve`): `RestModel`.

`RestModel` has a small API that the in-process `local_model.LocalModel` shares, so
`mer predict` and the timeline work the same against either:

- `model_info()` -> `ModelInfo` (the sample rate the model wants, its preset),
  asked from the model's `model_info` signature;
- `predict(waveforms)` -> one `Prediction` per float32 [samples] waveform at the
  model's rate.

Audio travels as base64 16-bit WAV (`serving_wav`) by default: about 10x smaller
than a JSON list of floats and much faster to parse; its format is the one in
`mer_tfx.contract` that the serving graph parses. `payload="json"` sends the float
waveform to `serving_default` instead. This module imports no TensorFlow and none
of the server's modules.

Examples:

>>> model = RestModel(url="http://localhost:8501", model_name="mer")  # doctest: +SKIP
>>> info = model.model_info()  # doctest: +SKIP
>>> (prediction,) = model.predict([waveform])  # doctest: +SKIP
>>> prediction.quadrant  # doctest: +SKIP
'Q1'
"""

from __future__ import annotations

import binascii
import http.client
import io
import json
import threading
import wave
from typing import List, Sequence
from urllib.parse import urlparse

import numpy as np

from mer_tfx.client.predictions import (
    ModelInfo,
    Prediction,
    ServingError,
    info_from_columns,
    predictions_from_columns,
    same_length_groups,
)
from mer_tfx.contract import (
    MODEL_INFO,
    MODEL_NAME,
    SERVING_WAV,
    WAV_ENCODE_SCALE,
    WAV_SAMPLE_WIDTH_BYTES,
    clip_samples,
)
from mer_tfx.errors import ParameterError

__all__ = ["PAYLOADS", "ModelInfo", "Prediction", "RestModel", "ServingError", "encode_wav"]

PAYLOADS = ("wav", "json")
# Keep each REST request well below the server's default 64 MiB body limit.
_MAX_WAV_BYTES_PER_REQUEST = 32 * 1024 * 1024
_MAX_JSON_BYTES_PER_REQUEST = 32 * 1024 * 1024
# The columnar `serving_wav` body up to its list of {"b64": ...} items.
_WAV_BODY_START = ('{"signature_name":"' + SERVING_WAV + '","inputs":{"wav_bytes":[').encode(
    "ascii"
)
_INT16 = np.iinfo(np.int16)


def encode_wav(waveform: np.ndarray, *, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV file contents of float32 [samples] in [-1, 1] (clipped).

    The wire format of `serving_wav` (`mer_tfx.contract`): samples scaled by
    `WAV_ENCODE_SCALE`, rounded and clipped to int16, written by the standard
    library's `wave` module, whose header is the canonical 44 bytes the serving
    graph reads on its fast path.
    """
    scaled = np.multiply(
        np.asarray(waveform, np.float32).reshape(-1), WAV_ENCODE_SCALE, dtype=np.float32
    )
    np.rint(scaled, out=scaled)
    np.clip(scaled, _INT16.min, _INT16.max, out=scaled)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(WAV_SAMPLE_WIDTH_BYTES)
        writer.setframerate(int(sample_rate))
        writer.writeframes(scaled.astype("<i2"))
    return buffer.getvalue()


class RestModel:
    """The served model behind TF Serving's REST API (`tensorflow/serving` or `mer serve`).

    Args:
        url: server root, e.g. "http://localhost:8501".
        model_name: the served model's name. Defaults to `contract.MODEL_NAME` ("mer").
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
        model_name: str = MODEL_NAME,
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
            answer = self.predict_raw({"signature_name": MODEL_INFO, "inputs": {"unused": [0]}})
            self._info = info_from_columns(answer["outputs"])
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

            info = self.model_info()
            samples = clip_samples(clip_seconds=info.clip_seconds, sample_rate=info.sample_rate)
            waveforms = [
                w if len(w) == 0 else loop_to_length_np(w, num_samples=samples)
                for w in waveforms
            ]
            # ~21 bytes per float as JSON: keep each body well below the 64 MiB limit.
            per_request = max(1, _MAX_JSON_BYTES_PER_REQUEST // (21 * samples))
            by_index: dict = {}
            for group in same_length_groups(waveforms):
                for first in range(0, len(group), per_request):
                    chunk = group[first : first + per_request]
                    batch = np.stack([waveforms[i] for i in chunk]).tolist()
                    answer = self.predict_raw({"inputs": {"waveform": batch}})
                    predictions = predictions_from_columns(answer["outputs"])
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
        body = _WAV_BODY_START + items + b"]}}"
        answer = self.request("POST", f"{self._prefix}:predict", body)
        return predictions_from_columns(answer["outputs"])

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
