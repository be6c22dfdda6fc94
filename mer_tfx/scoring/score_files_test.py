"""What a killed `mer score` left beside its output is found and removed, and only that:
another output's shards in the same folder stay. The real kill -9 runs are in tests/faults/."""

from __future__ import annotations

from mer_tfx.scoring import score_files


def test_a_killed_runs_shards_and_temporary_file_are_removed(tmp_path):
    out = tmp_path / "scores[1].csv"  # glob characters in the name are taken literally
    out.write_text("song_id\n")
    ours = [tmp_path / ".scores[1].csv.parts-a1", tmp_path / ".scores[1].csv.parts-b2"]
    for folder in ours:
        (folder / "beam-temp-scored-x").mkdir(parents=True)
    tmp = tmp_path / ".scores[1].csv.tmp"
    tmp.write_text("half a file")
    other = tmp_path / ".other.csv.parts-c3"
    other.mkdir()

    assert score_files.leftovers(out) == [*ours, tmp]
    assert score_files.remove_leftovers(out) == [*ours, tmp]
    assert score_files.leftovers(out) == []
    assert other.is_dir() and out.read_text() == "song_id\n"


def test_nothing_is_left_by_a_finished_write(tmp_path):
    out = tmp_path / "scores.csv"
    score_files.write_scores(out, [], timeline=False)
    assert out.read_text().startswith("song_id,path,")
    assert score_files.leftovers(out) == []
