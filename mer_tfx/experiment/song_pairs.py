"""Two runs compared song by song: does another way of cutting the folds change the scores?

A round of 10-fold cross-validation tests every song once, so two runs over the same
songs (for example song-level folds and artist-grouped folds, `mer experiment
--group-by artist`) give each song one answer per model in each run. Their accuracies
pair by song: a song right in one run and wrong in the other is a discordant pair, and
the exact McNemar test (a two-sided binomial test on the discordant songs) says whether
the runs differ by more than chance. The runs retrain every model, so the test covers
training noise as well as the change of folds.

Restricted to the songs that share an artist with another song (`shared_artist_songs`),
it shows whether song-level folds let a model profit from an artist it saw in training:

    python -m mer_tfx.experiment.song_pairs runs/song-folds/predictions.csv \\
        runs/artist-folds/predictions.csv --data ../shared/data/4q
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from mer_tfx.errors import ParameterError

# A model's answers in a run: (variant, head, target, segment seconds).
ModelKey = Tuple[str, str, str, float]


@dataclasses.dataclass(frozen=True)
class SongPairs:
    """One model's per-song accuracy in two runs over the same songs.

    Attributes:
        model: (variant, head, target, segment seconds).
        songs: how many songs both runs answered.
        accuracy_a: share of them right in run A, in %.
        accuracy_b: share right in run B, in %.
        only_a: songs right in A and wrong in B.
        only_b: songs right in B and wrong in A.
        p: the exact McNemar test's two-sided p-value (1 when no song is discordant).
    """

    model: ModelKey
    songs: int
    accuracy_a: float
    accuracy_b: float
    only_a: int
    only_b: int
    p: float


def _right_by_song(rows: Iterable[Mapping], round_: int) -> Dict[ModelKey, Dict[str, bool]]:
    out: Dict[ModelKey, Dict[str, bool]] = {}
    for row in rows:
        if int(row["round"]) != round_:
            continue
        key = (row["variant"], row["head"], row["target"], float(row["segment_seconds"]))
        song = str(row["song_id"])
        answers = out.setdefault(key, {})
        if song in answers:
            raise ParameterError(
                f"Song {song!r} is tested twice in round {round_} for {key}: compare one "
                "round of each run (round_a, round_b).")
        answers[song] = int(row["predicted"]) == int(row["label"])
    return out


def compare_by_song(
    rows_a: Iterable[Mapping],
    rows_b: Iterable[Mapping],
    *,
    round_a: int = 0,
    round_b: int = 0,
    songs: Optional[Set[str]] = None,
) -> List[SongPairs]:
    """Each model both runs hold, its accuracy in both, paired by song.

    Args:
        rows_a: predictions.csv rows of run A (`quadrants.read_predictions`).
        rows_b: the same of run B.
        round_a: the round of A to compare. Defaults to 0.
        round_b: the round of B to compare. Defaults to 0.
        songs: only these song ids, or None for every song both answered.
            Defaults to None.

    Returns:
        One `SongPairs` per model in both runs, sorted by model.

    Raises:
        ParameterError: a song is tested twice within one round of a run.
    """
    from scipy.stats import binomtest

    a, b = _right_by_song(rows_a, round_a), _right_by_song(rows_b, round_b)
    out = []
    for model in sorted(set(a) & set(b)):
        ids = set(a[model]) & set(b[model])
        if songs is not None:
            ids &= songs
        if not ids:
            continue
        only_a = sum(a[model][s] and not b[model][s] for s in ids)
        only_b = sum(b[model][s] and not a[model][s] for s in ids)
        discordant = only_a + only_b
        p = binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
        out.append(SongPairs(
            model=model, songs=len(ids),
            accuracy_a=100.0 * sum(a[model][s] for s in ids) / len(ids),
            accuracy_b=100.0 * sum(b[model][s] for s in ids) / len(ids),
            only_a=only_a, only_b=only_b, p=float(p)))
    return out


def shared_artist_songs(artist_by_song: Mapping[str, Optional[str]]) -> Set[str]:
    """The songs whose artist has another song in `artist_by_song` (song id -> artist;
    None or "" for an unknown artist, which shares with no one, as in `--group-by artist`)."""
    counts = Counter(a for a in artist_by_song.values() if a)
    return {s for s, a in artist_by_song.items() if a and counts[a] > 1}


def song_pairs_table(pairs: Sequence[SongPairs], *, name_a: str, name_b: str,
                     subset: str = "all songs") -> str:
    """A Markdown table of `pairs` (one row per model)."""
    lines = [
        f"| model | songs | {name_a} | {name_b} | {name_b} − {name_a} | right only in "
        f"{name_a} / only in {name_b} | exact McNemar p |",
        "|---|---|---|---|---|---|---|",
    ]
    for pair in pairs:
        variant, head, target, seconds = pair.model
        lines.append(
            f"| {variant} {head}, {target}, {seconds:g} s | {subset} ({pair.songs}) | "
            f"{pair.accuracy_a:.2f} | {pair.accuracy_b:.2f} | "
            f"{pair.accuracy_b - pair.accuracy_a:+.2f} | {pair.only_a} / {pair.only_b} | "
            f"{pair.p:.3f} |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from mer_tfx.datasets import read_dataset
    from mer_tfx.experiment.quadrants import read_predictions

    parser = argparse.ArgumentParser(
        prog="python -m mer_tfx.experiment.song_pairs",
        description="Compare two runs' per-song answers (module docstring).")
    parser.add_argument("a", type=Path, help="run A's predictions.csv")
    parser.add_argument("b", type=Path, help="run B's predictions.csv")
    parser.add_argument("--round-a", type=int, default=0, help="A's round (default 0)")
    parser.add_argument("--round-b", type=int, default=0, help="B's round (default 0)")
    parser.add_argument("--name-a", default="A", help="A's column name (default A)")
    parser.add_argument("--name-b", default="B", help="B's column name (default B)")
    parser.add_argument("--data", help="the dataset: adds rows for songs that share an "
                                       "artist with another song and for the rest")
    args = parser.parse_args(argv)
    rows_a, rows_b = read_predictions(args.a), read_predictions(args.b)
    names = {"name_a": args.name_a, "name_b": args.name_b}
    rounds = {"round_a": args.round_a, "round_b": args.round_b}
    print(song_pairs_table(compare_by_song(rows_a, rows_b, **rounds), **names))
    if args.data:
        records = read_dataset(args.data).records
        artists = {r.song_id: (r.metadata or {}).get("artist") for r in records}
        shared = shared_artist_songs(artists)
        for subset, songs in (("shares an artist", shared),
                              ("own artist", set(artists) - shared)):
            print()
            print(song_pairs_table(compare_by_song(rows_a, rows_b, songs=songs, **rounds),
                                   subset=subset, **names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
