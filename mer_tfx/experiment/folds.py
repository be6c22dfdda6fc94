"""The protocol's folds: k-fold cross-validation by song, repeated rounds, one seed per fold.

Folds are made BY SONG with `StratifiedKFold(shuffle=True, random_state=seed + round)`,
stratified on the joint label of the targets run (`recipe.stratification_labels`); with
groups (`--group-by artist`) by group of songs with `StratifiedGroupKFold`, so no
artist is on both the training and the test side of a fold. Each
fold's validation songs (early stopping) are carved from its training songs by
`recipe.validation_split` with the fold's seed, exactly as the recipe carves them
when the fold is trained, so `splits.json` lists the songs the models really saw.
That validation split is by song even with groups: it only decides when training
stops, and the recipe (the TFX Trainer's too) carves it the same way everywhere.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

import numpy as np

from mer_tfx import recipe
from mer_tfx.errors import ParameterError

stratification_labels = recipe.stratification_labels
# What `make_folds` can keep together in one fold (the value of `--group-by`).
GROUP_BY = ("artist",)


@dataclasses.dataclass(frozen=True)
class FoldSplit:
    """One fold of one round. Indices point into the song arrays.

    Attributes:
        round: 0-based round.
        fold: 0-based fold within the round.
        train: int [n_train] songs the models are fitted on.
        val: int [n_val] songs for early stopping (carved from the training side).
        test: int [n_test] songs scored at the end; disjoint from train and val.
    """

    round: int
    fold: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def training_side(self) -> np.ndarray:
        """train and val together, sorted: what the recipe is given to split again."""
        return np.sort(np.concatenate([self.train, self.val]))


def fold_seed(seed: int, round_: int, fold: int) -> int:
    """The seed of one fold: its validation split, weights, shuffles and masks."""
    return seed + 1000 * round_ + fold


def make_folds(
    strata: Sequence[int],
    *,
    folds: int = 10,
    rounds: int = 1,
    seed: int = 0,
    val_fraction: float = recipe.VALIDATION_FRACTION,
    song_ids: Sequence[str] | None = None,
    groups: Sequence[int] | None = None,
) -> List[FoldSplit]:
    """K-fold cross-validation by song, repeated `rounds` times with different shuffles.

    Args:
        strata: int [songs], the label to stratify on (see `stratification_labels`).
        folds: number of folds (k >= 2). Each song is in exactly one test fold per round.
        rounds: repetitions; round r shuffles with `random_state=seed + r`.
        seed: base seed.
        val_fraction: share of each fold's training songs held out for early stopping.
        song_ids: [songs] ids; the validation split orders songs by id (as the recipe
            does). Defaults to the songs' positions.
        groups: int [songs] a group per song (e.g. its artist), or None. With groups,
            every group's songs are in one test fold (`StratifiedGroupKFold`, the groups
            shuffled with seed `seed + round`, stratified on `strata` as far as the
            groups allow), so no group is on both sides of a fold.

    Returns:
        rounds * folds `FoldSplit`s, round-major.
    """
    from sklearn.model_selection import KFold, StratifiedGroupKFold, StratifiedKFold

    strata = np.asarray(strata, dtype=np.int64)
    n = len(strata)
    if not isinstance(folds, int) or folds < 2:
        raise ParameterError(f"folds must be an integer >= 2. Received: folds={folds!r}")
    if folds > n:
        raise ParameterError(f"folds must not exceed the number of songs. Received: folds={folds}, "
                             f"songs={n}")
    if not isinstance(rounds, int) or rounds < 1:
        raise ParameterError(f"rounds must be a positive integer. Received: rounds={rounds!r}")
    if not 0.0 < val_fraction < 1.0:
        raise ParameterError(f"val_fraction must be in (0, 1). Received: val_fraction={val_fraction}")
    # Positions as ids, zero-padded so that their string order is their numeric order.
    ids = (np.asarray(song_ids) if song_ids is not None
           else np.char.zfill(np.arange(n).astype(str), len(str(n))))
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != strata.shape or len(np.unique(groups)) < folds:
            raise ParameterError(
                f"groups must give each of the {n} songs a group, with at least folds={folds} "
                f"groups. Received: {groups.shape[0] if groups.ndim else 0} songs in "
                f"{len(np.unique(groups))} groups")
    splits = []
    counts = np.bincount(strata)
    for r in range(rounds):
        if groups is not None:
            # The round's shuffle renumbers the groups, which orders the groups of equal
            # class spread that StratifiedGroupKFold visits. Its own shuffle=True is not
            # used: before scikit-learn 1.8 it shuffles the class counts but not the
            # groups they belong to, and the folds come out unstratified
            # (scikit-learn/scikit-learn#32478, fixed by #32540).
            codes = np.unique(groups, return_inverse=True)[1]
            order = np.random.default_rng(seed + r).permutation(codes.max() + 1)
            pairs = StratifiedGroupKFold(n_splits=folds).split(np.zeros(n), strata, order[codes])
        elif counts[counts > 0].min() >= folds:
            splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + r)
            pairs = splitter.split(np.zeros(n), strata)
        else:  # some class is rarer than the number of folds: stratification impossible
            pairs = KFold(n_splits=folds, shuffle=True, random_state=seed + r).split(np.zeros(n))
        for f, (train, test) in enumerate(pairs):
            fit, val = recipe.validation_split(ids[train], strata[train], fraction=val_fraction,
                                               seed=fold_seed(seed, r, f))
            splits.append(FoldSplit(round=r, fold=f, train=np.sort(train[fit]),
                                    val=np.sort(train[val]), test=np.sort(test)))
    return splits
