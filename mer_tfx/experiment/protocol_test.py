import numpy as np
import pytest

from mer_tfx.errors import ParameterError
from mer_tfx.experiment import fold_runner, protocol, songs, timing
from mer_tfx.experiment import folds as cv


def _strata(n_per_class=10, classes=4):
    return np.repeat(np.arange(classes), n_per_class)


@pytest.mark.parametrize("folds,rounds", [(10, 2), (3, 1), (2, 3)])
def test_folds_are_disjoint_by_song_and_cover_every_song(folds, rounds):
    strata = _strata()
    splits = cv.make_folds(strata, folds=folds, rounds=rounds, seed=7)
    assert len(splits) == folds * rounds
    for r in range(rounds):
        tests = [s.test for s in splits if s.round == r]
        # Every song is tested exactly once per round.
        assert sorted(np.concatenate(tests).tolist()) == list(range(len(strata)))
    for s in splits:
        train, val, test = set(s.train), set(s.val), set(s.test)
        assert not train & test and not val & test and not train & val
        assert train | val | test == set(range(len(strata)))
        assert len(val) >= 1


def test_folds_are_stratified_on_the_joint_label():
    strata = _strata(n_per_class=10)
    for s in cv.make_folds(strata, folds=10, rounds=1):
        # 10 songs per class and 10 folds: every test fold holds one song of each class.
        assert sorted(strata[s.test].tolist()) == [0, 1, 2, 3]


def test_rounds_shuffle_differently_and_seed_reproduces():
    strata = _strata()
    a = cv.make_folds(strata, folds=5, rounds=2, seed=0)
    b = cv.make_folds(strata, folds=5, rounds=2, seed=0)
    assert all(np.array_equal(x.test, y.test) and np.array_equal(x.val, y.val)
               for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x.test, y.test) for x, y in zip(a[:5], a[5:], strict=True))


def test_validation_share():
    splits = cv.make_folds(_strata(n_per_class=25), folds=10, rounds=1, val_fraction=0.1)
    # 90 training-side songs per fold -> 9 validation songs.
    assert {len(s.val) for s in splits} == {9}


def test_rare_class_falls_back_to_plain_kfold():
    strata = np.array([0] * 9 + [1])  # class 1 has one song: cannot stratify 5 folds
    splits = cv.make_folds(strata, folds=5, rounds=1)
    assert sorted(np.concatenate([s.test for s in splits]).tolist()) == list(range(10))


def test_stratification_labels_joint_code():
    labels = {"valence": np.array([0, 1, 0, 1]), "arousal": np.array([0, 0, 1, 1])}
    assert cv.stratification_labels(labels, targets=("valence", "arousal")).tolist() == [
        0, 1, 2, 3]
    assert cv.stratification_labels(labels, targets=("arousal",)).tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("kwargs,match", [
    ({"folds": 1}, "folds=1"), ({"folds": 50}, "folds=50"), ({"rounds": 0}, "rounds=0"),
    ({"val_fraction": 1.5}, "val_fraction=1.5")])
def test_make_folds_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        cv.make_folds(_strata(), **kwargs)


def test_run_experiment_rejects_unknown_variant(tmp_path):
    with pytest.raises(ParameterError, match="mask-pink"):
        protocol.run_experiment(tmp_path, out_dir=tmp_path / "out", variants=("mask-pink",))


def test_durations_map_to_dataset_presets():
    dataset, chosen = songs.dataset_presets("4q", durations=[10, 3], small=True)
    assert dataset == "4q" and [p.name for p in chosen] == ["4q-10s-small", "4q-3s-small"]
    _, paper = songs.dataset_presets("pmemo", durations=None, small=False)
    assert [p.features.segment_seconds for p in paper] == [1, 3, 5, 10]
    with pytest.raises(ParameterError, match="duration=1"):
        songs.dataset_presets("4q", durations=[1], small=True)


def test_estimate_seconds_extrapolates_one_fold():
    rows = [dict(preset="p", variant="mask-mean", round=0, fold=0, ae_seconds=100.0,
                 head_seconds=10.0), dict(preset="p", variant="mask-mean", round=0, fold=0,
                                          ae_seconds=100.0, head_seconds=20.0)]
    # The autoencoder is shared by both targets: 100 + 10 + 20 per fold, x 10 folds.
    assert timing.estimate_seconds(rows, folds=10, rounds=1) == {"p mask-mean": 1300.0}
    # With the measured wall time of the fold, that is used instead.
    for row in rows:
        row["fold_seconds"] = 150.0
    assert timing.estimate_seconds(rows, folds=10, rounds=2) == {"p mask-mean": 3000.0}


def test_limit_songs_is_balanced_over_quadrants_and_keeps_dataset_order():
    from mer_tfx.datasets import Record

    records = [Record(song_id=str(i), path=f"/x/{i}", valence_high=i % 2,
                      arousal_high=(i // 2) % 2) for i in range(40)]
    chosen = songs.limit_songs(records, 8, seed=3)
    assert len(chosen) == 8
    quadrants = [(r.valence_high, r.arousal_high) for r in chosen]
    assert {q: quadrants.count(q) for q in set(quadrants)} == {
        (0, 0): 2, (0, 1): 2, (1, 0): 2, (1, 1): 2}
    assert [int(r.song_id) for r in chosen] == sorted(int(r.song_id) for r in chosen)
    assert songs.limit_songs(records, None, seed=0) == records


def test_predict_labels_batches_and_takes_the_argmax():
    import keras

    inputs = keras.Input((3, 4))
    outputs = keras.layers.Softmax()(keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(70, 3, 4)).astype(np.float32)
    expected = np.asarray(model(x)).argmax(axis=-1)
    # 70 songs = two eager batches of 64 + 6; the result must not depend on the batching.
    np.testing.assert_array_equal(fold_runner.predict_labels(model, x), expected)
    np.testing.assert_array_equal(fold_runner.predict_labels(model, x, batch_size=7), expected)


def test_head_specs_parse_into_the_recipes_head_variants():
    from mer_tfx.experiment.fold_runner import parse_head

    assert parse_head("bigru") == {"rnn_type": "gru", "bidirectional": True}
    assert parse_head("bilstm:learning_rate=1e-4,seeds=5,normalize=true,grid_shifts=2") == {
        "rnn_type": "lstm", "bidirectional": True, "learning_rate": 1e-4, "seeds": 5,
        "normalize": True, "grid_shifts": 2}
    for bad in ("transformer", "bilstm:units=3", "bilstm:seeds"):
        with pytest.raises(ParameterError, match="Received"):
            parse_head(bad)


def test_label_variant_names_round_trip():
    from mer_tfx.experiment.fold_runner import label_variant, parse_variant

    assert label_variant("mask-mean", 1.0, rest=True) == "mask-mean"
    assert label_variant("no-mask", 0.25, rest=False) == "no-mask labels=25%"
    assert label_variant("mask-mean", 0.5, rest=True) == "mask-mean labels=50% +rest"
    for name, parsed in (("mask-mean", ("mask-mean", 1.0, False)),
                         ("no-mask labels=25%", ("no-mask", 0.25, False)),
                         ("mask-mean labels=50% +rest", ("mask-mean", 0.5, True))):
        assert parse_variant(name) == parsed


def test_folds_grouped_by_artist_keep_every_artist_on_one_side():
    rng = np.random.default_rng(4)
    strata = _strata(n_per_class=15)  # 60 songs, 4 classes
    # 12 artists with 3 songs of one class each, the other 24 songs one artist each.
    artists = [f"solo{i}" for i in range(len(strata))]
    for a, first in enumerate(range(0, 60, 5)[:12]):
        for i in range(first, first + 3):
            artists[i] = f"band{a}"
    order = rng.permutation(len(strata))  # not in dataset order
    strata, artists = strata[order], [artists[i] for i in order]
    groups = np.unique(artists, return_inverse=True)[1]
    splits = cv.make_folds(strata, folds=5, rounds=2, seed=3, groups=groups)
    for s in splits:
        test_artists = {artists[i] for i in s.test}
        train_artists = {artists[i] for i in np.concatenate([s.train, s.val])}
        assert not test_artists & train_artists
        # Stratified: 60 songs / 5 folds = 3 of each class per test fold, give or take one
        # (scikit-learn 1.5's own shuffle=True gave folds such as [6, 6, 0, 2]).
        counts = np.bincount(strata[s.test], minlength=4)
        assert counts.min() >= 2 and counts.max() <= 4, counts
    for r in range(2):
        tested = np.concatenate([s.test for s in splits if s.round == r])
        assert sorted(tested.tolist()) == list(range(60))
    rounds = [[s.test.tolist() for s in splits if s.round == r] for r in range(2)]
    assert rounds[0] != rounds[1]  # each round shuffles with its own seed
    with pytest.raises(ParameterError, match="groups"):
        cv.make_folds(strata, folds=5, groups=np.zeros(60, int))
