"""The Python call (`mer_tfx.predict`, `mer_tfx.predict_timeline`) with a fixture model
standing in for the shipped one (MER_PRETRAINED_DIR), so no real weights are needed."""

from __future__ import annotations

import dataclasses
import logging
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile  # noqa: E402

import mer_tfx  # noqa: E402
from mer_tfx import api, pretrained  # noqa: E402
from mer_tfx.client.predictions import ServingError  # noqa: E402
from mer_tfx.contract import QUADRANT_BY_INDEX  # noqa: E402
from mer_tfx.errors import AudioLoadError, ParameterError  # noqa: E402
from tests.fixtures.serving import music_like  # noqa: E402

RATE = 22050  # the fixture's "small" preset


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A folder in the shipped model's layout (`mer/1/`), used as the shipped model."""
    from tests.fixtures.serving import write_pushed_model

    folder = tmp_path_factory.mktemp("pretrained")
    write_pushed_model(folder, model_name="mer", version=1, seed=0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(pretrained.ENV_PRETRAINED_DIR, str(folder))
        yield folder


@pytest.fixture(scope="module")
def songs():
    return [music_like(seconds=3.0, sample_rate=RATE, seed=seed) for seed in (1, 2)]


def test_predict_two_waveforms_with_the_shipped_model(shipped, songs):
    from mer_tfx.client.local_model import LocalModel

    results = mer_tfx.predict(songs, sample_rate=RATE)

    assert isinstance(results, list) and len(results) == 2
    assert [r.source for r in results] == ["<waveform 0>", "<waveform 1>"]
    for result in results:
        assert isinstance(result, mer_tfx.SongPrediction)
        assert 0.0 <= result.valence_probability <= 1.0
        assert 0.0 <= result.arousal_probability <= 1.0
        assert result.valence_label == int(result.valence_probability > 0.5)
        assert result.arousal_label == int(result.arousal_probability > 0.5)
        assert result.quadrant == QUADRANT_BY_INDEX[result.valence_label + 2 * result.arousal_label]
        assert result.seconds == pytest.approx(3.0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.quadrant = "Q1"
    # The numbers are the shipped model's own (what `mer predict` prints for them), up to
    # float32 rounding: TensorFlow's CPU kernels may sum in another order from one model
    # load to the next (a 6e-8 difference was seen on a busy machine).
    expected = LocalModel(model_dir=shipped).predict(songs)
    for result, reference in zip(results, expected, strict=True):
        assert_same_answer(result, reference)


def assert_same_answer(a, b) -> None:
    """The same probabilities up to float32 rounding, so the same labels and quadrant."""
    assert a.valence_probability == pytest.approx(b.valence_probability, abs=1e-6)
    assert a.arousal_probability == pytest.approx(b.arousal_probability, abs=1e-6)
    assert (a.valence_label, a.arousal_label, a.quadrant) == (
        b.valence_label,
        b.arousal_label,
        b.quadrant,
    )


def test_files_waveforms_and_batches_give_the_same_answer(shipped, songs, tmp_path):
    path = tmp_path / "song.flac"
    soundfile.write(path, songs[0], RATE)  # 16-bit FLAC of the same samples

    from_file, from_waveform = mer_tfx.predict([path, songs[0]], sample_rate=RATE)
    as_batch = mer_tfx.predict(np.stack(songs), sample_rate=RATE)

    assert from_file.source == str(path)
    # The file holds 16-bit samples (step 3e-5): the probabilities move < 1e-3.
    assert from_file.valence_probability == pytest.approx(
        from_waveform.valence_probability, abs=1e-3
    )
    assert from_file.arousal_probability == pytest.approx(
        from_waveform.arousal_probability, abs=1e-3
    )
    assert as_batch == mer_tfx.predict(songs, sample_rate=RATE)
    assert as_batch[0] == dataclasses.replace(from_waveform, source="<waveform 0>")


def test_waveforms_at_another_rate_are_resampled(shipped):
    import soxr

    at_16k = music_like(seconds=3.0, sample_rate=16000, seed=4)
    by_hand = np.asarray(soxr.resample(at_16k, 16000, RATE, quality="HQ"), np.float32)

    (resampled,) = mer_tfx.predict(at_16k, sample_rate=16000)
    (reference,) = mer_tfx.predict(by_hand, sample_rate=RATE)

    assert resampled.seconds == pytest.approx(3.0, abs=1e-3)
    assert resampled.valence_probability == pytest.approx(reference.valence_probability, abs=1e-6)


def test_to_dataframe_has_a_row_per_song(shipped, songs):
    frame = mer_tfx.predict(songs, sample_rate=RATE).to_dataframe()

    assert list(frame.columns) == [
        "source", "valence_probability", "arousal_probability", "valence_label",
        "arousal_label", "quadrant", "seconds",
    ]  # fmt: skip
    assert frame["source"].tolist() == ["<waveform 0>", "<waveform 1>"]
    assert frame["quadrant"].isin(["Q1", "Q2", "Q3", "Q4"]).all()


def test_a_model_folder_gives_the_shipped_models_answer(shipped, songs):
    default = mer_tfx.predict(songs, sample_rate=RATE)
    for model in (shipped, shipped / "mer", str(shipped / "mer" / "1")):
        answers = mer_tfx.predict(songs, model=model, sample_rate=RATE)
        assert [a.source for a in answers] == [d.source for d in default]
        for answer, reference in zip(answers, default, strict=True):
            assert_same_answer(answer, reference)


def test_a_url_is_a_running_server(shipped, songs):
    from mer_tfx.server.rest_server import RestServer, ServedModelConfig

    server = RestServer(
        models=[ServedModelConfig(name="mer", base_path=str(shipped / "mer"))],
        port=0,
        poll_seconds=0,
    )
    server.start()
    try:
        over_rest = mer_tfx.predict(songs, model=server.url, sample_rate=RATE)
    finally:
        server.shutdown()
    in_process = mer_tfx.predict(songs, sample_rate=RATE)
    for a, b in zip(over_rest, in_process, strict=True):
        # The client sends 16-bit WAV: probabilities move < 1e-3.
        assert a.valence_probability == pytest.approx(b.valence_probability, abs=1e-3)
        assert a.arousal_probability == pytest.approx(b.arousal_probability, abs=1e-3)


def test_predict_timeline_returns_the_windows_of_mer_predict_timeline(shipped):
    from mer_tfx.client.local_model import LocalModel
    from mer_tfx.client.timeline import analyse_timeline

    song = music_like(seconds=25.0, sample_rate=RATE, seed=5)

    timeline = mer_tfx.predict_timeline(song, sample_rate=RATE, window_seconds=10, hop_seconds=5)

    assert timeline.starts.tolist() == [0.0, 5.0, 10.0, 15.0]
    assert timeline.ends.tolist() == [10.0, 15.0, 20.0, 25.0]
    expected = analyse_timeline(
        song,
        model=LocalModel(model_dir=shipped),
        sample_rate=RATE,
        window_seconds=10,
        hop_seconds=5,
    )
    assert timeline.predictions == expected.predictions


def test_the_shipped_models_terms_are_logged_once(shipped, songs, caplog):
    api._say_shipped_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="mer_tfx.api"):
        mer_tfx.predict(songs[0], sample_rate=RATE)
        mer_tfx.predict(songs[1], sample_rate=RATE)
        mer_tfx.predict(songs[1], model=shipped, sample_rate=RATE)

    lines = [r.getMessage() for r in caplog.records if r.name == "mer_tfx.api"]
    assert len(lines) == 1
    assert "research use only" in lines[0]
    assert str(shipped / "WEIGHTS_TERMS.md") in lines[0]


def test_clear_errors(shipped, songs, tmp_path, monkeypatch):
    with pytest.raises(ParameterError, match="sample_rate is needed"):
        mer_tfx.predict(songs)
    with pytest.raises(ParameterError, match="Received: shape"):
        mer_tfx.predict(np.zeros([1, 2, 3], np.float32), sample_rate=RATE)
    with pytest.raises(AudioLoadError, match="missing.wav"):
        mer_tfx.predict(tmp_path / "missing.wav")
    with pytest.raises(ServingError, match="<waveform 0>: .*silent"):
        mer_tfx.predict(np.zeros(RATE, np.float32), sample_rate=RATE)
    with pytest.raises(ParameterError, match="No SavedModel"):
        mer_tfx.predict(songs, model=tmp_path, sample_rate=RATE)
    monkeypatch.setenv(pretrained.ENV_PRETRAINED_DIR, str(tmp_path))
    with pytest.raises(ParameterError, match="No model is shipped"):
        mer_tfx.predict(songs, sample_rate=RATE)
