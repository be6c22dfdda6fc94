"""The two reports the AudioExampleGen writes into its examples artifact.

- `label_info.json` (`contract.LABEL_INFO_FILE`): the dataset layout, the label
  transform (for continuous labels the k-means midpoint thresholds computed on
  this data), the preset and the number of examples per split and quadrant;
- `skipped_files.csv` (`contract.SKIPPED_FILES_FILE`, columns
  `contract.SKIPPED_COLUMNS`): every input file that is not in the output,
  whether the dataset index skipped it or it failed to decode.

`WriteReports` computes both inside the Beam pipeline that writes the splits, from
the decoded songs and the decoding failures, and writes them with `fileio`.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

import apache_beam as beam
from tfx.dsl.io import fileio

from mer_tfx import contract, presets

_LOGGER = logging.getLogger(__name__)


def skipped_rows(index_skipped: Sequence[Any]) -> List[Dict[str, str]]:
    """Rows (path, song_id, reason) of the files the dataset index skipped."""
    rows = []
    for item in index_skipped:
        path = getattr(item, "path", None)
        song_id = getattr(item, "song_id", None)
        rows.append(
            {
                "path": "" if path is None else str(path),
                "song_id": "" if song_id is None else str(song_id),
                "reason": str(getattr(item, "reason", "")),
            }
        )
    return rows


def write_skipped_files(path: str, rows: Iterable[Mapping[str, str]]) -> None:
    """Writes `skipped_files.csv`: the header, then one row per file sorted by path and id."""
    rows = sorted(
        ({k: str(row.get(k, "")) for k in contract.SKIPPED_COLUMNS} for row in rows),
        key=lambda row: (row["path"], row["song_id"]),
    )
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(contract.SKIPPED_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with fileio.open(path, "w") as handle:
        handle.write(buffer.getvalue())


def read_skipped_files(path: str) -> List[Dict[str, str]]:
    """Reads `skipped_files.csv` back as a list of dicts."""
    with fileio.open(path, "r") as handle:
        return list(csv.DictReader(io.StringIO(handle.read())))


# A skip reason about labels, not audio: every reader's label errors name the label
# ("quadrant 'Q9' is not Q1..Q4", "valence/arousal not numbers", "valence_high/...").
_LABEL_REASON = re.compile(r"\b(valence|arousal|quadrant)", re.IGNORECASE)
_EXAMPLES_SHOWN = 3


def is_label_reason(reason: str) -> bool:
    """Whether a skip reason says the song's labels, not its audio, were unusable."""
    return bool(_LABEL_REASON.search(reason))


def no_examples_message(source: str, rows: Sequence[Mapping[str, str]]) -> str:
    """The error when no song became an example: why, with examples, and what to do.

    It names no report file: TFX removes a failed component's outputs, the report
    among them, so the reasons themselves go into the message (and each was logged).

    Args:
        source: the dataset folder or manifest that was read (named if it exists).
        rows: the skipped files, dict(path, song_id, reason) (`skipped_rows`, decoding failures).
    """
    where = f" in {source!r}" if source and os.path.exists(source) else ""
    if not rows:
        return f"No audio file{where} could be read: the dataset lists no song. Add songs to it."
    label_rows = [row for row in rows if is_label_reason(row.get("reason", ""))]
    audio_rows = [row for row in rows if row not in label_rows]
    fix_labels = (
        "fix them (quadrant Q1..Q4, valence_high/arousal_high 0 or 1, or numeric valence/arousal)"
    )
    if not audio_rows:
        return (
            f"No song{where} has usable labels: all {len(rows)} were skipped for their labels "
            f"before any audio was read ({_describe_skips(label_rows)}). The labels, not the "
            f"audio, are invalid: {fix_labels} and run again."
        )
    labels = (
        f" {len(label_rows)} more were skipped for invalid labels: {fix_labels}."
        if label_rows
        else ""
    )
    return (
        f"No audio file{where} could be read: {len(audio_rows)} skipped for their audio, none "
        f"decoded ({_describe_skips(audio_rows)}). Check that the paths point at audio files "
        f"that play (WAV, MP3, FLAC, OGG), then run again.{labels} Each skip is also logged as "
        "a WARNING."
    )


def _describe_skips(rows: Sequence[Mapping[str, str]]) -> str:
    shown = "; ".join(_describe_skip(row) for row in rows[:_EXAMPLES_SHOWN])
    return shown + ("; ..." if len(rows) > _EXAMPLES_SHOWN else "")


def _describe_skip(row: Mapping[str, str]) -> str:
    name = row.get("song_id") or os.path.basename(row.get("path", "")) or "?"
    return f"{name}: {row.get('reason', '')}"


def label_info(
    index: Any,
    *,
    preset: presets.Preset,
    kmeans_seed: int,
    split_counts: Mapping[Tuple[str, str], int],
    num_skipped: int,
) -> Dict[str, Any]:
    """The content of `label_info.json`.

    Args:
        index: the `mer_tfx.datasets.DatasetIndex` that was read.
        preset: the ExampleGen's preset.
        kmeans_seed: the seed of the k-means label transform.
        split_counts: examples per (split, quadrant).
        num_skipped: rows of `skipped_files.csv`.
    """
    splits: Dict[str, Dict[str, Any]] = {}
    for (split, quadrant), count in sorted(split_counts.items()):
        entry = splits.setdefault(split, {"examples": 0, "quadrants": {}})
        entry["examples"] += count
        entry["quadrants"][quadrant] = count
    return {
        "layout": getattr(index, "layout", None),
        "input": str(getattr(index, "root", "")),
        "labels": getattr(index, "label_info", {}),
        "kmeans_seed": kmeans_seed,
        "preset": preset.name,
        "features": preset.to_dict()["features"],
        # An empty partition feature also splits by song id (splits.output_splits).
        "partition_feature_name": contract.SONG_ID,
        "counts": {
            "songs_indexed": len(index.records),
            "examples": sum(split_counts.values()),
            "skipped_files": num_skipped,
            "splits": splits,
        },
    }


def log_index_skips(skipped: Sequence[Any], *, report: str) -> None:
    """A WARNING per skipped file; one summary for annotations without a file.

    A PMEmo download annotates hundreds of songs whose audio is not there: those
    are summarised rather than logged one by one (all are in the report).
    """
    without_file = []
    for item in skipped:
        path = getattr(item, "path", None)
        if path:
            _LOGGER.warning("Skipping %s: %s", path, getattr(item, "reason", ""))
        else:
            without_file.append(item)
    if without_file:
        names = [str(getattr(item, "song_id", None) or "?") for item in without_file]
        _LOGGER.warning(
            "Skipping %d annotated song(s) without a usable audio file (%s%s): see %s",
            len(names),
            ", ".join(names[:5]),
            ", ..." if len(names) > 5 else "",
            report,
        )


class WriteReports(beam.PTransform):
    """(songs by split, decoding failures) -> `label_info.json` and `skipped_files.csv` in `uri`.

    Input: a tuple (dict {split name: PCollection of `EncodedSong`}, PCollection of
    dict(path, song_id, reason)). Both files are written once, even when every
    PCollection is empty.

    Args:
        uri: the examples artifact's uri.
        index: the `DatasetIndex` the songs came from (its skipped files join the
            decoding failures).
        preset: the ExampleGen's preset.
        kmeans_seed: the seed of the k-means label transform.
    """

    def __init__(self, uri: str, *, index: Any, preset: presets.Preset, kmeans_seed: int):
        super().__init__()
        self._uri = uri
        self._index = index
        self._preset = preset
        self._kmeans_seed = kmeans_seed

    def expand(self, inputs):
        songs_by_split, decode_skipped = inputs
        pipeline = decode_skipped.pipeline
        skipped = (
            (
                decode_skipped,
                pipeline | "IndexSkipped" >> beam.Create(skipped_rows(self._index.skipped)),
            )
            | "AllSkipped" >> beam.Flatten()
            | "SkippedList" >> beam.combiners.ToList()
        )
        _ = skipped | "WriteSkipped" >> beam.Map(
            lambda rows: write_skipped_files(
                os.path.join(self._uri, contract.SKIPPED_FILES_FILE), rows
            )
        )
        keys = [
            songs | f"Key[{name}]" >> beam.Map(lambda song, split: (split, song.quadrant), name)
            for name, songs in songs_by_split.items()
        ]
        counts = (
            keys
            | "AllKeys" >> beam.Flatten()
            | "CountKeys" >> beam.combiners.Count.PerElement()
            | "CountList" >> beam.combiners.ToList()
        )
        num_skipped = skipped | "CountSkipped" >> beam.Map(len)
        return counts | "WriteLabelInfo" >> beam.Map(
            self._write_label_info, num_skipped=beam.pvalue.AsSingleton(num_skipped)
        )

    def _write_label_info(self, counts: List[Tuple[Tuple[str, str], int]], num_skipped: int):
        info = label_info(
            self._index,
            preset=self._preset,
            kmeans_seed=self._kmeans_seed,
            split_counts=dict(counts),
            num_skipped=num_skipped,
        )
        with fileio.open(os.path.join(self._uri, contract.LABEL_INFO_FILE), "w") as handle:
            handle.write(json.dumps(info, indent=2, sort_keys=True, default=str))
        return info
