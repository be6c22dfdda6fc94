"""The files of `mer score`: the scores file (Parquet or CSV), its skipped-songs sidecar,
and what a killed run leaves beside them.

`write_scores` writes every row through a temporary file renamed into place, so the
scores file holds either its previous rows or all the new ones. A run killed before
that rename leaves the temporary file (`.<name>.tmp`) and its Beam shards
(`.<name>.parts-*/`) beside the output; `leftovers(out)` lists them and
`remove_leftovers(out)` removes them, which `score_catalog` does first, while it holds
the output's lock (`mer_tfx.run_lock`).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

from mer_tfx import faults
from mer_tfx.contract import SKIPPED_COLUMNS
from mer_tfx.errors import ParameterError

PathLike = Union[str, os.PathLike]

OUTPUT_FORMATS = {".parquet": "parquet", ".csv": "csv"}
SKIPPED_SUFFIX = ".skipped.csv"
SCORE_COLUMNS = (
    "song_id",
    "path",
    "seconds",
    "valence_probability",
    "valence_label",
    "arousal_probability",
    "arousal_label",
    "quadrant",
)
TIMELINE_COLUMNS = (
    "window_seconds",
    "hop_seconds",
    "window_start",
    "window_end",
    "window_valence_probability",
    "window_arousal_probability",
    "window_quadrant",
)
_LIST_COLUMNS = frozenset(TIMELINE_COLUMNS[2:])
PARTS_INFIX = ".parts-"  # the Beam shards' folder: .<name>.parts-<random>/
TMP_SUFFIX = ".tmp"  # the new file before its rename: .<name>.tmp


def output_format(out: PathLike) -> str:
    """ "parquet" or "csv" by the file's extension; raises ParameterError otherwise."""
    suffix = Path(out).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ParameterError(
            f"The output's extension chooses its format: {', '.join(OUTPUT_FORMATS)}. "
            f"Received: out={str(out)!r}"
        )
    return OUTPUT_FORMATS[suffix]


def columns(timeline: bool) -> Tuple[str, ...]:
    return SCORE_COLUMNS + (TIMELINE_COLUMNS if timeline else ())


def _arrow_schema(timeline: bool):
    import pyarrow as pa

    types = {
        "song_id": pa.string(),
        "path": pa.string(),
        "seconds": pa.float64(),
        "valence_probability": pa.float64(),
        "valence_label": pa.int64(),
        "arousal_probability": pa.float64(),
        "arousal_label": pa.int64(),
        "quadrant": pa.string(),
        "window_seconds": pa.float64(),
        "hop_seconds": pa.float64(),
        "window_start": pa.list_(pa.float64()),
        "window_end": pa.list_(pa.float64()),
        "window_valence_probability": pa.list_(pa.float64()),
        "window_arousal_probability": pa.list_(pa.float64()),
        "window_quadrant": pa.list_(pa.string()),
    }
    return pa.schema([(name, types[name]) for name in columns(timeline)])


def read_scores(out: PathLike) -> List[dict]:
    """The rows of a score file (Parquet or CSV); [] when it does not exist.

    CSV values come back as text, list columns as their JSON text.
    """
    out = Path(out)
    if not out.exists():
        return []
    if output_format(out) == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(out).to_pylist()
    with out.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def existing_columns(out: Path) -> Optional[Tuple[str, ...]]:
    if not out.exists():
        return None
    if output_format(out) == "parquet":
        import pyarrow.parquet as pq

        return tuple(pq.read_schema(out).names)
    with out.open(newline="", encoding="utf-8") as f:
        return tuple(next(csv.reader(f), ()))


def write_scores(out: Path, rows: List[dict], *, timeline: bool) -> None:
    """Writes all rows to `out` through a temporary file renamed into place."""
    names = columns(timeline)
    tmp = temporary_path(out)
    if output_format(out) == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(
            [{c: row[c] for c in names} for row in rows], schema=_arrow_schema(timeline)
        )
        pq.write_table(table, tmp)
    else:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=names)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {
                        c: json.dumps(row[c])
                        if c in _LIST_COLUMNS and not isinstance(row[c], str)
                        else row[c]
                        for c in names
                    }
                )
    faults.fault_point("score.write")
    os.replace(tmp, out)


def write_skipped(path: Path, skipped: Iterable[Tuple[str, str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(SKIPPED_COLUMNS)
        writer.writerows(skipped)


def skipped_path(out: PathLike) -> Path:
    """The sidecar report of unreadable songs: `<out>.skipped.csv`."""
    out = Path(out)
    return out.with_name(out.name + SKIPPED_SUFFIX)


def parts_prefix(out: Path) -> str:
    """The name prefix of a run's shard folders beside `out`: `.<name>.parts-`."""
    return f".{out.name}{PARTS_INFIX}"


def temporary_path(out: Path) -> Path:
    """The new scores file before its rename into `out`: `.<name>.tmp` beside it."""
    return out.with_name(f".{out.name}{TMP_SUFFIX}")


def leftovers(out: PathLike) -> List[Path]:
    """What killed runs left beside `out`: shard folders and the temporary file."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    found = sorted(out.parent.glob(glob.escape(parts_prefix(out)) + "*"))
    tmp = temporary_path(out)
    return found + ([tmp] if tmp.exists() else [])


def remove_leftovers(out: PathLike) -> List[Path]:
    """Removes `leftovers(out)`; returns what it removed. Call it while holding the
    output's lock, or it may remove a running run's shards."""
    removed = leftovers(out)
    for path in removed:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return removed
