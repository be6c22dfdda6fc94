"""A local server that speaks TensorFlow Serving's REST API.

Serves the TFX Pusher's directory (`<model_base_path>/<numeric version>/saved_model.pb`)
with the endpoints and JSON of TF Serving's REST API, so that code written against
`tensorflow/serving` works unchanged against this server, and the other way round:

    GET  /v1/models/<name>[/versions/<v>|/labels/<l>]             model status
    GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata    signature defs
    POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict     predictions

Predict accepts the row format (`{"signature_name"?, "instances": [...]}` ->
`{"predictions": [...]}`) and the columnar format (`{"inputs": ...}` ->
`{"outputs": ...}`); string inputs may be sent as `{"b64": "..."}`, and outputs
whose name ends in `_bytes` come back base64-encoded, as TF Serving does.

New versions pushed into a model base path are picked up without a restart: a
poller scans the folder every `poll_seconds`, loads new versions in the
background and switches to them only once they are loaded (the old version keeps
serving meanwhile). The version policy is TF Serving's (`latest` N, `all`,
`specific`), settable from a `models.config` file.

Errors are answered like TF Serving: `{"error": "<message>"}` with 400 for invalid
input (bad JSON, wrong shape or dtype, the model's in-graph checks), 404 for an
unknown model, version, label or signature, 405 for a wrong HTTP method, 411 for a
body without Content-Length, 413 for a body over `max_request_bytes`. Only genuine
internal faults give 500; a request can never take the server down.

Examples:

>>> server = RestServer(models=[ServedModelConfig(name="mer", base_path="serving/mer")], port=0)  # doctest: +SKIP
>>> server.start()  # doctest: +SKIP
>>> server.url  # doctest: +SKIP
'http://127.0.0.1:40123'
>>> server.shutdown()  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import logging
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple, Union

import numpy as np

from mer_tfx.errors import ParameterError
from mer_tfx.serve.servable import (
    SAVED_MODEL_FILES,
    Servable,
    graph_error_message,
    is_saved_model_dir,
    list_versions,
)

logger = logging.getLogger("mer_tfx.serve")

PathLike = Union[str, os.PathLike]
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_SIGNATURE = "serving_default"
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_PATH_RE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<tail>/metadata|:[A-Za-z]+)?$"
)


class RestError(Exception):
    """An error answered to the client as `{"error": message}` with an HTTP status."""

    def __init__(self, status: int, message: str, *, allow: str = ""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.allow = allow  # the Allow header of a 405


# --------------------------------------------------------------------------- config


@dataclasses.dataclass(frozen=True)
class ServedModelConfig:
    """One served model, like an entry of TF Serving's `model_config_list`.

    Args:
        name: the model name in URLs (`/v1/models/<name>`).
        base_path: folder holding the numeric version folders.
        version_policy: "latest", "all" or "specific". Defaults to "latest".
        num_versions: how many of the latest versions to serve. Defaults to 1.
        versions: the versions served by the "specific" policy.
        version_labels: label -> version (`/v1/models/<name>/labels/<label>`).
    """

    name: str
    base_path: str
    version_policy: str = "latest"
    num_versions: int = 1
    versions: Tuple[int, ...] = ()
    version_labels: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not self.name or "/" in self.name or ":" in self.name:
            raise ParameterError(
                f"Model names must be non-empty without '/' or ':'. Received: name={self.name!r}"
            )
        if self.version_policy not in ("latest", "all", "specific"):
            raise ParameterError(
                "version_policy must be 'latest', 'all' or 'specific'. "
                f"Received: version_policy={self.version_policy!r}"
            )
        if self.num_versions < 1:
            raise ParameterError(
                f"num_versions must be >= 1. Received: num_versions={self.num_versions}"
            )
        if self.version_policy == "specific" and not self.versions:
            raise ParameterError(
                f"The 'specific' policy needs versions. Received: versions={self.versions!r}"
            )

    def desired_versions(self, available: Sequence[int]) -> List[int]:
        """The versions this policy serves out of those on disk, ascending."""
        available = sorted(available)
        if self.version_policy == "all":
            return available
        if self.version_policy == "specific":
            return [v for v in available if v in set(self.versions)]
        return available[-self.num_versions :]


def load_models_config(path: PathLike) -> List[ServedModelConfig]:
    """Reads a TF Serving `models.config` (text `ModelServerConfig` with a model_config_list).

    Relative base paths are taken relative to the config file's folder (TF Serving
    would take them relative to its working directory; in a container they are absolute).

    Raises:
        ParameterError: the file is missing, does not parse, or has no model.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ParameterError(
            f"Cannot read the models config. Received: path={str(path)!r} ({error})"
        ) from None
    config = model_server_config_pb2.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise ParameterError(
            f"models config does not parse: {error}. Received: path={str(path)!r}"
        ) from None
    result = []
    for model in config.model_config_list.config:
        policy = model.model_version_policy.WhichOneof("policy_choice") or "latest"
        base = Path(model.base_path)
        if not base.is_absolute():
            base = path.parent / base
        kwargs: Dict[str, Any] = {"version_policy": policy}
        if policy == "latest" and model.model_version_policy.latest.num_versions:
            kwargs["num_versions"] = int(model.model_version_policy.latest.num_versions)
        if policy == "specific":
            kwargs["versions"] = tuple(int(v) for v in model.model_version_policy.specific.versions)
        result.append(
            ServedModelConfig(
                name=model.name,
                base_path=str(base),
                version_labels={k: int(v) for k, v in model.version_labels.items()},
                **kwargs,
            )
        )
    if not result:
        raise ParameterError(f"The models config lists no model. Received: path={str(path)!r}")
    return result


# --------------------------------------------------------------------------- models


class ModelManager:
    """Keeps the versions of one model that its policy wants loaded, polling the disk.

    Loading happens on the poller thread; requests keep using the versions already
    loaded until the new set is ready, then switch atomically.

    Args:
        config: the model's name, base path and version policy.
        poll_seconds: seconds between scans of the base path; 0 disables polling
            (call `refresh()` yourself).
    """

    _MAX_LOAD_ATTEMPTS = 3
    _SETTLE_SECONDS = 0.5

    def __init__(self, config: ServedModelConfig, *, poll_seconds: float = 2.0):
        self.config = config
        self.poll_seconds = float(poll_seconds)
        self._lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._servables: Dict[int, Servable] = {}
        # version -> (state, error_code, error_message), TF Serving's ModelVersionStatus.
        self._states: Dict[int, Tuple[str, str, str]] = {}
        # version -> ((mtime_ns, size) of its saved_model.pb, failed attempts).
        self._failures: Dict[int, Tuple[Tuple[int, int], int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = False  # the first scan loads at once; later ones let files settle

    @property
    def name(self) -> str:
        return self.config.name

    def refresh(self) -> None:
        """Scans the base path once: loads wanted versions, unloads unwanted ones."""
        with self._refresh_lock:
            available = list_versions(self.config.base_path)
            wanted = self.config.desired_versions(available)
            loaded = dict(self._servables)
            for version in wanted:
                if version in loaded:
                    continue
                servable = self._try_load(version)
                if servable is not None:
                    loaded[version] = servable
            # Unload what the policy no longer wants, but never drop the last served
            # version while no wanted version could be loaded.
            keep = {v: s for v, s in loaded.items() if v in wanted}
            if not keep and loaded and any(v in available for v in loaded):
                keep = {max(loaded): loaded[max(loaded)]}
            with self._lock:
                for version in set(self._servables) - set(keep):
                    self._states[version] = ("END", "OK", "")
                    logger.info("model %s: unloaded version %d", self.name, version)
                self._servables = keep
                for version in keep:
                    self._states[version] = ("AVAILABLE", "OK", "")

    def _try_load(self, version: int) -> Servable | None:
        path = Path(self.config.base_path) / str(version)
        # saved_model.pb is the completion marker (the TFX Pusher copies it last, as TF
        # Serving expects). Wait until it has not changed for a moment, so a file still
        # being written is not read; a failed load is retried while the file changes.
        try:
            stat = next(
                (path / name).stat() for name in SAVED_MODEL_FILES if (path / name).exists()
            )
        except (StopIteration, OSError):
            return None
        if self._started and time.time() - stat.st_mtime < self._SETTLE_SECONDS:
            return None
        mtime = (stat.st_mtime_ns, stat.st_size)
        last_mtime, attempts = self._failures.get(version, (None, 0))
        if last_mtime == mtime and attempts >= self._MAX_LOAD_ATTEMPTS:
            return None
        with self._lock:
            self._states[version] = ("LOADING", "OK", "")
        started = time.perf_counter()
        try:
            servable = Servable(path=path, version=version)
        except Exception as error:  # a broken or half-written SavedModel must not stop the poller
            attempts = attempts + 1 if last_mtime == mtime else 1
            self._failures[version] = (mtime, attempts)
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            message = f"Failed to load version {version} of model {self.name}: {reason}"
            with self._lock:
                self._states[version] = ("END", "UNKNOWN", message)
            logger.warning("%s (attempt %d)", message, attempts)
            return None
        self._failures.pop(version, None)
        logger.info(
            "model %s: loaded version %d from %s in %.1f s",
            self.name,
            version,
            path,
            time.perf_counter() - started,
        )
        return servable

    def start(self) -> None:
        """Loads the current versions now, then keeps polling in a daemon thread."""
        self.refresh()
        self._started = True
        if self.poll_seconds > 0 and self._thread is None:
            self._thread = threading.Thread(
                target=self._poll, name=f"poll-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # keep polling whatever happens on disk
                logger.exception("model %s: polling %s failed", self.name, self.config.base_path)

    def served_versions(self) -> List[int]:
        with self._lock:
            return sorted(self._servables)

    def servable(self, *, version: int | None = None, label: str | None = None) -> Servable:
        """The servable for a request: latest served version, a given version or a label.

        Raises:
            RestError: 404 when nothing matches (TF Serving's "Servable not found").
        """
        with self._lock:
            servables = dict(self._servables)
        if label is not None:
            if label not in self.config.version_labels:
                raise RestError(404, f"Unrecognized servable version label: {label}")
            version = self.config.version_labels[label]
        if version is None:
            if not servables:
                raise RestError(404, f"Servable not found for request: Latest({self.name})")
            return servables[max(servables)]
        if version not in servables:
            raise RestError(
                404, f"Servable not found for request: Specific({self.name}, {version})"
            )
        return servables[version]

    def status(self, *, version: int | None = None, label: str | None = None) -> dict:
        """TF Serving's GetModelStatus response as JSON."""
        if label is not None:
            if label not in self.config.version_labels:
                raise RestError(404, f"Unrecognized servable version label: {label}")
            version = self.config.version_labels[label]
        with self._lock:
            states = dict(self._states)
        if version is not None:
            if version not in states:
                raise RestError(404, f"Could not find version {version} of model {self.name}")
            states = {version: states[version]}
        elif not states:
            raise RestError(404, f"Could not find any versions of model {self.name}")
        return {
            "model_version_status": [
                {
                    "version": str(v),
                    "state": state,
                    "status": {"error_code": code, "error_message": message},
                }
                for v, (state, code, message) in sorted(states.items(), reverse=True)
            ]
        }


# --------------------------------------------------------------------------- JSON <-> tensors


_WEB_SAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# `"b64": "` where a base64 value starts; JSON whitespace around the colon allowed.
_B64_VALUE_START = re.compile(rb'"b64"[ \t\r\n]*:[ \t\r\n]*"')
# Values shorter than this go through json.loads as usual (not worth lifting).
_LIFT_MIN_CHARS = 4096


def _parse_json_lifting_b64(body: bytes) -> Tuple[Any, Dict[str, bytes]]:
    """`json.loads(body)`, with large base64 values cut out of the text first.

    A 30 s clip is 1.76 MB of base64, and json.loads spends ~1.5 ms copying it into
    a str and scanning it for escapes. Base64 holds neither quotes nor backslashes,
    so a `"b64": "...` value ends at the next quote: each large value without a
    backslash is replaced by a placeholder string unique to this request, and
    `_decode_strings` decodes the original bytes where the placeholder lands. The
    parse tree is json.loads' own with those strings swapped, so the checks
    downstream are unchanged. A character json.loads would reject inside a lifted
    value (a raw control character, invalid UTF-8) is outside the base64 alphabet,
    so the strict decode answers 400 for it instead.

    Returns:
        (parsed JSON, {placeholder: base64 bytes}).
    """
    lifted: Dict[str, bytes] = {}
    pieces: List[bytes] = []
    copied = search = 0
    nonce = ""
    while True:
        match = _B64_VALUE_START.search(body, search)
        if match is None:
            break
        start = match.end()
        end = body.find(b'"', start)
        if end < 0:
            break
        if end - start >= _LIFT_MIN_CHARS and body.find(b"\\", start, end) < 0:
            nonce = nonce or os.urandom(8).hex()
            placeholder = f"{nonce}:{len(lifted)}"
            # "\u0000" in the JSON text: a NUL first character, which no base64 text has.
            pieces += [body[copied:start], b"\\u0000" + placeholder.encode("ascii")]
            lifted["\x00" + placeholder] = body[start:end]
            copied = end
        search = end + 1
    if not lifted:
        return json.loads(body), lifted
    pieces.append(body[copied:])
    try:
        return json.loads(b"".join(pieces)), lifted
    except ValueError:
        # Malformed elsewhere: parse the client's own text, so the error's line and
        # column point into the request as sent.
        return json.loads(body), {}


def _b64decode(text: str | bytes, where: str) -> bytes:
    """Strict base64 (standard or web-safe alphabet) -> bytes, or RestError(400).

    `base64.b64decode(validate=True)` checks with a regular expression (~20 ms for
    a 30 s WAV). The lenient C decoder skips characters outside the alphabet, so a
    decoded length different from what the text's length implies means the text
    was not valid base64: the same check for free.
    """
    if isinstance(text, str):
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError:
            raise RestError(400, f"{where}: invalid base64 in b64 value") from None
    if b"-" in text or b"_" in text:
        text = text.translate(_WEB_SAFE_TO_STANDARD)
    if len(text) % 4:
        raise RestError(400, f"{where}: invalid base64 in b64 value (length not a multiple of 4)")
    try:
        data = binascii.a2b_base64(text)
    except (binascii.Error, ValueError):
        raise RestError(400, f"{where}: invalid base64 in b64 value") from None
    padding = 2 if text.endswith(b"==") else 1 if text.endswith(b"=") else 0
    if len(data) != len(text) // 4 * 3 - padding:
        raise RestError(400, f"{where}: invalid base64 in b64 value")
    return data


def _decode_strings(value: Any, where: str, lifted: Mapping[str, bytes]) -> Any:
    """Nested JSON (str or {"b64": ...}) -> nested bytes; `lifted` as in `_parse_json_lifting_b64`."""
    if isinstance(value, list):
        return [_decode_strings(item, where, lifted) for item in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise RestError(400, f'{where}: a string value must be a string or {{"b64": "..."}}')
        return _b64decode(lifted.get(value["b64"], value["b64"]), where)
    if isinstance(value, str):
        original = lifted.get(value)
        return value.encode("utf-8") if original is None else original
    raise RestError(
        400, f"{where}: expected a string for DT_STRING, got {type(value).__name__} {value!r:.40}"
    )


def _shape_of(value: Any, where: str) -> Tuple[int, ...]:
    if isinstance(value, list):
        if not value:
            return (0,)
        shapes = {_shape_of(item, where) for item in value}
        if len(shapes) != 1:
            raise RestError(
                400, f"{where}: all lists at one depth must have the same length (ragged tensor)"
            )
        return (len(value),) + shapes.pop()
    return ()


def _to_array(
    value: Any, *, dtype, where: str, lifted: Mapping[str, bytes] | None = None
) -> np.ndarray:
    """A JSON value -> NumPy array of a signature input's dtype, or RestError(400)."""
    import tensorflow as tf

    if dtype == tf.string:
        decoded = _decode_strings(value, where, lifted or {})
        shape = _shape_of(decoded, where)
        flat: list = []

        def flatten(item):
            if isinstance(item, list):
                for x in item:
                    flatten(x)
            else:
                flat.append(item)

        flatten(decoded)
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise RestError(
            400, f"{where}: values must form a rectangular array of numbers (ragged or mixed)"
        ) from None
    if array.dtype.kind not in "biuf" and not (array.size == 0 and array.dtype.kind in "f"):
        raise RestError(
            400,
            f"{where}: expected numbers for {dtype.name}, got {_describe_kind(array)}",
        )
    if dtype.is_floating:
        if array.dtype.kind == "f" and array.size:
            finite = np.isfinite(array)
            if not finite.all():
                pass  # NaN/inf reach the model, whose checks reject them (like TF Serving)
            elif dtype == tf.float32 and float(np.max(np.abs(array))) > _FLOAT32_MAX:
                raise RestError(
                    400, f"{where}: value out of range for DT_FLOAT (|x| > {_FLOAT32_MAX:.4g})"
                )
        return array.astype(dtype.as_numpy_dtype, copy=False)
    if dtype.is_integer or dtype == tf.bool:
        if array.dtype.kind == "f":
            raise RestError(
                400, f"{where}: expected integers for {dtype.name}, got floating point values"
            )
        if dtype.is_integer and array.size:
            low, high = int(array.min()), int(array.max())
            if low < dtype.min or high > dtype.max:
                raise RestError(
                    400, f"{where}: value out of range for {dtype.name}: [{low}, {high}]"
                )
        return array.astype(dtype.as_numpy_dtype, copy=False)
    raise RestError(400, f"{where}: inputs of dtype {dtype.name} are not supported by this server")


def _describe_kind(array: np.ndarray) -> str:
    return {"U": "strings", "S": "bytes", "O": "mixed or null values"}.get(
        array.dtype.kind, str(array.dtype)
    )


def _check_shape(array: np.ndarray, spec, where: str) -> None:
    expected = spec.shape
    if expected.rank is None:
        return
    dims = expected.as_list()
    if array.ndim != len(dims) or any(
        d is not None and d != a for d, a in zip(dims, array.shape, strict=True)
    ):
        shown = "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
        raise RestError(
            400,
            f"{where}: expected a tensor of shape {shown} ({spec.dtype.name}), got shape {list(array.shape)}",
        )


def decode_predict_request(
    body: bytes, servable: Servable
) -> Tuple[str, Dict[str, np.ndarray], bool]:
    """Parses a `:predict` body for a servable.

    Returns:
        (signature name, {input name: array}, row_format).

    Raises:
        RestError: 400 for malformed requests, 404 for an unknown signature.
    """
    try:
        request, lifted = _parse_json_lifting_b64(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RestError(400, f"JSON Parse error: {error}") from None
    if not isinstance(request, dict):
        raise RestError(
            400, "JSON Value: the request must be a JSON object with 'instances' or 'inputs'"
        )
    signature_name = request.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(signature_name, str):
        raise RestError(400, f"'signature_name' must be a string. Received: {signature_name!r:.40}")
    has_instances, has_inputs = "instances" in request, "inputs" in request
    if has_instances == has_inputs:
        raise RestError(
            400,
            "Missing 'inputs' or 'instances' key"
            if not has_instances
            else "Not both 'inputs' and 'instances' keys",
        )
    if not servable.has_signature(signature_name):
        raise RestError(
            404,
            f'Serving signature name: "{signature_name}" not found in signature def. '
            f"Available: {', '.join(servable.signature_names)}",
        )
    specs = servable.input_specs(signature_name)
    names = sorted(specs)
    if has_instances:
        instances = request["instances"]
        if not isinstance(instances, list) or not instances:
            raise RestError(
                400, "'instances' must be a non-empty JSON list, one element per example"
            )
        columns: Dict[str, list] = {name: [] for name in names}
        for index, instance in enumerate(instances):
            named = isinstance(instance, dict) and set(instance) != {"b64"}
            if named:
                if set(instance) != set(names):
                    raise RestError(
                        400,
                        f"instances[{index}]: expected the inputs {names}, got {sorted(instance)}",
                    )
                for name in names:
                    columns[name].append(instance[name])
            elif len(names) == 1:
                columns[names[0]].append(instance)
            else:
                raise RestError(
                    400,
                    f"instances[{index}]: the signature has inputs {names}; send objects keyed by name",
                )
        raw = columns
    else:
        inputs = request["inputs"]
        if isinstance(inputs, dict) and set(inputs) != {"b64"}:
            if set(inputs) != set(names):
                raise RestError(400, f"'inputs': expected the inputs {names}, got {sorted(inputs)}")
            raw = inputs
        elif len(names) == 1:
            raw = {names[0]: inputs}
        else:
            raise RestError(
                400, f"'inputs': the signature has inputs {names}; send an object keyed by name"
            )
    arrays = {}
    for name in names:
        where = f"input '{name}'"
        array = _to_array(raw[name], dtype=specs[name].dtype, where=where, lifted=lifted)
        _check_shape(array, specs[name], where)
        arrays[name] = array
    return signature_name, arrays, has_instances


def _jsonable(name: str, array: np.ndarray) -> Any:
    if array.dtype == object or array.dtype.kind == "S":
        as_b64 = name.endswith("_bytes")

        def convert(item):
            if isinstance(item, list):
                return [convert(x) for x in item]
            if as_b64:
                return {"b64": base64.b64encode(item).decode("ascii")}
            return item.decode("utf-8", errors="replace")

        return convert(array.tolist())
    return array.tolist()


def encode_predict_response(outputs: Mapping[str, np.ndarray], *, row_format: bool) -> dict:
    """Model outputs -> TF Serving's `{"predictions": ...}` or `{"outputs": ...}`."""
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return {"outputs": _jsonable(names[0], outputs[names[0]])}
        return {"outputs": {name: _jsonable(name, outputs[name]) for name in names}}
    batch_sizes = {outputs[name].shape[0] if outputs[name].ndim else None for name in names}
    if len(batch_sizes) != 1 or None in batch_sizes:
        raise RestError(
            500, "Output tensors do not share one batch size; use the columnar 'inputs' format"
        )
    columns = {name: _jsonable(name, outputs[name]) for name in names}
    if len(names) == 1:
        return {"predictions": columns[names[0]]}
    size = batch_sizes.pop()
    return {"predictions": [{name: columns[name][i] for name in names} for i in range(size)]}


# --------------------------------------------------------------------------- HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mer-tfx-rest/0.1"
    timeout = 120  # seconds a client may stay idle mid-request before its thread is freed
    # TCP_NODELAY: the headers and the body are two writes; with Nagle's algorithm the
    # second waits for the client's delayed ACK (~40 ms on Linux) on keep-alive connections.
    disable_nagle_algorithm = True

    server: _HttpServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's API
        logger.debug("%s %s", self.address_string(), format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's protocol errors (414 URI too long, bad request line, ...) as JSON too."""
        self.close_connection = True
        phrase = self.responses.get(code, ("Error", ""))[0]
        body = json.dumps({"error": f"{phrase}: {message}" if message else phrase}).encode("utf-8")
        logger.info(
            '%s "%s" %d (protocol error)', self.client_address[0], self.requestline[:200], code
        )
        try:
            self.send_response(code, message)
            self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._handle("OPTIONS")

    def _handle(self, method: str) -> None:
        started = time.perf_counter()
        self._body_read = False
        status, payload, extra_headers = 500, {"error": "internal error"}, {}
        try:
            status, payload = self._route(method)
        except RestError as error:
            status, payload = error.status, {"error": error.message}
            if status == 405:
                extra_headers["Allow"] = error.allow
        except Exception as error:  # a request must never take the server down
            logger.exception("internal error on %s %s", method, self.path)
            status, payload = 500, {"error": f"Internal error: {type(error).__name__}: {error}"}
        if not self._body_read and (self.headers.get("Content-Length") or "0").strip() != "0":
            self.close_connection = True  # the unread body would corrupt the next request
        sent = self._send_json(status, payload, extra_headers, head_only=method == "HEAD")
        logger.info(
            '%s "%s %s" %d %dB %.1fms',
            self.client_address[0],
            method,
            self.path,
            status,
            sent,
            (time.perf_counter() - started) * 1000.0,
        )

    def _send_json(self, status: int, payload: dict, headers: dict, *, head_only: bool) -> int:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            # Headers and body in one write (one TCP segment for small answers).
            self._headers_buffer.append(b"\r\n")
            if not head_only:
                self._headers_buffer.append(body)
            self.flush_headers()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        return len(body)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise RestError(411, "Chunked request bodies are not supported; send Content-Length")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise RestError(411, "A POST body needs a Content-Length header")
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise RestError(400, f"Invalid Content-Length: {length_header!r}") from None
        limit = self.server.max_request_bytes
        if length > limit:
            self._drain(length, limit)
            raise RestError(
                413,
                f"Request body of {length} bytes exceeds the limit of {limit} bytes (--max-request-bytes)",
            )
        body = self.rfile.read(length)
        self._body_read = True
        if len(body) != length:
            self.close_connection = True
            raise RestError(400, f"Request body ended after {len(body)} of {length} bytes")
        return body

    def _drain(self, length: int, limit: int) -> None:
        """Reads and drops an oversize body (up to limit + 64 MiB) so the client sees the answer."""
        self.close_connection = True
        budget = min(length, limit + 64 * 1024 * 1024)
        while budget > 0:
            chunk = self.rfile.read(min(budget, 1 << 20))
            if not chunk:
                break
            budget -= len(chunk)
        self._body_read = True

    def _route(self, method: str) -> Tuple[int, dict]:
        path = self.path.split("?", 1)[0]
        match = _PATH_RE.match(path)
        if not match:
            raise RestError(404, f"Malformed request: {method} {path}")
        manager = self.server.models.get(match["name"])
        version = int(match["version"]) if match["version"] is not None else None
        label = match["label"]
        tail = match["tail"]
        if tail is None or tail == "/metadata":
            if method not in ("GET", "HEAD"):
                raise RestError(
                    405, f"Method {method} not allowed for {path}; use GET", allow="GET"
                )
            if manager is None:
                raise RestError(404, f"Servable not found for request: Latest({match['name']})")
            if tail is None:
                return 200, manager.status(version=version, label=label)
            servable = manager.servable(version=version, label=label)
            return 200, {
                "model_spec": {
                    "name": manager.name,
                    "signature_name": "",
                    "version": str(servable.version),
                },
                "metadata": {"signature_def": servable.signature_def_map()},
            }
        verb = tail[1:]
        if verb not in ("predict", "classify", "regress"):
            raise RestError(404, f"Malformed request: {method} {path} (unknown verb {verb!r})")
        if method != "POST":
            raise RestError(405, f"Method {method} not allowed for {path}; use POST", allow="POST")
        body = self._read_body()
        if manager is None:
            raise RestError(404, f"Servable not found for request: Latest({match['name']})")
        servable = manager.servable(version=version, label=label)
        if verb != "predict":
            raise RestError(400, f"The {verb} API is not supported by this server; use :predict")
        return 200, self.server.predict(servable, body)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address, *, models: Dict[str, ModelManager], max_request_bytes: int, workers: int
    ):
        super().__init__(address, _Handler)
        self.models = models
        self.max_request_bytes = max_request_bytes
        self._slots = threading.BoundedSemaphore(workers)

    def predict(self, servable: Servable, body: bytes) -> dict:
        import tensorflow as tf

        signature_name, inputs, row_format = decode_predict_request(body, servable)
        with self._slots:
            try:
                outputs = servable.run(signature_name, inputs)
            except (
                tf.errors.InvalidArgumentError,
                tf.errors.OutOfRangeError,
                tf.errors.FailedPreconditionError,
            ) as error:
                raise RestError(400, graph_error_message(error)) from None
            except (TypeError, ValueError) as error:
                # Raised by the signature's argument checks (e.g. a dtype it cannot convert).
                raise RestError(400, graph_error_message(error)) from None
        return encode_predict_response(outputs, row_format=row_format)


class RestServer:
    """TF Serving's REST API over one or more model base paths.

    Args:
        models: the served models (name, base path, version policy).
        host: interface to bind. Defaults to "127.0.0.1".
        port: TCP port; 0 picks a free one. Defaults to 8501 (TF Serving's REST port).
        poll_seconds: seconds between scans for new versions; 0 disables. Defaults to 2.
        max_request_bytes: larger bodies get 413. Defaults to 64 MiB.
        workers: predictions run at the same time (others wait). Defaults to 2.
    """

    def __init__(
        self,
        *,
        models: Sequence[ServedModelConfig],
        host: str = "127.0.0.1",
        port: int = 8501,
        poll_seconds: float = 2.0,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        workers: int = 2,
    ):
        if not models:
            raise ParameterError("At least one model is needed. Received: models=[]")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ParameterError(f"Model names must be unique. Received: {names}")
        if max_request_bytes <= 0:
            raise ParameterError(
                f"max_request_bytes must be positive. Received: max_request_bytes={max_request_bytes}"
            )
        if workers < 1:
            raise ParameterError(f"workers must be >= 1. Received: workers={workers}")
        if poll_seconds < 0:
            raise ParameterError(
                f"poll_seconds must be >= 0. Received: poll_seconds={poll_seconds}"
            )
        self.managers = {m.name: ModelManager(m, poll_seconds=poll_seconds) for m in models}
        self._host, self._port = host, port
        self._max_request_bytes = int(max_request_bytes)
        self._workers = int(workers)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://host:port` the server listens on (the real port when 0 was asked)."""
        if self._httpd is None:
            raise ParameterError("The server is not started. Call start() first.")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def bind(self) -> RestServer:
        """Loads the models and binds the socket (without serving yet)."""
        if self._httpd is None:
            for manager in self.managers.values():
                manager.start()
            self._httpd = _HttpServer(
                (self._host, self._port),
                models=self.managers,
                max_request_bytes=self._max_request_bytes,
                workers=self._workers,
            )
        return self

    def serve_forever(self) -> None:
        """Serves in this thread until `shutdown()` (or KeyboardInterrupt)."""
        self.bind()._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> RestServer:
        """Serves in a daemon thread; returns at once."""
        self.bind()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stops serving and polling; safe to call twice."""
        for manager in self.managers.values():
            manager.stop()
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()
                self._thread.join(timeout=30)
                self._thread = None
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> RestServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()


def model_configs_from_args(
    *,
    model_name: str = "mer",
    model_base_path: PathLike | None = None,
    model_config_file: PathLike | None = None,
) -> List[ServedModelConfig]:
    """Served models from `--model-name/--model-base-path` or a `models.config` file.

    A base path that holds a SavedModel directly, or that holds a single model-name folder
    (the Pusher's `<serving dir>/<name>/<version>`), is resolved to the folder of versions.
    """
    if model_config_file is not None:
        return load_models_config(model_config_file)
    if model_base_path is None:
        raise ParameterError("Pass a model base path or a models config file. Received: neither")
    base = Path(model_base_path)
    if is_saved_model_dir(base):
        raise ParameterError(
            "The model base path must hold numeric version folders, not a SavedModel itself. "
            f"Received: model_base_path={str(base)!r}; use its parent folder"
        )
    if not list_versions(base) and (base / model_name).is_dir():
        base = base / model_name
    return [ServedModelConfig(name=model_name, base_path=str(base))]
