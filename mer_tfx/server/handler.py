"""The HTTP side of the REST server: routing TF Serving's URLs, reading bodies, answering JSON.

`RestRequestHandler` maps `/v1/models/<name>[/versions/<v>|/labels/<l>][/metadata|:predict]`
to a model's status, metadata or prediction, enforces the body rules (Content-Length,
no chunked bodies, the size limit) and answers every error as `{"error": ...}` with
its status; `RestHttpServer` holds the served models and bounds how many predictions
run at once. A request can never take the server down: anything unexpected is a 500.

The edge is bounded too: each connection waits at most `idle_timeout_seconds` for a
byte (between requests and within one), reading one request (line, headers, body) may
take at most `read_deadline_seconds` from its first byte, and above `max_connections`
open connections a new one is answered 503 at once. `drain()` lets the requests in
flight finish and closes idle connections, for a clean stop on SIGTERM.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Set, Tuple

from mer_tfx.server.json_codec import decode_predict_request, encode_predict_response
from mer_tfx.server.rest_error import RestError
from mer_tfx.server.servable import Servable, graph_error_message
from mer_tfx.server.versions import ModelManager

logger = logging.getLogger("mer_tfx.server")

_PATH_RE = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[0-9]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<tail>/metadata|:[A-Za-z]+)?$"
)


class _DeadlineReader(io.RawIOBase):
    """A connection's reads: each waits at most `idle_seconds`, and all the reads of one
    request at most `deadline_seconds` from the request's first byte.

    A per-read timeout alone lets a client that sends a byte now and then hold its thread
    forever; the deadline bounds the whole request. `next_request()` starts waiting for
    the next request (idle, no deadline), `request_read()` ends the deadline once the body
    is in (the prediction and the answer are not the client's reading time).
    """

    def __init__(self, sock: socket.socket, *, idle_seconds: float, deadline_seconds: float):
        super().__init__()
        self._sock = sock
        self._idle_seconds = idle_seconds
        self._deadline_seconds = deadline_seconds
        self.waiting = True  # between requests: the next byte starts a request
        self._deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        timeout = self._idle_seconds
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"request not read within {self._deadline_seconds:g} s")
            timeout = min(timeout, remaining)
        self._sock.settimeout(timeout)
        try:
            count = self._sock.recv_into(buffer)
        except TimeoutError:
            if self._deadline is not None and self._deadline <= time.monotonic():
                raise TimeoutError(
                    f"request not read within {self._deadline_seconds:g} s"
                ) from None
            raise TimeoutError(f"no byte for {self._idle_seconds:g} s") from None
        if count and self.waiting:
            self.waiting = False
            self._deadline = time.monotonic() + self._deadline_seconds
        return count

    def next_request(self) -> None:
        self.waiting, self._deadline = True, None

    def request_read(self) -> None:
        self._deadline = None


class RestRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mer-tfx-rest/0.1"
    timeout = None  # the reads' timeouts are _DeadlineReader's
    # TCP_NODELAY: the headers and the body are two writes; with Nagle's algorithm the
    # second waits for the client's delayed ACK (~40 ms on Linux) on keep-alive connections.
    disable_nagle_algorithm = True

    server: RestHttpServer

    def setup(self) -> None:
        super().setup()
        self._reader = _DeadlineReader(
            self.connection,
            idle_seconds=self.server.idle_timeout_seconds,
            deadline_seconds=self.server.read_deadline_seconds,
        )
        self.rfile = io.BufferedReader(self._reader)
        self.server.opened(self)

    def finish(self) -> None:
        self.server.closed(self)
        try:
            super().finish()
        finally:
            self._reader.close()

    @property
    def idle(self) -> bool:
        """Waiting for a request (not reading, running or answering one)."""
        return self._reader.waiting

    def handle_one_request(self) -> None:
        self._reader.next_request()
        if self.server.draining:
            self.close_connection = True
            return
        super().handle_one_request()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's API
        logger.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args) -> None:  # noqa: A002
        # http.server calls this for a connection it drops (a read timed out).
        logger.info("%s %s", self.client_address[0], format % args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's protocol errors (414 URI too long, bad request line, ...) as JSON too."""
        self.close_connection = True
        phrase = self.responses.get(code, ("Error", ""))[0]
        body = json.dumps({"error": f"{phrase}: {message}" if message else phrase}).encode("utf-8")
        logger.info(
            '%s "%s" %d (protocol error)', self.client_address[0], self.requestline[:200], code
        )
        try:
            self.connection.settimeout(self.server.idle_timeout_seconds)
            self.send_response(code, message)
            self.send_header("Connection", "close")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:  # the client is gone (reset, broken pipe, timed out)
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
        if self.server.draining:
            self.close_connection = True
        try:
            self.connection.settimeout(self.server.idle_timeout_seconds)
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
        except OSError:  # the client is gone (reset, broken pipe, timed out)
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
        try:
            body = self.rfile.read(length)
        except TimeoutError as error:
            self.close_connection = True
            self._body_read = True  # the connection is closed: nothing left to desynchronise
            raise RestError(408, f"Request Timeout: the body was not received: {error}") from None
        self._body_read = True
        self._reader.request_read()
        if len(body) != length:
            self.close_connection = True
            raise RestError(400, f"Request body ended after {len(body)} of {length} bytes")
        return body

    def _drain(self, length: int, limit: int) -> None:
        """Reads and drops an oversize body (up to limit + 64 MiB) so the client sees the answer."""
        self.close_connection = True
        budget = min(length, limit + 64 * 1024 * 1024)
        try:
            while budget > 0:
                chunk = self.rfile.read(min(budget, 1 << 20))
                if not chunk:
                    break
                budget -= len(chunk)
        except TimeoutError:
            pass  # answered all the same; the connection is closed
        self._body_read = True
        self._reader.request_read()

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
    """One thread per connection, at most `max_connections` of them.

    Args:
        address: (host, port) to bind.
        models: {name: ModelManager}.
        max_request_bytes: larger bodies get 413.
        workers: predictions run at once; the others wait.
        read_deadline_seconds: the most one request may take to arrive, from its first
            byte to the last of its body (408, or the connection closed, beyond it).
        idle_timeout_seconds: the most a connection waits for a byte, between requests
            (keep-alive) or within one.
        max_connections: open connections at once; one more is answered 503 and closed.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address,
        *,
        models: Dict[str, ModelManager],
        max_request_bytes: int,
        workers: int,
        read_deadline_seconds: float = 60.0,
        idle_timeout_seconds: float = 30.0,
        max_connections: int = 256,
    ):
        super().__init__(address, RestRequestHandler)
        self.models = models
        self.max_request_bytes = max_request_bytes
        self.read_deadline_seconds = float(read_deadline_seconds)
        self.idle_timeout_seconds = float(idle_timeout_seconds)
        self.max_connections = int(max_connections)
        self.draining = False
        self._slots = threading.BoundedSemaphore(workers)
        self._connections_lock = threading.Lock()
        self._open_connections = 0  # counted when accepted, before their thread starts
        self._handlers: Set[RestRequestHandler] = set()

    def process_request(self, request, client_address) -> None:
        with self._connections_lock:
            full = self._open_connections >= self.max_connections
            if not full:
                self._open_connections += 1
        if full:
            threading.Thread(
                target=self._refuse, args=(request, client_address), daemon=True
            ).start()
            return
        try:
            super().process_request(request, client_address)
        except Exception:  # the thread did not start (a KeyboardInterrupt may come after)
            self._release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._connections_lock:
            self._open_connections -= 1

    def _refuse(self, request: socket.socket, client_address) -> None:
        """503 for a connection above the cap: read its request briefly, answer, close."""
        body = json.dumps(
            {
                "error": f"Too many connections: {self.max_connections} are open "
                "(--max-connections); retry later"
            }
        ).encode("utf-8")
        answer = (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nRetry-After: 1\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode("ascii")
            + body
        )
        logger.info("%s refused: 503, %d connections open", client_address[0], self.max_connections)
        try:
            request.settimeout(1.0)
            try:  # the request's head, so that closing does not reset the answer away
                received = b""
                while b"\r\n\r\n" not in received and len(received) < 65536:
                    chunk = request.recv(65536)
                    if not chunk:
                        break
                    received += chunk
            except OSError:
                pass
            request.sendall(answer)
            request.shutdown(socket.SHUT_WR)
            while request.recv(65536):  # until the client closes (or 1 s)
                pass
        except OSError:
            pass
        finally:
            request.close()

    def opened(self, handler: RestRequestHandler) -> None:
        with self._connections_lock:
            self._handlers.add(handler)

    def closed(self, handler: RestRequestHandler) -> None:
        with self._connections_lock:
            self._handlers.discard(handler)

    def drain(self, *, timeout: float) -> bool:
        """Lets the requests in flight finish, closing each connection after its answer and
        the idle ones at once. Call after the listening socket stopped accepting.

        Returns:
            whether every connection closed within `timeout` seconds.
        """
        self.draining = True
        deadline = time.monotonic() + timeout
        while True:
            with self._connections_lock:
                handlers = list(self._handlers)
                open_connections = self._open_connections
            if open_connections <= 0:
                return True
            for handler in handlers:
                if handler.idle:
                    try:  # wakes its thread, blocked in recv, with end-of-file
                        handler.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

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
