import json
from types import SimpleNamespace

import apache_beam as beam
from apache_beam.testing import test_pipeline

from components import artifact_files
from components.audio_example_gen import reports
from components.audio_example_gen.decode import EncodedSong
from components.conftest import TINY_PRESET
from mer_tfx import contract


def _index(skipped=()):
    return SimpleNamespace(
        layout="4q",
        root="/data/4q",
        label_info={"method": "quadrant"},
        records=[object()] * 5,
        skipped=list(skipped),
    )


def test_write_reports_counts_by_split_and_quadrant_and_lists_every_skip(tmp_path):
    index = _index([SimpleNamespace(path=None, song_id="gone", reason="no audio file")])
    with test_pipeline.TestPipeline() as pipeline:
        train = pipeline | "Train" >> beam.Create(
            [EncodedSong("a", "Q1", b""), EncodedSong("b", "Q1", b""), EncodedSong("c", "Q2", b"")]
        )
        eval_ = pipeline | "Eval" >> beam.Create([EncodedSong("d", "Q3", b"")])
        failures = pipeline | "Failures" >> beam.Create(
            [{"path": "/data/4q/Q1/x.wav", "song_id": "x", "reason": "corrupt"}]
        )
        _ = ({"train": train, "eval": eval_}, failures) | reports.WriteReports(
            str(tmp_path), index=index, preset=TINY_PRESET, kmeans_seed=3
        )
    info = artifact_files.read_label_info(str(tmp_path))
    assert info["counts"] == {
        "songs_indexed": 5,
        "examples": 4,
        "skipped_files": 2,
        "splits": {
            "eval": {"examples": 1, "quadrants": {"Q3": 1}},
            "train": {"examples": 3, "quadrants": {"Q1": 2, "Q2": 1}},
        },
    }
    assert (info["preset"], info["kmeans_seed"], info["layout"]) == (TINY_PRESET.name, 3, "4q")
    rows = reports.read_skipped_files(str(tmp_path / contract.SKIPPED_FILES_FILE))
    assert rows == [
        {"path": "", "song_id": "gone", "reason": "no audio file"},
        {"path": "/data/4q/Q1/x.wav", "song_id": "x", "reason": "corrupt"},
    ]


def test_write_reports_writes_both_files_when_nothing_was_decoded(tmp_path):
    with test_pipeline.TestPipeline() as pipeline:
        nothing = pipeline | "Nothing" >> beam.Create([])
        failures = pipeline | "Failures" >> beam.Create([])
        _ = ({"train": nothing}, failures) | reports.WriteReports(
            str(tmp_path), index=_index(), preset=TINY_PRESET, kmeans_seed=0
        )
    assert artifact_files.read_label_info(str(tmp_path))["counts"]["examples"] == 0
    with open(tmp_path / contract.SKIPPED_FILES_FILE) as handle:
        assert handle.read() == "path,song_id,reason\n"
    with open(tmp_path / contract.LABEL_INFO_FILE) as handle:
        assert json.load(handle)["counts"]["splits"] == {}


def test_no_examples_message_tells_audio_from_label_failures_and_names_only_what_exists(
    tmp_path,
):
    rows = [
        {"path": "/gone/a.wav", "song_id": "a", "reason": "file is empty (0 bytes)"},
        {
            "path": "/gone/b.wav",
            "song_id": "b",
            "reason": "m.csv line 3: quadrant 'x' is not Q1..Q4",
        },
    ]
    mixed = reports.no_examples_message(str(tmp_path), rows)
    assert f"No audio file in {str(tmp_path)!r} could be read: 1 skipped for their audio" in mixed
    assert (
        "a: file is empty (0 bytes)" in mixed and "1 more were skipped for invalid labels" in mixed
    )
    labels_only = reports.no_examples_message(str(tmp_path / "missing.csv"), rows[1:])
    assert "The labels, not the audio, are invalid" in labels_only
    assert "missing.csv" not in labels_only  # a source that does not exist is not named
