"""Catalog scoring (`mer score`): outputs, the skipped sidecar, reruns, the timeline."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile

from mer_tfx import cli
from mer_tfx.client.file_predictions import predict_files
from mer_tfx.client.local_model import LocalModel
from mer_tfx.errors import ParameterError
from mer_tfx.scoring.catalog import (
    SCORE_COLUMNS,
    TIMELINE_COLUMNS,
    TimelineSettings,
    default_beam_args,
    list_songs,
    read_scores,
    score_catalog,
    skipped_path,
)
from tests.fixtures.serving import music_like

RATE = 22050  # the fixture's "small" preset
IN_MEMORY = ["--direct_running_mode=in_memory"]  # one process: fast for tiny catalogs
GOOD = ["album/a.wav", "b.flac", "c.wav"]
BAD = {"bad/corrupt.mp3": "decode", "silent.wav": "silent"}


def _write_catalog(folder):
    (folder / "album").mkdir(parents=True)
    (folder / "bad").mkdir()
    soundfile.write(folder / "album/a.wav", music_like(seconds=3.0, sample_rate=RATE, seed=1), RATE)
    soundfile.write(folder / "b.flac", music_like(seconds=2.0, sample_rate=16000, seed=2), 16000)
    soundfile.write(folder / "c.wav", music_like(seconds=45.0, sample_rate=RATE, seed=3), RATE)
    (folder / "bad/corrupt.mp3").write_bytes(b"this is not audio" * 10)
    soundfile.write(folder / "silent.wav", np.zeros(RATE, np.float32), RATE, subtype="PCM_16")
    (folder / "notes.txt").write_text("not a song")
    return folder


@pytest.fixture
def catalog(tmp_path):
    return _write_catalog(tmp_path / "catalog")


def _skipped(out):
    with skipped_path(out).open(newline="") as f:
        return {row["song_id"]: row["reason"] for row in csv.DictReader(f)}


def test_csv_scores_every_readable_song_like_mer_predict(catalog, tmp_path, pushed_base):
    out = tmp_path / "scores.csv"
    report = score_catalog(catalog, model_dir=pushed_base, out=out, beam_args=IN_MEMORY)
    assert (report.listed, report.scored, len(report.skipped)) == (5, 3, 2)
    rows = read_scores(out)
    assert tuple(rows[0]) == SCORE_COLUMNS
    assert [row["song_id"] for row in rows] == ["album/a", "b", "c"]
    # The same numbers as `mer predict` on the same files (batching changes float sums: ~1e-7).
    expected, _ = predict_files(
        [catalog / name for name in GOOD], model=LocalModel(model_dir=pushed_base)
    )
    for row, result in zip(rows, expected, strict=True):
        p = result.prediction
        assert row["path"] == result.path
        assert float(row["valence_probability"]) == pytest.approx(p.valence_probability, abs=1e-5)
        assert float(row["arousal_probability"]) == pytest.approx(p.arousal_probability, abs=1e-5)
        assert (int(row["valence_label"]), int(row["arousal_label"]), row["quadrant"]) == (
            p.valence_label,
            p.arousal_label,
            p.quadrant,
        )
        assert float(row["seconds"]) == pytest.approx(result.seconds, abs=0.01)
    # Unreadable songs are listed with their reason and did not stop the job.
    reasons = _skipped(out)
    assert sorted(reasons) == ["bad/corrupt", "silent"]
    assert "silent" in reasons["silent"]
    assert reasons["bad/corrupt"]


def test_a_rerun_scores_only_the_songs_not_yet_in_the_output(catalog, tmp_path, pushed_base):
    out = tmp_path / "scores.parquet"
    score_catalog(catalog, model_dir=pushed_base, out=out, beam_args=IN_MEMORY)
    first = pq.read_table(out).to_pylist()
    soundfile.write(catalog / "d.wav", music_like(seconds=5.0, sample_rate=RATE, seed=4), RATE)
    report = score_catalog(catalog, model_dir=pushed_base, out=out, beam_args=IN_MEMORY)
    # The 3 scored songs are not scored again; the unreadable ones are retried.
    assert (report.listed, report.already_scored, report.scored) == (6, 3, 1)
    assert sorted(_skipped(out)) == ["bad/corrupt", "silent"]
    second = pq.read_table(out).to_pylist()
    assert second[:3] == first and [row["song_id"] for row in second[3:]] == ["d"]
    # Nothing left to do: the output stays as it is.
    report = score_catalog(catalog, model_dir=pushed_base, out=out, beam_args=IN_MEMORY)
    assert (report.already_scored, report.scored) == (4, 0)
    assert pq.read_table(out).to_pylist() == second


def test_timeline_columns_in_parquet_and_csv(catalog, tmp_path, pushed_base):
    timeline = TimelineSettings(window_seconds=30.0, hop_seconds=10.0)
    parquet, text = tmp_path / "timeline.parquet", tmp_path / "timeline.csv"
    score_catalog(
        catalog, model_dir=pushed_base, out=parquet, timeline=timeline, beam_args=IN_MEMORY
    )
    table = pq.read_table(parquet)
    assert tuple(table.column_names) == SCORE_COLUMNS + TIMELINE_COLUMNS
    by_id = {row["song_id"]: row for row in table.to_pylist()}
    long_song = by_id["c"]  # 45 s: windows at 0, 10 and 15 s (the last ends at the song's end)
    assert long_song["window_start"] == [0.0, 10.0, 15.0]
    assert long_song["window_end"] == [30.0, 40.0, 45.0]
    assert len(long_song["window_quadrant"]) == 3
    assert set(long_song["window_quadrant"]) <= {"Q1", "Q2", "Q3", "Q4"}
    assert all(0.0 <= v <= 1.0 for v in long_song["window_valence_probability"])
    # The first window is the first 30 s: the song's own prediction.
    assert long_song["window_valence_probability"][0] == pytest.approx(
        long_song["valence_probability"], abs=1e-5
    )
    assert by_id["b"]["window_start"] == [0.0]  # shorter than a window: one window
    score_catalog(catalog, model_dir=pushed_base, out=text, timeline=timeline, beam_args=IN_MEMORY)
    rows = {row["song_id"]: row for row in read_scores(text)}
    assert json.loads(rows["c"]["window_end"]) == [30.0, 40.0, 45.0]
    # An output written without a timeline is not silently mixed with one.
    plain = tmp_path / "plain.csv"
    score_catalog(catalog, model_dir=pushed_base, out=plain, beam_args=IN_MEMORY)
    with pytest.raises(ParameterError, match="timeline"):
        score_catalog(catalog, model_dir=pushed_base, out=plain, timeline=timeline)


def test_manifest_with_relative_paths_and_song_ids(catalog, tmp_path, pushed_base):
    manifest = catalog / "manifest.csv"
    manifest.write_text(
        "song_id,path,quadrant\nfirst,album/a.wav,Q1\nmissing,gone.wav,Q2\nagain,album/a.wav,Q1\n"
    )  # a song listed twice is scored once
    assert [(s.song_id, s.path) for s in list_songs(manifest)] == [
        ("first", str((catalog / "album/a.wav").resolve())),
        ("missing", str((catalog / "gone.wav").resolve())),
    ]
    out = tmp_path / "scores.csv"
    report = score_catalog(manifest, model_dir=pushed_base, out=out, beam_args=IN_MEMORY)
    assert [row["song_id"] for row in read_scores(out)] == ["first"]
    assert [s[1] for s in report.skipped] == ["missing"]


def test_bad_arguments_are_parameter_errors(catalog, tmp_path, pushed_base):
    with pytest.raises(ParameterError, match="parquet"):
        score_catalog(catalog, model_dir=pushed_base, out=tmp_path / "scores.json")
    with pytest.raises(ParameterError, match="folder or a manifest"):
        score_catalog(tmp_path / "nowhere", model_dir=pushed_base, out=tmp_path / "s.csv")
    with pytest.raises(ParameterError, match="No SavedModel"):
        score_catalog(catalog, model_dir=tmp_path, out=tmp_path / "s.csv")


def test_score_command_runs_the_default_multi_process_runner(catalog, tmp_path, pushed_base):
    out = tmp_path / "scores.csv"
    code = cli.main(
        [
            "score",
            str(catalog),
            "--model-dir",
            str(pushed_base),
            "--out",
            str(out),
            "--beam-arg=--direct_num_workers=2",
        ]  # fmt: skip
    )
    assert code == 0
    assert [row["song_id"] for row in read_scores(out)] == ["album/a", "b", "c"]
    assert sorted(_skipped(out)) == ["bad/corrupt", "silent"]


def test_default_runner_is_one_process_per_core_unless_the_user_chooses():
    multi = "--direct_running_mode=multi_processing"
    assert default_beam_args([], workers=4) == ["--direct_num_workers=4", multi]
    assert default_beam_args(["--direct_num_workers=3"], workers=4) == [
        "--direct_num_workers=3",
        multi,
    ]
    assert default_beam_args(["--runner=FlinkRunner"], workers=4) == ["--runner=FlinkRunner"]
    assert default_beam_args(["--direct_running_mode", "in_memory"], workers=4) == [
        "--direct_running_mode",
        "in_memory",
    ]
    assert default_beam_args([], workers=1) == []


def test_a_progress_bar_counts_every_song_scored_or_skipped(
    catalog, tmp_path, pushed_base, monkeypatch
):
    import io

    from tqdm import tqdm

    from mer_tfx import console

    bars = []

    def recording_progress(*, total, desc, unit="it", **kwargs):
        bars.append(tqdm(total=total, desc=desc, unit=unit, file=io.StringIO(), **kwargs))
        return bars[-1]

    monkeypatch.setattr(console, "progress", recording_progress)
    score_catalog(catalog, model_dir=pushed_base, out=tmp_path / "scores.csv", beam_args=IN_MEMORY)
    (bar,) = bars
    assert (bar.desc, bar.total, bar.n) == ("mer score", 5, 5)  # 3 scored + 2 skipped
