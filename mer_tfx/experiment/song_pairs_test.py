import pytest
from scipy.stats import binomtest

from mer_tfx.errors import ParameterError
from mer_tfx.experiment import song_pairs


def _rows(right_by_song, *, target="valence", round_=0):
    """predictions.csv rows of one model; label 1, predicted 1 where the song is right."""
    return [{"variant": "mask-mean", "head": "bilstm", "target": target, "segment_seconds": 5.0,
             "round": round_, "fold": i % 3, "song_id": song, "label": 1,
             "predicted": int(right)} for i, (song, right) in enumerate(right_by_song.items())]


def test_accuracies_and_discordant_songs_pair_by_song():
    a = _rows({"s1": True, "s2": True, "s3": False, "s4": True, "s5": False})
    b = _rows({"s1": True, "s2": False, "s3": True, "s4": False, "s5": False, "s9": True})
    (pair,) = song_pairs.compare_by_song(a, b)
    # s9 is only in B: left out. Right in A only: s2, s4; in B only: s3.
    assert pair.songs == 5
    assert (pair.accuracy_a, pair.accuracy_b) == (60.0, 40.0)
    assert (pair.only_a, pair.only_b) == (2, 1)
    assert pair.p == pytest.approx(binomtest(2, 3, 0.5).pvalue)  # exact McNemar = 1.0 here


def test_a_subset_of_songs_and_a_lopsided_difference():
    a = _rows({f"s{i}": True for i in range(12)})
    b = _rows({f"s{i}": i >= 10 for i in range(12)})  # A right on 10 songs B gets wrong
    (pair,) = song_pairs.compare_by_song(a, b)
    assert (pair.only_a, pair.only_b) == (10, 0)
    assert pair.p == pytest.approx(2 * 0.5**10)  # two-sided exact binomial
    (sub,) = song_pairs.compare_by_song(a, b, songs={"s10", "s11"})
    assert (sub.songs, sub.only_a, sub.p) == (2, 0, 1.0)


def test_a_round_is_chosen_and_a_song_twice_in_one_round_is_an_error():
    a = _rows({"s1": True}, round_=0) + _rows({"s1": False}, round_=1)
    b = _rows({"s1": False})
    assert song_pairs.compare_by_song(a, b, round_a=1)[0].only_a == 0
    assert song_pairs.compare_by_song(a, b, round_a=0)[0].only_a == 1
    with pytest.raises(ParameterError, match="tested twice"):
        song_pairs.compare_by_song(a + _rows({"s1": True}), b)


def test_shared_artists_leave_out_unknown_artists():
    artists = {"a": "X", "b": "X", "c": "Y", "d": None, "e": "", "f": None}
    assert song_pairs.shared_artist_songs(artists) == {"a", "b"}


def test_the_table_has_one_row_per_model_with_the_difference():
    a = _rows({"s1": True, "s2": True}) + _rows({"s1": True, "s2": False}, target="arousal")
    b = _rows({"s1": True, "s2": False}) + _rows({"s1": True, "s2": False}, target="arousal")
    table = song_pairs.song_pairs_table(song_pairs.compare_by_song(a, b), name_a="song folds",
                                        name_b="artist folds")
    lines = table.splitlines()
    assert len(lines) == 4
    assert lines[2].startswith("| mask-mean bilstm, arousal, 5 s | all songs (2) | 50.00 | 50.00 | +0.00 |")
    assert "| 100.00 | 50.00 | -50.00 | 1 / 0 | 1.000 |" in lines[3]
