"""The HTTP side of the REST server: routing TF Serving's URLs, reading bodies, answering JSON.

`RestRequestHandler` maps `/v1/models/<name>[/versions/<v>|/labels/<l>][/metadata|:predict]`
to a model's status, metadata or prediction, enforces the body rules (Content-Length,
no chunked bodies, the size limit) and answers every error as `{"error": ...}` with
its status; `RestHttpServer` holds the served models and bounds how many predictions
run at once. A request can never take the server down: anything unexpected is a 500.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Tuple

from mer_tfx.serve.json_codec import decode_predict_request, encode_predict_response
from mer_tfx.serve.rest_error import RestError
from mer_tfx.serve.servable import Servable, graph_error_message
from mer_tfx.serve.versions import ModelManager

logger = logging.getLogger("mer_tfx.serve")

_PATH_RE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<tail>/metadata|:[A-Za-z]+)?$"
)


class RestRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mer-tfx-rest/0.1"
    timeout = 120  # seconds a client may stay idle mid-request before its thread is freed
    # TCP_NODELAY: the headers and the body are two writes; with Nagle's algorithm the
    # second waits for the client's delayed ACK (~40 ms on Linux) on keep-alive connections.
    disable_nagle_algorithm = True

    server: RestHttpServer

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
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        # Logged before the answer leaves: a client that has its answer finds the request's
        # line in the log even when the server stops right after (request threads are
        # daemons, so a line logged after the send could be lost on Ctrl-C).
        logger.info(
            '%s "%s %s" %d %dB %.1fms',
            self.client_address[0],
            method,
            self.path,
            status,
            len(body),
            (time.perf_counter() - started) * 1000.0,
        )
        self._send_json(status, body, extra_headers, head_only=method == "HEAD")

    def _send_json(self, status: int, body: bytes, headers: dict, *, head_only: bool) -> None:
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


class RestHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address, *, models: Dict[str, ModelManager], max_request_bytes: int, workers: int
    ):
        super().__init__(address, RestRequestHandler)
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
