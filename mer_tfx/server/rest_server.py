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

The pieces, one job each: `serving_config` (which models, from a `models.config`
or arguments), `versions` (the loaded versions of one model, polling the disk),
`json_codec` (predict JSON <-> arrays), `handler` (HTTP routing and errors),
`rest_error` (the error answered). This module starts and stops them and keeps
their public names importable from here.

Examples:

>>> server = RestServer(models=[ServedModelConfig(name="mer", base_path="serving/mer")], port=0)  # doctest: +SKIP
>>> server.start()  # doctest: +SKIP
>>> server.url  # doctest: +SKIP
'http://127.0.0.1:40123'
>>> server.shutdown()  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from mer_tfx.errors import ParameterError
from mer_tfx.server.handler import RestHttpServer
from mer_tfx.server.json_codec import (
    DEFAULT_SIGNATURE,
    decode_predict_request,
    encode_predict_response,
)
from mer_tfx.server.rest_error import RestError
from mer_tfx.server.serving_config import (
    ServedModelConfig,
    load_models_config,
    model_configs_from_args,
)
from mer_tfx.server.versions import ModelManager

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "DEFAULT_READ_DEADLINE_SECONDS",
    "DEFAULT_SIGNATURE",
    "ModelManager",
    "RestError",
    "RestServer",
    "ServedModelConfig",
    "decode_predict_request",
    "encode_predict_response",
    "load_models_config",
    "model_configs_from_args",
]

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
DEFAULT_READ_DEADLINE_SECONDS = 60.0
DEFAULT_IDLE_TIMEOUT_SECONDS = 30.0
DEFAULT_MAX_CONNECTIONS = 256


class RestServer:
    """TF Serving's REST API over one or more model base paths.

    Args:
        models: the served models (name, base path, version policy).
        host: interface to bind. Defaults to "127.0.0.1".
        port: TCP port; 0 picks a free one. Defaults to 8501 (TF Serving's REST port).
        poll_seconds: seconds between scans for new versions; 0 disables. Defaults to 2.
        max_request_bytes: larger bodies get 413. Defaults to 64 MiB.
        workers: predictions run at the same time (others wait). Defaults to 2.
        read_deadline_seconds: the most one request may take to arrive, from its first
            byte to the end of its body; a slower one is answered 408 or dropped.
            Defaults to 60.
        idle_timeout_seconds: the most a connection waits for a byte, between keep-alive
            requests or within one, before it is closed. Defaults to 30.
        max_connections: connections open at once (one thread each); one more is
            answered 503 and closed. Defaults to 256.
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
        read_deadline_seconds: float = DEFAULT_READ_DEADLINE_SECONDS,
        idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
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
        for name, value in (
            ("read_deadline_seconds", read_deadline_seconds),
            ("idle_timeout_seconds", idle_timeout_seconds),
        ):
            if not value > 0:
                raise ParameterError(f"{name} must be positive. Received: {name}={value}")
        if max_connections < 1:
            raise ParameterError(
                f"max_connections must be >= 1. Received: max_connections={max_connections}"
            )
        self.managers = {m.name: ModelManager(m, poll_seconds=poll_seconds) for m in models}
        self._host, self._port = host, port
        self._max_request_bytes = int(max_request_bytes)
        self._workers = int(workers)
        self._read_deadline_seconds = float(read_deadline_seconds)
        self._idle_timeout_seconds = float(idle_timeout_seconds)
        self._max_connections = int(max_connections)
        self._httpd: RestHttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://host:port` the server listens on (the real port when 0 was asked)."""
        if self._httpd is None:
            raise ParameterError("The server is not started. Call start() first.")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def bind(self) -> RestServer:
        """Checks the base paths, binds the socket, then loads the models (without serving yet).

        Raises:
            ParameterError: a base path is not a folder, or the port cannot be bound;
                both before any model is loaded.
        """
        if self._httpd is None:
            for manager in self.managers.values():
                base = Path(manager.config.base_path)
                if not base.is_dir():
                    raise ParameterError(
                        f"The base path of model {manager.name!r} is not a folder "
                        f"({'not a directory' if base.exists() else 'does not exist'}). "
                        f"Received: base_path={str(base)!r}"
                    )
            try:
                httpd = RestHttpServer(
                    (self._host, self._port),
                    models=self.managers,
                    max_request_bytes=self._max_request_bytes,
                    workers=self._workers,
                    read_deadline_seconds=self._read_deadline_seconds,
                    idle_timeout_seconds=self._idle_timeout_seconds,
                    max_connections=self._max_connections,
                )
            except OSError as error:
                raise ParameterError(
                    f"Cannot listen on {self._host}:{self._port}: "
                    f"{error.strerror or error}. Received: host={self._host!r}, port={self._port}"
                ) from None
            try:
                for manager in self.managers.values():
                    manager.start()
            except BaseException:
                httpd.server_close()
                raise
            self._httpd = httpd
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

    def shutdown(self, *, grace_seconds: float | None = None) -> bool:
        """Stops accepting, lets the requests in flight finish, then stops polling; safe
        to call twice.

        Args:
            grace_seconds: the most to wait for the requests in flight. Defaults to the
                read deadline plus 10 s (a request still arriving, then its prediction).

        Returns:
            whether every request in flight finished in time.
        """
        finished = True
        if self._httpd is not None:
            if self._thread is not None:
                self._httpd.shutdown()  # the accept loop stops
                self._thread.join(timeout=30)
                self._thread = None
            self._httpd.socket.close()  # new connections are refused from here on
            if grace_seconds is None:
                grace_seconds = self._read_deadline_seconds + 10.0
            finished = self._httpd.drain(timeout=grace_seconds)
            self._httpd.server_close()
            self._httpd = None
        for manager in self.managers.values():
            manager.stop()
        return finished

    def __enter__(self) -> RestServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.shutdown()
