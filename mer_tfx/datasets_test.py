"""Tests for mer_tfx.datasets on tiny PMEmo / 4Q / manifest fixtures (no audio is decoded)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mer_tfx.datasets import (
    DatasetIndex,
    Record,
    Skipped,
    check_unlabeled_data,
    detect_layout,
    read_dataset,
)
from mer_tfx.errors import DatasetError, ParameterError


def _shared_data() -> Path:
    """<repo>/../shared/data, or $MER_SHARED_DATA."""
    env = os.environ.get("MER_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _touch(path: Path, data: bytes = b"not decoded by read_dataset") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


# ----------------------------------------------------------------------------- 4Q


@pytest.fixture
def q4_root(tmp_path) -> Path:
    root = tmp_path / "4q"
    for song, quadrant in [("S1", "Q1"), ("S2", "Q2"), ("S3", "Q3"), ("S4", "Q4"), ("S5", "Q1")]:
        _touch(root / quadrant / f"{song}.mp3")
    _touch(root / "Q2" / "S6.flac")  # another extension, annotated
    _touch(root / "Q3" / "EXTRA.wav")  # audio without annotation
    _touch(root / "Q4" / "cover.txt")  # not audio
    _touch(root / "Q4" / ".DS_Store")  # hidden: ignored silently
    _write(
        root / "panda_dataset_taffc_annotations.csv",
        "Song,Quadrant\nS1,Q1\nS2,Q2\nS3,Q3\nS4,Q4\nS5,Q1\nS6,Q2\nGONE,Q3\n",
    )
    _write(
        root / "panda_dataset_taffc_metadata.csv",
        '"Song","Artist","Title","Quadrant","GenresStr"\n'
        '"S1","Ann","One","Q1","Pop/Rock; Electronic"\n'
        '"S2","Bob","Two","Q2","Jazz"\n'
        '"S3","Cid","Three","Q3",""\n'
        '"S4","Dee","Four","Q4","Blues"\n',
    )
    return root


def test_4q_layout_labels_genres_and_skipped(q4_root):
    assert detect_layout(q4_root) == "4q"
    index = read_dataset(q4_root)

    assert isinstance(index, DatasetIndex) and index.layout == "4q"
    by_id = {r.song_id: r for r in index.records}
    assert list(by_id) == ["S1", "S2", "S3", "S4", "S5", "S6"]  # annotation order
    expected = {"Q1": (1, 1), "Q2": (0, 1), "Q3": (0, 0), "Q4": (1, 0)}
    for record in index.records:
        assert (record.valence_high, record.arousal_high) == expected[record.quadrant]
        assert Path(record.path).is_absolute() and Path(record.path).is_file()
        assert record.valence is None and record.arousal is None
    assert by_id["S6"].path.endswith("S6.flac") and by_id["S6"].quadrant == "Q2"
    assert by_id["S1"].metadata == {
        "genre": "Pop/Rock",
        "genres": "Pop/Rock; Electronic",
        "artist": "Ann",
        "title": "One",
    }
    assert by_id["S3"].metadata["genre"] == "unknown"  # empty GenresStr
    assert by_id["S5"].metadata == {"genre": "unknown"}  # not in the metadata file
    assert index.label_info["method"] == "quadrant"
    assert index.quadrant_counts() == {"Q1": 2, "Q2": 2, "Q3": 1, "Q4": 1}

    reasons = {s.name: s.reason for s in index.skipped}
    assert "no audio" in reasons["GONE"]
    assert "no annotation" in reasons["EXTRA"]
    assert any("cover.txt" in name and "not an audio file" in r for name, r in reasons.items())
    assert not any(".DS_Store" in name for name in reasons)
    assert len(index.skipped) == 3
    assert "GONE" in index.summary()


def test_4q_without_annotations_uses_folder_names(tmp_path):
    root = tmp_path / "4q"
    for song, quadrant in [("a", "Q3"), ("b", "Q1"), ("c", "Q4"), ("d", "Q2")]:
        _touch(root / quadrant / f"{song}.ogg")
    index = read_dataset(root)
    assert [(r.song_id, r.quadrant) for r in index.records] == [
        ("b", "Q1"),
        ("d", "Q2"),
        ("a", "Q3"),
        ("c", "Q4"),
    ]
    assert [(r.valence_high, r.arousal_high) for r in index.records] == [
        (1, 1),
        (0, 1),
        (0, 0),
        (1, 0),
    ]
    assert index.label_info == {"method": "quadrant", "source": "folders"}
    assert all(r.metadata == {} for r in index.records)


def test_4q_annotation_wins_over_folder_and_mismatch_is_recorded(tmp_path):
    root = tmp_path / "4q"
    _touch(root / "Q1" / "x.mp3")
    _write(root / "panda_dataset_taffc_annotations.csv", "Song,Quadrant\nx,Q3\n")
    index = read_dataset(root)
    assert index.records[0].quadrant == "Q3"
    assert index.label_info["folder_mismatch"] == ["x"]


def test_4q_bad_quadrant_and_duplicate_rows_are_skipped(tmp_path):
    root = tmp_path / "4q"
    _touch(root / "Q1" / "x.mp3")
    _touch(root / "Q2" / "y.mp3")
    _write(root / "panda_dataset_taffc_annotations.csv", "Song,Quadrant\nx,Q1\nx,Q1\ny,Q7\n")
    index = read_dataset(root)
    assert [r.song_id for r in index.records] == ["x"]
    reasons = [s.reason for s in index.skipped]
    assert any("duplicate" in r for r in reasons)
    assert any("'Q7'" in r for r in reasons)


def test_4q_annotations_without_required_column_raise(tmp_path):
    root = tmp_path / "4q"
    _touch(root / "Q1" / "x.mp3")
    bad = _write(root / "panda_dataset_taffc_annotations.csv", "Song,Label\nx,Q1\n")
    with pytest.raises(DatasetError, match="Quadrant") as info:
        read_dataset(root)
    assert str(bad) in str(info.value)


def test_latin1_metadata_is_read(tmp_path):
    root = tmp_path / "4q"
    _touch(root / "Q1" / "x.mp3")
    _write(root / "panda_dataset_taffc_annotations.csv", "Song,Quadrant\nx,Q1\n")
    _write(
        root / "panda_dataset_taffc_metadata.csv",
        "Song,Artist,GenresStr\nx,Beyonc\xe9,Pop\n",
        "latin-1",
    )
    assert read_dataset(root).records[0].metadata["artist"] == "Beyonc\xe9"


# ----------------------------------------------------------------------------- PMEmo


@pytest.fixture
def pmemo_root(tmp_path) -> Path:
    root = tmp_path / "pmemo"
    # Two clear clusters: low/low around 0.2 and high/high around 0.8.
    rows = {
        "1": (0.15, 0.20),
        "2": (0.25, 0.18),
        "3": (0.22, 0.26),
        "4": (0.80, 0.75),
        "5": (0.78, 0.85),
        "6": (0.85, 0.79),
        "7": (0.50, 0.50),  # annotated, no audio
    }
    text = "musicId,Arousal(mean),Valence(mean)\n" + "".join(
        f"{k},{a},{v}\n" for k, (a, v) in rows.items()
    )
    _write(root / "annotations" / "static_annotations.csv", text)
    for song in ["1", "2", "3", "4", "5", "6", "99"]:
        _touch(root / "chorus" / f"{song}.mp3")
    _write(
        root / "metadata.csv",
        "musicId,fileName,title,artist,album,duration,chorus_start_time,chorus_end_time\n"
        "1,1.mp3,Song One,Artist A,Album,200,10,40\n",
    )
    return root


def test_pmemo_layout_kmeans_thresholds(pmemo_root):
    assert detect_layout(pmemo_root) == "pmemo"
    index = read_dataset(pmemo_root)

    assert index.layout == "pmemo"
    assert [r.song_id for r in index.records] == ["1", "2", "3", "4", "5", "6"]
    info = index.label_info
    # The midpoint between the cluster centres (~0.22 and ~0.80) lies between the groups.
    assert 0.3 < info["valence_threshold"] < 0.7
    assert 0.3 < info["arousal_threshold"] < 0.7
    assert info["num_songs"] == 6 and info["num_annotated"] == 7
    for record in index.records:
        assert record.valence_high == int(record.valence > info["valence_threshold"])
        assert record.arousal_high == int(record.arousal > info["arousal_threshold"])
    assert [r.quadrant for r in index.records] == ["Q3"] * 3 + ["Q1"] * 3
    assert index.records[0].metadata == {
        "title": "Song One",
        "artist": "Artist A",
        "album": "Album",
    }
    assert index.records[1].metadata == {}

    reasons = {s.name: s.reason for s in index.skipped}
    assert set(reasons) == {"7", "99"}
    assert "no audio" in reasons["7"] and "no annotation" in reasons["99"]


def test_pmemo_thresholds_come_from_songs_with_audio_only(pmemo_root):
    # Many annotated songs without audio, all very high: they must not move the thresholds.
    path = pmemo_root / "annotations" / "static_annotations.csv"
    extra = "".join(f"{100 + i},0.99,0.99\n" for i in range(50))
    before = read_dataset(pmemo_root).label_info
    path.write_text(path.read_text() + extra)
    after = read_dataset(pmemo_root)
    assert after.label_info["valence_threshold"] == before["valence_threshold"]
    assert len(after.skipped) == 2 + 50


def test_pmemo_kmeans_seed_is_used_and_results_reproducible(pmemo_root):
    a = read_dataset(pmemo_root, kmeans_seed=3)
    b = read_dataset(pmemo_root, kmeans_seed=3)
    assert a.label_info == b.label_info
    assert [r.quadrant for r in a.records] == [r.quadrant for r in b.records]


def test_pmemo_with_no_audio_for_any_song_raises(tmp_path):
    root = tmp_path / "pmemo"
    _write(
        root / "annotations" / "static_annotations.csv",
        "musicId,Arousal(mean),Valence(mean)\n1,0.1,0.2\n",
    )
    (root / "chorus").mkdir()
    with pytest.raises(DatasetError, match="at least 2 songs"):
        read_dataset(root)


def test_pmemo_bad_numbers_are_skipped(pmemo_root):
    path = pmemo_root / "annotations" / "static_annotations.csv"
    path.write_text(path.read_text() + "8,abc,0.5\n")
    _touch(pmemo_root / "chorus" / "8.mp3")
    index = read_dataset(pmemo_root)
    assert "8" not in {r.song_id for r in index.records}
    assert any(s.song_id == "8" and "'abc'" in s.reason for s in index.skipped)


# ----------------------------------------------------------------------------- manifest


def test_manifest_with_continuous_labels(tmp_path):
    audio = tmp_path / "audio"
    for name in ["a", "b", "c", "d"]:
        _touch(audio / f"{name}.wav")
    manifest = _write(
        tmp_path / "songs.csv",
        "path,valence,arousal,genre\n"
        "audio/a.wav,0.1,0.1,rock\n"
        "audio/b.wav,0.2,0.15,jazz\n"
        f"{audio / 'c.wav'},0.9,0.8,rock\n"
        "audio/d.wav,0.85,0.95,\n"
        "audio/missing.wav,0.5,0.5,rock\n",
    )
    assert detect_layout(manifest) == "manifest"
    index = read_dataset(manifest)
    assert [r.song_id for r in index.records] == ["a", "b", "c", "d"]
    assert index.records[2].path == str((audio / "c.wav").resolve())
    assert index.records[0].path == str((audio / "a.wav").resolve())
    assert [r.quadrant for r in index.records] == ["Q3", "Q3", "Q1", "Q1"]
    assert "valence_threshold" in index.label_info
    assert index.records[0].metadata == {"genre": "rock"}
    assert index.records[3].metadata == {}
    assert [s.reason for s in index.skipped] == ["songs.csv line 6: audio file not found"]


def test_manifest_with_binary_labels_and_song_ids(tmp_path):
    for name in ["x", "y", "z", "w"]:
        _touch(tmp_path / f"{name}.mp3")
    manifest = _write(
        tmp_path / "m.csv",
        "song_id,path,valence_high,arousal_high,quadrant\n"
        "id-x,x.mp3,1,0,\n"
        "id-y,y.mp3,0,1,Q2\n"
        "id-z,z.mp3,2,1,\n"  # not 0/1
        "id-w,w.mp3,1,1,Q3\n",  # contradicts
    )
    index = read_dataset(manifest)
    assert [(r.song_id, r.quadrant, r.valence_high, r.arousal_high) for r in index.records] == [
        ("id-x", "Q4", 1, 0),
        ("id-y", "Q2", 0, 1),
    ]
    assert index.label_info == {"method": "binary"}
    reasons = {s.song_id: s.reason for s in index.skipped}
    assert "must be 0 or 1" in reasons["id-z"]
    assert "contradicts" in reasons["id-w"]


def test_manifest_with_quadrants(tmp_path):
    _touch(tmp_path / "a.flac")
    _touch(tmp_path / "b.flac")
    manifest = _write(tmp_path / "m.csv", "path,quadrant\na.flac,q4\nb.flac,happy\n")
    index = read_dataset(manifest)
    assert [(r.quadrant, r.valence_high, r.arousal_high) for r in index.records] == [("Q4", 1, 0)]
    assert index.label_info == {"method": "quadrant"}
    assert "'happy'" in index.skipped[0].reason


def test_manifest_duplicate_song_ids_are_skipped(tmp_path):
    _touch(tmp_path / "one" / "a.wav")
    _touch(tmp_path / "two" / "a.wav")
    manifest = _write(tmp_path / "m.csv", "path,quadrant\none/a.wav,Q1\ntwo/a.wav,Q2\n")
    index = read_dataset(manifest)
    assert [r.quadrant for r in index.records] == ["Q1"]
    assert "duplicate song_id" in index.skipped[0].reason


@pytest.mark.parametrize(
    "text,match",
    [
        ("file,quadrant\na.wav,Q1\n", "path"),
        ("path,mood\na.wav,happy\n", "no label columns"),
        ("", "empty"),
        ("path,quadrant\na.wav,Q1,extra\n", "more fields"),
    ],
)
def test_unreadable_manifests_raise_dataset_error(tmp_path, text, match):
    manifest = _write(tmp_path / "m.csv", text)
    with pytest.raises(DatasetError, match=match) as info:
        read_dataset(manifest)
    assert str(manifest) in str(info.value)


# ----------------------------------------------------------------------------- detection


def test_unknown_folder_explains_the_three_layouts(tmp_path):
    _touch(tmp_path / "songs" / "a.mp3")
    with pytest.raises(DatasetError) as info:
        detect_layout(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    for word in ("pmemo", "4q", "manifest", "static_annotations.csv", "Q1..Q4"):
        assert word in message


def test_missing_path_and_bad_layout_name(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="does not exist"):
        read_dataset(tmp_path / "nowhere", layout="4q")
    with pytest.raises(ParameterError, match="'deam'"):
        read_dataset(tmp_path, layout="deam")
    with pytest.raises(DatasetError, match="not a .csv"):
        detect_layout(_touch(tmp_path / "list.txt"))


def test_forced_layout_overrides_detection(q4_root):
    with pytest.raises(DatasetError, match="static_annotations.csv"):
        read_dataset(q4_root, layout="pmemo")


def test_index_to_dict_is_plain_data(q4_root):
    index = read_dataset(q4_root)
    data = index.to_dict()
    assert data["layout"] == "4q" and len(data["records"]) == 6
    assert data["records"][0]["metadata"]["genre"] == "Pop/Rock"
    assert Record(**data["records"][0]) == index.records[0]
    assert Skipped(**data["skipped"][0]) == index.skipped[0]


# ----------------------------------------------------------------------------- shared data


@pytest.mark.shared_data
def test_shared_4q():
    root = _shared_data() / "4q"
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    index = read_dataset(root)
    assert index.layout == "4q"
    clips = sorted(root.glob("Q[1-4]/*.mp3"))
    assert len(index.records) == len(clips) >= 400  # the shared subset grows: 400, then 700
    per_quadrant = len(clips) // 4
    assert index.quadrant_counts() == {q: per_quadrant for q in ("Q1", "Q2", "Q3", "Q4")}
    genres = {r.metadata["genre"] for r in index.records}
    assert "Pop/Rock" in genres and len(genres) >= 5
    assert all(r.metadata.get("title") for r in index.records)  # one song has no artist
    assert "folder_mismatch" not in index.label_info
    # ids.txt and readme.txt sit at the root, not in Q folders: nothing is skipped.
    assert index.skipped == []


@pytest.mark.shared_data
def test_shared_pmemo():
    root = _shared_data() / "pmemo"
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    index = read_dataset(root)
    assert index.layout == "pmemo"
    assert len(index.records) == 33
    assert len(index.skipped) == 767 - 33
    assert all("no audio" in s.reason for s in index.skipped)
    info = index.label_info
    assert info["num_annotated"] == 767 and info["num_songs"] == 33
    valence = np.array([r.valence for r in index.records])
    assert valence.min() < info["valence_threshold"] < valence.max()
    assert set(index.quadrant_counts().values()) != {0}
    assert all(r.metadata.get("title") for r in index.records)  # from clips.csv
    print("\n" + index.summary())


def test_unlabeled_data_must_be_a_folder_apart_from_the_dataset(tmp_path):
    data = tmp_path / "4q"
    (data / "Q1").mkdir(parents=True)
    manifest = _touch(tmp_path / "lists" / "songs.csv", b"path,quadrant\n")
    extra = tmp_path / "more-music"
    extra.mkdir()
    assert check_unlabeled_data(None, data_root=data) is None
    assert check_unlabeled_data(str(extra), data_root=data) == extra.resolve()
    assert check_unlabeled_data(extra, data_root=manifest) == extra.resolve()
    # the dataset's folder, one inside it, one holding it; a manifest's folder likewise
    for overlapping, root in ((data, data), (data / "Q1", data), (tmp_path, data),
                              (manifest.parent, manifest)):
        with pytest.raises(ParameterError, match="must not hold the dataset"):
            check_unlabeled_data(str(overlapping), data_root=root)
    with pytest.raises(ParameterError, match="must be a folder"):
        check_unlabeled_data(str(tmp_path / "missing"), data_root=data)
