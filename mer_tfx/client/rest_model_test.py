"""The client (`mer predict`), REST and in process, and the timeline."""

from __future__ import annotations

import io
import json
import os
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from mer_tfx import cli, contract
from mer_tfx.client.file_predictions import predict_files
from mer_tfx.client.local_model import LocalModel
from mer_tfx.client.rest_model import RestModel, ServingError, encode_wav
from mer_tfx.client.timeline import analyse_timeline, window_starts
from mer_tfx.errors import ParameterError
from mer_tfx.server.rest_server import RestServer, ServedModelConfig
from tests.fixtures.serving import music_like

RATE = 22050  # the fixture's "small" preset


@pytest.fixture(scope="module")
def server(pushed_base):
    srv = RestServer(
        models=[ServedModelConfig(name="mer", base_path=str(pushed_base / "mer"))],
        port=0,
        poll_seconds=0,
    )
    srv.start()
    yield srv
    srv.shutdown()


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    """Files of several formats and rates, one corrupt and one empty file."""
    folder = tmp_path_factory.mktemp("audio")
    stereo = np.stack([music_like(seconds=4.0, sample_rate=44100, seed=1)] * 2, axis=1)
    soundfile.write(folder / "a_stereo44k.wav", stereo, 44100, subtype="PCM_16")
    soundfile.write(
        folder / "b_mono16k.flac", music_like(seconds=3.0, sample_rate=16000, seed=2), 16000
    )
    (folder / "c_corrupt.mp3").write_bytes(b"this is not audio" * 10)
    (folder / "d_empty.wav").write_bytes(b"")
    soundfile.write(folder / "e_silent.wav", np.zeros(RATE, np.float32), RATE, subtype="PCM_16")
    soundfile.write(
        folder / "f_long70s.wav",
        music_like(seconds=70.0, sample_rate=RATE, seed=3),
        RATE,
        subtype="PCM_16",
    )
    return folder


GOOD = ["a_stereo44k.wav", "b_mono16k.flac"]
BAD = ["c_corrupt.mp3", "d_empty.wav", "e_silent.wav"]


def test_model_info_over_rest_and_in_process(server, pushed_base):
    for model in (RestModel(url=server.url), LocalModel(model_dir=pushed_base)):
        info = model.model_info()
        assert (info.sample_rate, info.clip_seconds, info.segment_seconds, info.preset) == (
            RATE,
            30.0,
            5.0,
            "small",
        )


def test_rest_json_equals_in_process_and_wav_is_close(server, pushed_base, audio_dir):
    paths = [audio_dir / name for name in GOOD]
    local, _ = predict_files(paths, model=LocalModel(model_dir=pushed_base / "mer"))
    rest_json, _ = predict_files(paths, model=RestModel(url=server.url, payload="json"))
    rest_wav, _ = predict_files(paths, model=RestModel(url=server.url, payload="wav"))
    assert [r.path for r in local] == [str(p) for p in paths]
    for a, b, c in zip(local, rest_json, rest_wav, strict=True):
        # JSON carries the float32 waveform exactly, so the numbers are identical.
        assert a.prediction == b.prediction
        # The WAV path quantises to 16 bits (step 3e-5): probabilities move < 1e-3.
        assert abs(a.prediction.valence_probability - c.prediction.valence_probability) < 1e-3
        assert abs(a.prediction.arousal_probability - c.prediction.arousal_probability) < 1e-3
        assert a.seconds == pytest.approx(b.seconds)


def test_bad_files_are_reported_and_skipped(server, audio_dir):
    paths = [audio_dir / name for name in ["a_stereo44k.wav", *BAD, "b_mono16k.flac"]]
    results, failures = predict_files(paths, model=RestModel(url=server.url))
    assert [Path(r.path).name for r in results] == GOOD
    assert [Path(p).name for p, _ in failures] == BAD
    reasons = dict((Path(p).name, reason) for p, reason in failures)
    assert "silent" in reasons["e_silent.wav"]
    assert "empty" in reasons["d_empty.wav"]


def test_predict_command_table(server, audio_dir, capsys):
    files = [
        str(audio_dir / name) for name in ["a_stereo44k.wav", "c_corrupt.mp3", "b_mono16k.flac"]
    ]
    code = cli.main(["predict", *files, "--url", server.url])
    out, err = capsys.readouterr()
    assert code == 1  # one file failed
    lines = out.strip().splitlines()
    assert lines[0].split() == ["file", "seconds", "valence", "arousal", "quadrant"]
    assert [line.split()[0] for line in lines[2:]] == GOOD
    for line in lines[2:]:
        cells = line.split()
        assert (
            cells[3] in {"high", "low"}
            and cells[5] in {"high", "low"}
            and cells[6] in {"Q1", "Q2", "Q3", "Q4"}
        )
    assert "c_corrupt.mp3" in err and "skipped" in err


def test_predict_command_json_in_process(pushed_base, audio_dir, capsys):
    files = [str(audio_dir / name) for name in GOOD]
    code = cli.main(["predict", *files, "--model-dir", str(pushed_base), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    rows = json.loads(out)
    assert [row["file"] for row in rows] == files
    for row in rows:
        assert 0.0 <= row["valence_probability"] <= 1.0 and row["valence_label"] in (0, 1)
        assert row["quadrant"] in {"Q1", "Q2", "Q3", "Q4"}
    assert rows[0]["seconds"] == pytest.approx(4.0, abs=0.01)


def test_predict_command_json_reports_errors_in_place(server, audio_dir, capsys):
    files = [str(audio_dir / name) for name in ["d_empty.wav", "a_stereo44k.wav"]]
    code = cli.main(["predict", *files, "--url", server.url, "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 1
    assert set(rows[0]) == {"file", "error"} and rows[0]["file"] == files[0]
    assert "quadrant" in rows[1]


def test_unreachable_server_is_a_clear_error(audio_dir, capsys):
    code = cli.main(["predict", str(audio_dir / GOOD[0]), "--url", "http://127.0.0.1:9"])
    assert code == 1
    assert "Cannot reach" in capsys.readouterr().err


def test_client_parameter_errors(pushed_base):
    with pytest.raises(ParameterError, match="url"):
        RestModel(url="ftp://host")
    with pytest.raises(ParameterError, match="payload"):
        RestModel(url="http://localhost:8501", payload="xml")
    with pytest.raises(ParameterError, match="No SavedModel"):
        LocalModel(model_dir=pushed_base.parent)
    with pytest.raises(ServingError, match="silent"):
        LocalModel(model_dir=pushed_base).predict([np.zeros(100, np.float32)])


@pytest.mark.parametrize(
    "seconds, window, hop, expected",
    [
        (95, 30, 10, [0, 10, 20, 30, 40, 50, 60, 65]),  # last window aligned to the end
        (70, 30, 20, [0, 20, 40]),  # the last window ends exactly at the end
        (30, 30, 10, [0]),
        (12, 30, 10, [0]),  # shorter than a window: one (looped by the model)
        (60, 30, 30, [0, 30]),
    ],
)
def test_window_starts(seconds, window, hop, expected):
    starts = window_starts(
        num_samples=seconds * 100, sample_rate=100, window_seconds=window, hop_seconds=hop
    )
    assert (starts / 100).tolist() == expected


def test_timeline_batches_agree_with_single_calls(pushed_base):
    model = LocalModel(model_dir=pushed_base)
    waveform = music_like(seconds=45.0, sample_rate=RATE, seed=7)
    timeline = analyse_timeline(
        waveform, model=model, sample_rate=RATE, window_seconds=30, hop_seconds=5, batch_size=3
    )
    assert len(timeline) == 4 and timeline.ends[-1] == pytest.approx(45.0)
    second = model.predict([waveform[5 * RATE : 35 * RATE]])[0]
    got = timeline.predictions[1]
    assert got.quadrant == second.quadrant
    # Batched and single calls sum float32 products in another order: ~1e-7 apart.
    assert got.valence_probability == pytest.approx(second.valence_probability, abs=1e-5)
    assert got.arousal_probability == pytest.approx(second.arousal_probability, abs=1e-5)


def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_timeline_command_writes_png(server, audio_dir, tmp_path, capsys):
    plot = tmp_path / "timeline.png"
    song = str(audio_dir / "f_long70s.wav")
    code = cli.main(
        [
            "predict",
            song,
            "--url",
            server.url,
            "--timeline",
            "--window",
            "30",
            "--hop",
            "20",
            "--plot",
            str(plot),
            "--json",
        ]
    )
    assert code == 0
    (timeline,) = json.loads(capsys.readouterr().out)
    assert [(w["start"], w["end"]) for w in timeline["windows"]] == [
        (0.0, 30.0),
        (20.0, 50.0),
        (40.0, 70.0),
    ]
    width, height = _png_size(plot)
    assert width > 400 and height > 200
    assert os.path.getsize(plot) > 5000


def test_timeline_plot_per_file_for_several_files(pushed_base, audio_dir, tmp_path, capsys):
    plot = tmp_path / "tl.png"
    files = [str(audio_dir / "f_long70s.wav"), str(audio_dir / "a_stereo44k.wav")]
    code = cli.main(
        ["predict", *files, "--model-dir", str(pushed_base), "--timeline", "--plot", str(plot)]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "f_long70s.wav: 70.0 s, 5 window(s) of 30 s every 10 s" in out
    assert (tmp_path / "tl_f_long70s.png").exists() and (tmp_path / "tl_a_stereo44k.png").exists()


def _shared_data() -> Path:
    env = os.environ.get("MER_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.shared_data
def test_real_mp3s_of_mixed_rates(pushed_base):
    import soundfile as sf

    folder = _shared_data() / "4q"
    if not folder.is_dir():
        pytest.skip(f"no shared data at {folder}")
    by_rate = {}
    for path in sorted(folder.glob("Q*/*.mp3")):
        by_rate.setdefault(sf.info(str(path)).samplerate, path)
        if len(by_rate) >= 3:
            break
    results, failures = predict_files(
        list(by_rate.values()), model=LocalModel(model_dir=pushed_base)
    )
    assert failures == [] and len(results) == len(by_rate)
    assert all(r.seconds > 5 for r in results)


def test_json_payload_splits_large_batches_and_keeps_order(server, pushed_base):
    """5 clips of 30 s as JSON floats are ~70 MB, over the server's 64 MiB: sent in chunks."""
    waveforms = [music_like(seconds=30.0, sample_rate=RATE, seed=20 + i) for i in range(5)]
    rest = RestModel(url=server.url, payload="json").predict(waveforms)
    local = LocalModel(model_dir=pushed_base).predict(waveforms)
    assert [p.quadrant for p in rest] == [p.quadrant for p in local]
    for a, b in zip(rest, local, strict=True):
        # Different batch compositions sum float32 products in another order: ~1e-7.
        assert a.valence_probability == pytest.approx(b.valence_probability, abs=1e-5)


def test_encode_wav_writes_the_contracts_wire_format():
    # The serving graph reads the canonical 44-byte header on a fast path: every fixed
    # piece and offset the contract names must be where the graph looks for it.
    waveform = np.concatenate(
        [music_like(seconds=0.5, sample_rate=16000, seed=3), [1.5, -1.5, 0.5 / 32767, -1.0]]
    ).astype(np.float32)
    data = encode_wav(waveform, sample_rate=16000)
    for offset, magic in contract.WAV_CANONICAL_HEADER:
        assert data[offset : offset + len(magic)] == magic
    assert struct.unpack_from("<H", data, contract.WAV_CHANNELS_OFFSET) == (1,)
    assert struct.unpack_from("<I", data, contract.WAV_RATE_OFFSET) == (16000,)
    size = len(waveform) * contract.WAV_SAMPLE_WIDTH_BYTES
    assert struct.unpack_from("<I", data, contract.WAV_DATA_SIZE_OFFSET) == (size,)
    assert len(data) == contract.WAV_HEADER_BYTES + size
    # Samples: round(x * 32767), clipped to int16 (1.5 -> 32767, -1.5 -> -32768).
    pcm = np.frombuffer(data[contract.WAV_HEADER_BYTES :], "<i2")
    expected = np.clip(np.round(waveform * np.float32(32767.0)), -32768, 32767)  # in float32
    np.testing.assert_array_equal(pcm, expected)
    assert pcm[[-4, -3, -1]].tolist() == [32767, -32768, -32767]
    # Any WAV reader gets the same clip back.
    with wave.open(io.BytesIO(data)) as reader:
        assert (reader.getnchannels(), reader.getframerate()) == (1, 16000)
        assert reader.readframes(reader.getnframes()) == pcm.tobytes()
