"""`mer serve` as a user runs it: a subprocess that prints its URLs and stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures.serving import read_until_serving

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_mer_serve_prints_urls_serves_and_stops_on_ctrl_c(pushed_base):
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", PYTHONUNBUFFERED="1"
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mer_tfx.cli",
            "serve",
            "--model-base-path",
            str(pushed_base),
            "--port",
            "0",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        text = read_until_serving(process)
        assert "versions [1]" in text, text
        match = re.search(r"GET  (http://127\.0\.0\.1:\d+)/v1/models/mer\n", text)
        assert match, text
        with urllib.request.urlopen(f"{match[1]}/v1/models/mer", timeout=30) as response:
            status = json.load(response)
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        process.send_signal(signal.SIGINT)
        # communicate, not wait: a full stderr pipe nobody reads would block the server.
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert '"GET /v1/models/mer" 200' in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _mer_serve(*args):
    env = dict(
        os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1", PYTHONUNBUFFERED="1"
    )
    return subprocess.Popen(
        [sys.executable, "-m", "mer_tfx.cli", "serve", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.e2e
def test_mer_serve_fails_at_once_without_a_base_path_or_a_free_port(pushed_base, tmp_path):
    import socket

    process = _mer_serve("--model-base-path", str(tmp_path / "nope"), "--port", "0")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert "does not exist" in err and "Traceback" not in err, err
    assert "loaded version" not in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = _mer_serve("--model-base-path", str(pushed_base), "--port", str(port))
        out, err = process.communicate(timeout=120)
    assert process.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err, err
    assert "loaded version" not in err  # failed before loading the model


@pytest.mark.e2e
def test_mer_serve_on_sigterm_finishes_the_request_in_flight(pushed_base, tmp_path):
    import shutil
    import socket

    base = tmp_path / "mer"
    shutil.copytree(pushed_base / "mer" / "1", base / "1")
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"not a saved model")
    process = _mer_serve("--model-base-path", str(base), "--port", "0")
    try:
        text = read_until_serving(process)
        assert "versions [1]" in text and "version 2 not served" in text, text
        match = re.search(r"GET  http://127\.0\.0\.1:(\d+)/v1/models/mer\n", text)
        body = json.dumps({"instances": [[0.1 * (i % 7) - 0.3 for i in range(22050)]]}).encode()
        with socket.create_connection(("127.0.0.1", int(match[1])), timeout=60) as sock:
            sock.sendall(
                b"POST /v1/models/mer:predict HTTP/1.1\r\nHost: x\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:1000]
            )
            time.sleep(0.5)
            process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert process.poll() is None  # still finishing the request
            sock.sendall(body[1000:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
