"""`mer serve`: serve pushed models over TF Serving's REST API (see docs/serving.md)."""

from __future__ import annotations

import argparse
import logging
import signal

from mer_tfx import console
from mer_tfx.contract import MODEL_NAME
from mer_tfx.server.rest_server import (
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_REQUEST_BYTES,
    DEFAULT_READ_DEADLINE_SECONDS,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--model-base-path",
        help="folder of numeric version folders (<pusher dir>/<name>), or the Pusher's base holding <name>/ "
        "(default, without --model-config-file: the model shipped in the package)",
    )
    source.add_argument(
        "--model-config-file",
        help="a TF Serving models.config (model_config_list) to serve several models",
    )
    parser.add_argument(
        "--model-name",
        default=MODEL_NAME,
        help=f"name in the URLs /v1/models/<name> (default: {MODEL_NAME})",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=8501, help="REST port; 0 picks a free one (default: 8501)"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=2.0,
        help="scan for newly pushed versions every N s; 0 disables (default: 2)",
    )
    parser.add_argument(
        "--max-request-bytes",
        type=int,
        default=DEFAULT_MAX_REQUEST_BYTES,
        help=f"larger request bodies get HTTP 413 (default: {DEFAULT_MAX_REQUEST_BYTES})",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="predictions run at once (default: 2)"
    )
    parser.add_argument(
        "--read-deadline-seconds",
        type=float,
        default=DEFAULT_READ_DEADLINE_SECONDS,
        help="a request must arrive whole (line, headers, body) within N s of its first byte, "
        f"else 408 and the connection is closed (default: {DEFAULT_READ_DEADLINE_SECONDS:g})",
    )
    parser.add_argument(
        "--idle-timeout-seconds",
        type=float,
        default=DEFAULT_IDLE_TIMEOUT_SECONDS,
        help="close a connection that sends nothing for N s, between keep-alive requests "
        f"or within one (default: {DEFAULT_IDLE_TIMEOUT_SECONDS:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="connections open at once (a thread each); one more gets 503 and is closed "
        f"(default: {DEFAULT_MAX_CONNECTIONS})",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log one line per request")
    parser.add_argument("--verbose", action="store_true",
                        help="also show what TensorFlow prints (always in the log file "
                        "<output folder>/mer-serve.log)")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _request_lines(*, quiet: bool) -> logging.Handler:
    """Shows the server's INFO lines (one per request) on the console, and returns the
    handler. Its warnings and errors reach the console through `console.ProjectWarnings`
    (attached by the command line); the libraries' records stay in the log."""
    handler = logging.StreamHandler(console.stream())
    handler.setFormatter(logging.Formatter("mer serve: %(asctime)s %(message)s", "%H:%M:%S"))
    handler.addFilter(lambda record: record.levelno < logging.WARNING)
    logger = logging.getLogger("mer_tfx.server")
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.addHandler(handler)
    return handler


def run(args: argparse.Namespace) -> int:
    from mer_tfx.server.rest_server import RestServer, model_configs_from_args

    model_base_path = args.model_base_path
    if model_base_path is None and args.model_config_file is None:
        from mer_tfx import pretrained

        pretrained.latest_version_dir()  # a clear error when no model is shipped
        model_base_path = pretrained.model_base_path()
        console.say(f"mer serve: {pretrained.notice()}")
    requests = _request_lines(quiet=args.quiet)
    models = model_configs_from_args(
        model_name=args.model_name,
        model_base_path=model_base_path,
        model_config_file=args.model_config_file,
    )
    server = RestServer(
        models=models,
        host=args.host,
        port=args.port,
        poll_seconds=args.poll_seconds,
        max_request_bytes=args.max_request_bytes,
        workers=args.workers,
        read_deadline_seconds=args.read_deadline_seconds,
        idle_timeout_seconds=args.idle_timeout_seconds,
        max_connections=args.max_connections,
    ).bind()
    try:  # SIGTERM (docker stop, systemd) stops as cleanly as Ctrl-C, even when the
        # parent started us with SIGINT ignored (a background job of a script).
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    except (
        ValueError
    ):  # not the main thread (e.g. run from a test); Ctrl-C handling is the caller's
        pass
    out = console.out()  # where to reach the server: the command's result
    for name, manager in server.managers.items():
        versions = manager.served_versions()
        state = f"versions {versions}" if versions else "no version yet (waiting for a push)"
        print(f"model {name!r} from {manager.config.base_path}: {state}", file=out)
        for version, error in sorted(manager.failed_versions().items(), reverse=True):
            print(f"  version {version} not served: {error}", file=out)
        print(f"  status:   GET  {server.url}/v1/models/{name}", file=out)
        print(f"  metadata: GET  {server.url}/v1/models/{name}/metadata", file=out)
        print(f"  predict:  POST {server.url}/v1/models/{name}:predict", file=out)
    print("Ctrl-C to stop.", file=out, flush=True)
    if console.log_path() is not None:
        console.say(f"mer serve: what TensorFlow prints is in {console.log_path()}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.say("mer serve: stopping (the requests in flight finish first)")
    finally:
        if not server.shutdown():
            console.say("mer serve: some requests in flight did not finish in time")
        logging.getLogger("mer_tfx.server").removeHandler(requests)
    return 0
