"""The local server against TF Serving's REST contract, with the fixture model."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import threading
import time
from urllib.parse import urlparse

import numpy as np
import pytest

from mer_tfx.errors import ParameterError
from mer_tfx.server import json_codec
from mer_tfx.server.rest_error import RestError
from mer_tfx.server.rest_server import (
    RestServer,
    ServedModelConfig,
    load_models_config,
    model_configs_from_args,
)
from tests.fixtures.serving import music_like, wav_bytes

RATE = 22050  # the fixture's "small" preset
LIMIT = 8 * 1024 * 1024  # small request limit so the over-limit test stays cheap


def request(url, method, path, body=None, headers=None):
    """(status, parsed JSON body) of one HTTP request on a fresh connection."""
    parts = urlparse(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def server(pushed_base):
    srv = RestServer(
        models=[
            ServedModelConfig(
                name="mer", base_path=str(pushed_base / "mer"), version_labels={"stable": 1}
            )
        ],
        port=0,
        poll_seconds=0,
        max_request_bytes=LIMIT,
    )
    srv.start()
    yield srv
    srv.shutdown()


def clip(seconds=2.0, seed=0):
    return music_like(seconds=seconds, sample_rate=RATE, seed=seed)


def valid_predict(url):
    status, body = request(
        url, "POST", "/v1/models/mer:predict", {"instances": [clip(1.0).tolist()]}
    )
    assert status == 200, body
    return body


def test_status_has_tf_serving_shape(server):
    status, body = request(server.url, "GET", "/v1/models/mer")
    assert status == 200
    assert body == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert request(server.url, "GET", "/v1/models/mer/versions/1")[1] == body
    assert request(server.url, "GET", "/v1/models/mer/labels/stable")[1] == body


def test_request_line_is_logged_before_the_answer_leaves(server, monkeypatch):
    """A client holding its answer finds the request's line in the log, even if the server
    stops at once (its request threads are daemons): the line is logged before the send."""
    import logging

    from mer_tfx.server.handler import RestRequestHandler

    events = []

    class Recorder(logging.Handler):
        def emit(self, record):
            events.append(("log", record.getMessage()))

    send = RestRequestHandler._send_json

    def recording_send(self, status, body, headers, *, head_only):
        events.append(("send", status))
        return send(self, status, body, headers, head_only=head_only)

    monkeypatch.setattr(RestRequestHandler, "_send_json", recording_send)
    logger = logging.getLogger("mer_tfx.server")
    recorder = Recorder(level=logging.INFO)
    level = logger.level
    logger.addHandler(recorder)
    logger.setLevel(logging.INFO)
    try:
        status, body = request(server.url, "GET", "/v1/models/mer")
        assert status == 200
        assert request(server.url, "GET", "/v1/models/nope")[0] == 404
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(level)
    assert [kind for kind, _ in events] == ["log", "send", "log", "send"]
    assert '"GET /v1/models/mer" 200 ' in events[0][1]
    assert '"GET /v1/models/nope" 404 ' in events[2][1]
    assert f" 200 {len(json.dumps(body, separators=(',', ':')))}B " in events[0][1]


def test_metadata_has_tf_serving_shape(server):
    status, body = request(server.url, "GET", "/v1/models/mer/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "mer", "signature_name": "", "version": "1"}
    signatures = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "serving_wav", "serving_examples", "model_info"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    waveform = default["inputs"]["waveform"]
    assert waveform["dtype"] == "DT_FLOAT"
    # TF Serving renders int64 sizes as strings and prints default fields.
    assert waveform["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}, {"size": "-1", "name": ""}],
        "unknown_rank": False,
    }
    assert set(default["outputs"]) == {
        "valence_probability",
        "arousal_probability",
        "valence_label",
        "arousal_label",
        "quadrant",
    }
    assert default["outputs"]["quadrant"]["dtype"] == "DT_STRING"
    assert default["outputs"]["valence_label"]["dtype"] == "DT_INT64"


def test_predict_row_format_equals_in_process(server, servable):
    clips = np.stack([clip(2.0, seed=1), clip(2.0, seed=2)])
    status, body = request(
        server.url, "POST", "/v1/models/mer:predict", {"instances": clips.tolist()}
    )
    assert status == 200, body
    expected = servable.run("serving_default", {"waveform": clips})
    predictions = body["predictions"]
    assert len(predictions) == 2
    for i, row in enumerate(predictions):
        assert set(row) == set(expected)
        # JSON carries the float32 value exactly (shortest repr round-trips).
        assert np.float32(row["valence_probability"]) == expected["valence_probability"][i]
        assert np.float32(row["arousal_probability"]) == expected["arousal_probability"][i]
        assert row["valence_label"] == int(expected["valence_label"][i])
        assert row["quadrant"] == expected["quadrant"][i].decode()
        assert row["quadrant"] in {"Q1", "Q2", "Q3", "Q4"}


def test_predict_columnar_format_and_version_url(server, servable):
    clips = np.stack([clip(1.5, seed=3)])
    for path in (
        "/v1/models/mer:predict",
        "/v1/models/mer/versions/1:predict",
        "/v1/models/mer/labels/stable:predict",
    ):
        status, body = request(server.url, "POST", path, {"inputs": {"waveform": clips.tolist()}})
        assert status == 200, body
        expected = servable.run("serving_default", {"waveform": clips})
        outputs = body["outputs"]
        assert set(outputs) == set(expected)
        np.testing.assert_array_equal(
            np.float32(outputs["arousal_probability"]), expected["arousal_probability"]
        )
        assert outputs["quadrant"] == [q.decode() for q in expected["quadrant"]]
    # A single-input signature also takes the bare value.
    status, body = request(server.url, "POST", "/v1/models/mer:predict", {"inputs": clips.tolist()})
    assert status == 200 and len(body["outputs"]["quadrant"]) == 1


def test_predict_wav_b64_equals_in_process(server, servable):
    waveform = clip(3.0, seed=4)
    data = wav_bytes(waveform, sample_rate=RATE)
    payload = {
        "signature_name": "serving_wav",
        "instances": [{"b64": base64.b64encode(data).decode()}],
    }
    status, body = request(server.url, "POST", "/v1/models/mer:predict", payload)
    assert status == 200, body
    expected = servable.run("serving_wav", {"wav_bytes": np.array([data], dtype=object)})
    row = body["predictions"][0]
    assert np.float32(row["valence_probability"]) == expected["valence_probability"][0]
    # Named row form ({"wav_bytes": {"b64": ...}}) is the same request.
    named = {
        "signature_name": "serving_wav",
        "instances": [{"wav_bytes": {"b64": base64.b64encode(data).decode()}}],
    }
    assert request(server.url, "POST", "/v1/models/mer:predict", named)[1] == body
    # 16-bit quantisation of the WAV moves the probability only slightly (step 3e-5 in
    # the waveform; the log-mel path is smooth), so it agrees with the float waveform.
    floats = servable.run("serving_default", {"waveform": waveform[None]})
    assert abs(row["valence_probability"] - float(floats["valence_probability"][0])) < 1e-3


def _wav_body(encoded: str, *, separator: str = ":") -> bytes:
    return (
        '{"signature_name": "serving_wav", "instances": [{"b64"'
        + separator
        + '"'
        + encoded
        + '"}]}'
    ).encode()


@pytest.mark.parametrize(
    "variant", ["plain", "escaped_slashes", "whitespace", "web_safe", "short_value"]
)
def test_large_b64_values_skip_json_but_decode_the_same(servable, variant):
    # The server lifts large base64 values out of the body before json.loads (a 30 s
    # clip is 1.76 MB of base64); every way a client may write them decodes the same.
    data = wav_bytes(clip(2.0 if variant != "short_value" else 0.01, seed=5), sample_rate=RATE)
    encoded = base64.b64encode(data).decode()
    assert variant == "short_value" or "/" in encoded and "+" in encoded
    body = {
        "plain": _wav_body(encoded),
        "short_value": _wav_body(encoded),
        # Some JSON encoders write "/" as "\/": left to json.loads, which unescapes it.
        "escaped_slashes": _wav_body(encoded.replace("/", "\\/")),
        "whitespace": _wav_body(encoded, separator=" :\n "),
        "web_safe": _wav_body(base64.urlsafe_b64encode(data).decode()),
    }[variant]
    _, lifted = json_codec._parse_json_lifting_b64(body)
    assert bool(lifted) == (variant in ("plain", "whitespace", "web_safe"))
    signature, inputs, row_format = json_codec.decode_predict_request(body, servable)
    assert (signature, row_format) == ("serving_wav", True)
    assert inputs["wav_bytes"].tolist() == [data]


def test_malformed_body_with_a_large_b64_value_reports_its_own_position(servable):
    text = base64.b64encode(bytes(6000)).decode()
    body = (
        '{"signature_name": "serving_wav", "instances": [{"b64": "' + text + '"}] oops}'
    ).encode()
    with pytest.raises(RestError) as caught:
        json_codec.decode_predict_request(body, servable)
    assert caught.value.status == 400
    with pytest.raises(json.JSONDecodeError) as plain:
        json.loads(body)
    assert f"char {plain.value.pos}" in caught.value.message  # the column in the body as sent


def test_lifted_value_under_another_key_stays_the_original_string():
    # A key that merely ends in \"b64 (an escaped quote) is not a b64 value: the
    # original text comes back wherever its placeholder lands.
    text = "A" * 5000
    body = ('{"k\\"b64": "' + text + '", "b64": "' + text + '"}').encode()
    tree, lifted = json_codec._parse_json_lifting_b64(body)
    assert len(lifted) == 2
    assert json_codec._decode_string(tree['k"b64'], "x", lifted) == text.encode()
    assert tree.keys() == json.loads(body).keys()
    # The real "b64" value is lifted too, and decodes as base64 ("AAAA" -> 3 zero bytes).
    assert tree["b64"] in lifted and lifted[tree["b64"]] == text.encode()
    assert json_codec._b64decode(lifted[tree["b64"]], "x") == bytes(3750)


def test_model_info_signature(server):
    status, body = request(
        server.url,
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": "model_info", "instances": [0]},
    )
    assert status == 200, body
    # The fixture model is exported without a dataset or gate: the export's placeholders.
    assert body["predictions"] == [
        {"sample_rate": RATE, "clip_seconds": 30.0, "segment_seconds": 5.0, "preset": "small",
         "training_data": "unknown", "gate": "none"}
    ]


def _nan_body():
    return '{"instances": [[0.1, NaN, 0.2]]}'


def _big_body():
    return b'{"instances": [' + b" " * (LIMIT + 10) + b"]}"


SILENT = np.zeros([1, RATE], np.float32).tolist()


def _float_wav_b64():
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, clip(1.0), RATE, subtype="FLOAT", format="WAV")
    return base64.b64encode(buffer.getvalue()).decode()


WAV_WRONG_RATE = base64.b64encode(wav_bytes(clip(1.0), sample_rate=16000)).decode()

BAD_REQUESTS = {
    "malformed_json": ("POST", "/v1/models/mer:predict", '{"instances": [[0.1, 0.2]', 400),
    "json_not_object": ("POST", "/v1/models/mer:predict", "[1, 2, 3]", 400),
    "missing_instances": ("POST", "/v1/models/mer:predict", {"foo": 1}, 400),
    "both_keys": ("POST", "/v1/models/mer:predict", {"instances": [[0.1]], "inputs": [[0.1]]}, 400),
    "empty_instances": ("POST", "/v1/models/mer:predict", {"instances": []}, 400),
    "wrong_shape_rank1": ("POST", "/v1/models/mer:predict", {"instances": [0.1, 0.2]}, 400),
    "wrong_shape_rank3": ("POST", "/v1/models/mer:predict", {"instances": [[[0.1, 0.2]]]}, 400),
    "ragged": ("POST", "/v1/models/mer:predict", {"instances": [[0.1, 0.2], [0.3]]}, 400),
    "wrong_dtype_strings": ("POST", "/v1/models/mer:predict", {"instances": [["a", "b"]]}, 400),
    "wrong_dtype_null": ("POST", "/v1/models/mer:predict", {"instances": [[0.1, None]]}, 400),
    "wrong_input_name": ("POST", "/v1/models/mer:predict", {"instances": [{"audio": [0.1]}]}, 400),
    "empty_audio": ("POST", "/v1/models/mer:predict", {"instances": [[]]}, 400),
    "silent_audio": ("POST", "/v1/models/mer:predict", {"instances": SILENT}, 400),
    "nan_literal": ("POST", "/v1/models/mer:predict", _nan_body(), 400),
    "infinity_literal": (
        "POST",
        "/v1/models/mer:predict",
        '{"instances": [[0.1, -Infinity]]}',
        400,
    ),
    "float32_overflow": ("POST", "/v1/models/mer:predict", '{"instances": [[0.1, 1e39]]}', 400),
    "float64_overflow": ("POST", "/v1/models/mer:predict", '{"instances": [[0.1, 1e999]]}', 400),
    "huge_integer": (
        "POST",
        "/v1/models/mer:predict",
        '{"instances": [[0.1, 1' + "0" * 400 + "]]}",
        400,
    ),
    "wav_not_b64": (
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": "serving_wav", "instances": [{"b64": "!!!"}]},
        400,
    ),
    "wav_garbage": (
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": "serving_wav", "instances": [{"b64": "AAAA"}]},
        400,
    ),
    "wav_large_not_b64": (
        "POST",
        "/v1/models/mer:predict",
        '{"signature_name": "serving_wav", "instances": [{"b64": "' + "!" * 8192 + '"}]}',
        400,
    ),
    # A raw newline is invalid in a JSON string; inside a lifted value it fails base64.
    "wav_large_raw_newline": (
        "POST",
        "/v1/models/mer:predict",
        '{"signature_name": "serving_wav", "instances": [{"b64": "'
        + "QUJD" * 2048
        + "\n"
        + "QUJD" * 2048
        + '"}]}',
        400,
    ),
    "wav_large_non_ascii": (
        "POST",
        "/v1/models/mer:predict",
        '{"signature_name": "serving_wav", "instances": [{"b64": "' + "\u00e9" * 8192 + '"}]}',
        400,
    ),
    "wav_wrong_rate": (
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": "serving_wav", "instances": [{"b64": WAV_WRONG_RATE}]},
        400,
    ),
    # tf.audio.decode_wav reads 16-bit PCM only.
    "wav_float32": (
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": "serving_wav", "instances": [{"b64": _float_wav_b64()}]},
        400,
    ),
    "wav_number": (
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": "serving_wav", "instances": [3]},
        400,
    ),
    "int_input_float": (
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": "model_info", "instances": [0.5]},
        400,
    ),
    "signature_not_string": (
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": 3, "instances": [[0.1]]},
        400,
    ),
    "unknown_model": ("POST", "/v1/models/nope:predict", {"instances": [[0.1]]}, 404),
    "unknown_model_status": ("GET", "/v1/models/nope", None, 404),
    "unknown_version": ("POST", "/v1/models/mer/versions/7:predict", {"instances": [[0.1]]}, 404),
    "unknown_version_status": ("GET", "/v1/models/mer/versions/7", None, 404),
    "unknown_label": ("POST", "/v1/models/mer/labels/canary:predict", {"instances": [[0.1]]}, 404),
    "unknown_signature": (
        "POST",
        "/v1/models/mer:predict",
        {"signature_name": "nope", "instances": [[0.1]]},
        404,
    ),
    "unknown_path": ("GET", "/v2/whatever", None, 404),
    "unknown_verb": ("POST", "/v1/models/mer:explain", {"instances": [[0.1]]}, 404),
    "over_limit": ("POST", "/v1/models/mer:predict", _big_body(), 413),
    "get_predict": ("GET", "/v1/models/mer:predict", None, 405),
    "put_predict": ("PUT", "/v1/models/mer:predict", {"instances": [[0.1]]}, 405),
    "post_status": ("POST", "/v1/models/mer", {"instances": [[0.1]]}, 405),
    "delete_metadata": ("DELETE", "/v1/models/mer/metadata", None, 405),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_is_4xx_json_and_server_keeps_serving(server, case):
    method, path, body, expected = BAD_REQUESTS[case]
    status, answer = request(server.url, method, path, body)
    assert status == expected, answer
    assert isinstance(answer, dict) and set(answer) == {"error"} and answer["error"]
    valid_predict(server.url)


def test_post_without_content_length_is_411(server):
    parts = urlparse(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.putrequest("POST", "/v1/models/mer:predict")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 411
    assert "error" in json.loads(response.read())
    conn.close()
    valid_predict(server.url)


def test_keep_alive_connection_survives_errors(server):
    """One persistent connection: error answers don't desynchronise the next request."""
    parts = urlparse(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    good = json.dumps({"instances": [clip(1.0).tolist()]})
    for body, expected in ((good, 200), ('{"instances": [[]]}', 400), ("{bad", 400), (good, 200)):
        conn.request("POST", "/v1/models/mer:predict", body=body)
        response = conn.getresponse()
        assert response.status == expected
        json.loads(response.read())
    conn.close()


def test_new_version_served_without_restart(pushed_base, tmp_path):
    base = tmp_path / "mer"
    shutil.copytree(pushed_base / "mer" / "1", base / "1")
    srv = RestServer(
        models=[ServedModelConfig(name="mer", base_path=str(base))], port=0, poll_seconds=0.5
    )
    with srv:
        assert request(srv.url, "GET", "/v1/models/mer/metadata")[1]["model_spec"]["version"] == "1"
        # Push like the TFX Pusher: copy into the final folder, saved_model.pb last.
        shutil.copytree(base / "1", base / "2", ignore=shutil.ignore_patterns("saved_model.pb"))
        shutil.copy(base / "1" / "saved_model.pb", base / "2" / "saved_model.pb")
        # Keep predicting while version 2 loads: the old version answers meanwhile.
        deadline = time.monotonic() + 30
        served = "1"
        while time.monotonic() < deadline and served != "2":
            valid_predict(srv.url)
            served = request(srv.url, "GET", "/v1/models/mer/metadata")[1]["model_spec"]["version"]
            time.sleep(0.2)
        assert served == "2"
        status = request(srv.url, "GET", "/v1/models/mer")[1]["model_version_status"]
        assert {s["version"]: s["state"] for s in status} == {"2": "AVAILABLE", "1": "END"}
        assert (
            request(srv.url, "GET", "/v1/models/mer/versions/1")[1]["model_version_status"][0][
                "state"
            ]
            == "END"
        )
        assert (
            request(srv.url, "POST", "/v1/models/mer/versions/1:predict", {"instances": [[0.1]]})[0]
            == 404
        )
        # A broken push (garbage saved_model.pb) is reported and does not replace version 2.
        (base / "3").mkdir()
        (base / "3" / "saved_model.pb").write_bytes(b"not a saved model")
        settled = time.time() - 10  # as if written 10 s ago: the server loads settled files only
        os.utime(base / "3" / "saved_model.pb", (settled, settled))
        srv.managers["mer"].refresh()
        status = request(srv.url, "GET", "/v1/models/mer/versions/3")[1]["model_version_status"][0]
        assert status["state"] == "END" and status["status"]["error_code"] == "UNKNOWN"
        assert request(srv.url, "GET", "/v1/models/mer/metadata")[1]["model_spec"]["version"] == "2"
        valid_predict(srv.url)
        # Repaired in place (the marker file changes): retried and served.
        shutil.rmtree(base / "3")
        shutil.copytree(base / "2", base / "3")
        os.utime(base / "3" / "saved_model.pb", (settled, settled + 1))
        srv.managers["mer"].refresh()
        assert request(srv.url, "GET", "/v1/models/mer/metadata")[1]["model_spec"]["version"] == "3"
        valid_predict(srv.url)


def test_models_config_serves_several_models(pushed_base, tmp_path):
    config = tmp_path / "models.config"
    config.write_text(
        f"""
model_config_list {{
  config {{ name: "mer" base_path: "{pushed_base / "mer"}" model_platform: "tensorflow"
           model_version_policy {{ latest {{ num_versions: 1 }} }} }}
  config {{ name: "other" base_path: "{pushed_base / "mer"}" model_platform: "tensorflow"
           model_version_policy {{ all {{}} }} version_labels {{ key: "stable" value: 1 }} }}
}}
"""
    )
    models = load_models_config(config)
    assert [(m.name, m.version_policy) for m in models] == [("mer", "latest"), ("other", "all")]
    assert models[1].version_labels == {"stable": 1}
    with RestServer(models=models, port=0, poll_seconds=0) as srv:
        for name in ("mer", "other"):
            assert request(srv.url, "GET", f"/v1/models/{name}")[0] == 200
        assert request(srv.url, "GET", "/v1/models/other/labels/stable/metadata")[0] == 200


def test_model_configs_from_args_resolves_pusher_base(pushed_base):
    (config,) = model_configs_from_args(model_name="mer", model_base_path=pushed_base)
    assert config.base_path == str(pushed_base / "mer")
    with pytest.raises(ParameterError, match="version folders"):
        model_configs_from_args(model_base_path=pushed_base / "mer" / "1")
    with pytest.raises(ParameterError, match="does not parse"):
        load_models_config(
            _write(pushed_base.parent / "bad.config", "model_config_list { nonsense")
        )


def _write(path, text):
    path.write_text(text)
    return path


def test_concurrent_clients(server):
    """8 clients x 50 requests (1 s clips) without a single error."""
    body = json.dumps({"instances": [clip(1.0, seed=5).tolist()]}).encode()
    parts = urlparse(server.url)
    failures = []

    def client():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            for _ in range(50):
                conn.request("POST", "/v1/models/mer:predict", body=body)
                response = conn.getresponse()
                data = response.read()
                if response.status != 200 or "predictions" not in json.loads(data):
                    failures.append((response.status, data[:200]))
        except Exception as error:  # collected and asserted below
            failures.append(repr(error))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []


def _raw_exchange(url, raw: bytes) -> bytes:
    """Sends raw bytes, half-closes, returns everything the server answered."""
    import socket

    parts = urlparse(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (
            b"POST /v1/models/mer:predict HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
            b" 400 ",
        ),
        (
            b"POST /v1/models/mer:predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b" 400 ",
        ),
        # The body ends (client half-closes) before Content-Length bytes arrived.
        (
            b'POST /v1/models/mer:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"inst',
            b" 400 ",
        ),
        (
            b"POST /v1/models/mer:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b" 411 ",
        ),
        # http.server's own protocol errors are JSON too.
        (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b" 414 "),
        (b"GET /v1/models/mer HTTP/1.1\r\n" + b"X-Long: " + b"b" * 70000 + b"\r\n\r\n", b" 431 "),
        # A GET with an (ignored) body: answered, then the connection is closed.
        (b"GET /v1/models/mer HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", b" 200 "),
    ],
)
def test_malformed_http_is_answered_and_server_keeps_serving(server, raw, expected):
    answer = _raw_exchange(server.url, raw)
    status_line, _, rest = answer.partition(b"\r\n")
    assert expected in status_line, answer[:300]
    body = rest.split(b"\r\n\r\n", 1)[1]
    assert json.loads(body)
    valid_predict(server.url)


@pytest.mark.e2e
def test_real_small_architecture_over_rest(tmp_path):
    """The project's real (untrained) 'small' architecture through the server (~40 s export)."""
    from mer_tfx.server.servable import Servable
    from tests.fixtures.serving import write_pushed_model

    write_pushed_model(tmp_path, model_name="mer", version=5, architecture="small")
    reference = Servable(path=tmp_path / "mer" / "5")
    clips = np.stack([clip(2.0, seed=11), clip(2.0, seed=12)])
    expected = reference.run("serving_default", {"waveform": clips})
    with RestServer(
        models=[ServedModelConfig(name="mer", base_path=str(tmp_path / "mer"))],
        port=0,
        poll_seconds=0,
    ) as srv:
        status, body = request(
            srv.url, "POST", "/v1/models/mer:predict", {"instances": clips.tolist()}
        )
        assert status == 200, body
        got = np.float32([row["valence_probability"] for row in body["predictions"]])
        # Two loads of one SavedModel agree to float32 rounding (CPU kernels may sum in
        # another order from one load to the next), not always bit for bit.
        np.testing.assert_allclose(got, expected["valence_probability"], rtol=0, atol=1e-6)
        assert [row["quadrant"] for row in body["predictions"]] == [
            q.decode() for q in expected["quadrant"]
        ]
        data = base64.b64encode(wav_bytes(clips[0], sample_rate=RATE)).decode()
        status, body = request(
            srv.url,
            "POST",
            "/v1/models/mer:predict",
            {"signature_name": "serving_wav", "instances": [{"b64": data}]},
        )
        assert status == 200, body
        # 16-bit WAV quantisation (step 3e-5) moves the probability only slightly.
        assert (
            abs(
                body["predictions"][0]["valence_probability"]
                - float(expected["valence_probability"][0])
            )
            < 1e-3
        )
        assert request(srv.url, "POST", "/v1/models/mer:predict", {"instances": SILENT})[0] == 400


# --- Non-numeric and over-nested samples ---


@pytest.mark.parametrize(
    "payload, reason",
    [
        ({"instances": [[0.1, True, 0.2]]}, "boolean"),
        ({"instances": [[True, False]]}, "boolean"),
        ({"inputs": {"waveform": [[0.1, False]]}}, "boolean"),
        ({"signature_name": "model_info", "instances": [True]}, "boolean"),
        ({"signature_name": "serving_wav", "instances": [True]}, "boolean"),
        ({"instances": [[0.1, {"x": 1}]]}, "object"),
        ({"instances": [[0.1, "0.2"]]}, "string"),
        ({"instances": [[0.1, [0.2]]]}, "deeper than the input's rank 2"),
        ({"instances": [[0.1], 0.2]}, "rank 2"),
    ],
)
def test_non_numeric_or_over_nested_samples_are_400_with_a_reason(server, payload, reason):
    status, answer = request(server.url, "POST", "/v1/models/mer:predict", payload)
    assert status == 400, answer
    assert reason in answer["error"], answer


@pytest.mark.parametrize("depth", [50, 900, 100_000])
def test_deep_nesting_is_400_not_a_crash(server, depth):
    # Below json's recursion limit the rank check refuses it; beyond it the parser does.
    body = '{"instances": ' + "[" * depth + "0.1" + "]" * depth + "}"
    status, answer = request(server.url, "POST", "/v1/models/mer:predict", body)
    assert status == 400, answer
    assert "rank" in answer["error"] or "nested too deep" in answer["error"], answer
    valid_predict(server.url)


def test_a_few_mib_of_json_floats_is_200(server):
    clips = np.stack([clip(10.0, seed=7)])
    body = json.dumps({"instances": clips.tolist()}).encode()
    assert 3 * 1024 * 1024 < len(body) < LIMIT
    status, answer = request(server.url, "POST", "/v1/models/mer:predict", body)
    assert status == 200, answer
    assert answer["predictions"][0]["quadrant"] in {"Q1", "Q2", "Q3", "Q4"}


# --- Degrading instead of dying: broken versions, missing folders, bad start-up ---


def _corrupt_version(base, version):
    (base / str(version)).mkdir(parents=True)
    (base / str(version) / "saved_model.pb").write_bytes(b"not a saved model")
    settled = time.time() - 10  # as if written 10 s ago: the server loads settled files only
    os.utime(base / str(version) / "saved_model.pb", (settled, settled))


def _served_version(url):
    status, body = request(url, "GET", "/v1/models/mer/metadata")
    return body["model_spec"]["version"] if status == 200 else None


def test_start_with_a_broken_newest_version_serves_the_one_below(pushed_base, tmp_path):
    base = tmp_path / "mer"
    shutil.copytree(pushed_base / "mer" / "1", base / "1")
    _corrupt_version(base, 2)
    srv = RestServer(
        models=[ServedModelConfig(name="mer", base_path=str(base))], port=0, poll_seconds=0
    )
    with srv:
        assert _served_version(srv.url) == "1"
        valid_predict(srv.url)
        status = request(srv.url, "GET", "/v1/models/mer")[1]["model_version_status"]
        states = {s["version"]: s for s in status}
        assert states["1"]["state"] == "AVAILABLE"
        assert states["2"]["state"] == "END"
        assert states["2"]["status"]["error_code"] == "UNKNOWN"
        assert "Failed to load version 2" in states["2"]["status"]["error_message"]
        assert srv.managers["mer"].failed_versions().keys() == {2}
        # Version 1's folder disappears: nothing is served ...
        shutil.move(base / "1", tmp_path / "moved")
        srv.managers["mer"].refresh()
        assert _served_version(srv.url) is None
        assert request(srv.url, "POST", "/v1/models/mer:predict", {"instances": [[0.1]]})[0] == 404
        # ... and comes back: loaded again, although the broken version 2 is still there.
        shutil.move(tmp_path / "moved", base / "1")
        srv.managers["mer"].refresh()
        assert _served_version(srv.url) == "1"
        valid_predict(srv.url)
        # Version 2 repaired in place (its files change): retried and served.
        shutil.rmtree(base / "2")
        shutil.copytree(base / "1", base / "2")
        srv.managers["mer"].refresh()
        assert _served_version(srv.url) == "2"


def test_latest_two_skips_a_broken_version(pushed_base, tmp_path):
    base = tmp_path / "mer"
    shutil.copytree(pushed_base / "mer" / "1", base / "1")
    shutil.copytree(pushed_base / "mer" / "1", base / "2")
    _corrupt_version(base, 3)
    config = ServedModelConfig(name="mer", base_path=str(base), num_versions=2)
    with RestServer(models=[config], port=0, poll_seconds=0) as srv:
        assert srv.managers["mer"].served_versions() == [1, 2]


def test_missing_base_path_fails_before_loading(tmp_path, monkeypatch):
    from mer_tfx.server.versions import ModelManager

    monkeypatch.setattr(ModelManager, "start", lambda self: pytest.fail("a model was loaded"))
    srv = RestServer(
        models=[ServedModelConfig(name="mer", base_path=str(tmp_path / "nope"))], port=0
    )
    with pytest.raises(ParameterError, match="does not exist"):
        srv.bind()


def test_port_in_use_fails_before_loading(pushed_base, monkeypatch):
    import socket

    from mer_tfx.server.versions import ModelManager

    monkeypatch.setattr(ModelManager, "start", lambda self: pytest.fail("a model was loaded"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        srv = RestServer(
            models=[ServedModelConfig(name="mer", base_path=str(pushed_base / "mer"))], port=port
        )
        with pytest.raises(ParameterError, match=f"Cannot listen on 127.0.0.1:{port}"):
            srv.bind()


# --- The connection edge: read deadline, idle timeout, connection cap, draining ---


def _edge_server(pushed_base, **kwargs):
    return RestServer(
        models=[ServedModelConfig(name="mer", base_path=str(pushed_base / "mer"))],
        port=0,
        poll_seconds=0,
        **kwargs,
    )


def _connect(url, timeout=30):
    import socket

    parts = urlparse(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def test_a_stalling_client_is_closed_at_the_read_deadline(pushed_base):
    body = json.dumps({"instances": [clip(1.0).tolist()]}).encode()
    with _edge_server(pushed_base, read_deadline_seconds=2, idle_timeout_seconds=1.5) as srv:
        sock = _connect(srv.url)
        sock.settimeout(0.5)
        ended = []

        def stall():
            # Headers, then one body byte every 0.5 s: never idle for 1.5 s, never done.
            started = time.monotonic()
            sock.sendall(
                b"POST /v1/models/mer:predict HTTP/1.1\r\nHost: x\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
            )
            answer = b""
            try:
                for byte in body[:60]:  # 30 s of stalling at most
                    sock.sendall(bytes([byte]))
                    try:
                        answer = sock.recv(65536)
                        break  # answered or closed (b"")
                    except TimeoutError:
                        pass
            except OSError:  # reset by the server
                pass
            ended.append((time.monotonic() - started, answer))

        staller = threading.Thread(target=stall)
        staller.start()
        time.sleep(0.3)
        valid_predict(srv.url)  # another client is answered meanwhile
        staller.join(timeout=60)
        sock.close()
        ((seconds, answer),) = ended
        assert seconds < 2 + 2, seconds
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        valid_predict(srv.url)


def test_an_idle_connection_is_closed_after_the_idle_timeout(pushed_base):
    with _edge_server(pushed_base, idle_timeout_seconds=1) as srv:
        with _connect(srv.url) as sock:
            started = time.monotonic()
            assert sock.recv(1) == b""  # end of file: the server closed it
            assert time.monotonic() - started < 1 + 2


def test_hundred_idle_connections_do_not_block_requests(pushed_base):
    with _edge_server(pushed_base, max_connections=128) as srv:
        idle = [_connect(srv.url) for _ in range(100)]
        try:
            for _ in range(3):
                valid_predict(srv.url)
            assert request(srv.url, "GET", "/v1/models/mer")[0] == 200
        finally:
            for sock in idle:
                sock.close()


def test_above_the_connection_cap_a_new_connection_gets_503(pushed_base):
    with _edge_server(pushed_base, max_connections=2) as srv:
        idle = [_connect(srv.url) for _ in range(2)]
        try:
            time.sleep(0.2)  # both accepted
            status, answer = request(srv.url, "GET", "/v1/models/mer")
            assert status == 503 and "max-connections" in answer["error"], answer
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 10
        while request(srv.url, "GET", "/v1/models/mer")[0] != 200:
            assert time.monotonic() < deadline, "the closed connections were not released"
            time.sleep(0.1)
        valid_predict(srv.url)


def test_shutdown_finishes_the_request_in_flight(pushed_base):
    body = json.dumps({"instances": [clip(1.0).tolist()]}).encode()
    srv = _edge_server(pushed_base).start()
    idle = _connect(srv.url)
    sock = _connect(srv.url)
    try:
        sock.sendall(
            b"POST /v1/models/mer:predict HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:1000]
        )
        time.sleep(0.3)  # the request is being read
        result = []
        stopper = threading.Thread(target=lambda: result.append(srv.shutdown(grace_seconds=20)))
        stopper.start()
        time.sleep(0.5)
        assert idle.recv(1) == b""  # the idle connection is closed at once
        sock.sendall(body[1000:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        stopper.join(timeout=30)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
        assert b"Connection: close" in answer
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["predictions"]
        assert result == [True]
    finally:
        idle.close()
        sock.close()
        srv.shutdown()
