"""The CSV manifest layout: a `path` column and labels as `valence,arousal` (continuous),
`valence_high,arousal_high` (0/1) or `quadrant` (Q1..Q4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from mer_tfx.datasets.common import (
    _apply_kmeans,
    _apply_quadrant,
    _normalise_quadrant,
    _parse_binary,
    _parse_float,
    _read_csv,
)
from mer_tfx.datasets.records import LAYOUT_HELP, DatasetIndex, Record, Skipped
from mer_tfx.errors import DatasetError

MANIFEST_LABEL_COLUMNS = ("valence", "arousal", "valence_high", "arousal_high", "quadrant")


def _read_manifest(manifest: Path, *, kmeans_seed: int) -> DatasetIndex:
    if not manifest.is_file():
        raise DatasetError(f"Manifest {str(manifest)!r} is not a file.\n{LAYOUT_HELP}")
    columns, rows = _read_csv(manifest, required=("path",))
    has_binary = "valence_high" in columns and "arousal_high" in columns
    has_quadrant = "quadrant" in columns
    has_continuous = "valence" in columns and "arousal" in columns
    if not (has_binary or has_quadrant or has_continuous):
        raise DatasetError(
            f"Manifest {str(manifest)!r} has no label columns: it needs 'valence','arousal' or "
            f"'valence_high','arousal_high' or 'quadrant'; it has {columns}"
        )
    method = "binary" if has_binary else "quadrant" if has_quadrant else "kmeans"
    meta_columns = [c for c in columns if c not in MANIFEST_LABEL_COLUMNS + ("path", "song_id")]
    base = manifest.parent

    records: List[Record] = []
    skipped: List[Skipped] = []
    seen = set()
    for line, row in enumerate(rows, start=2):
        where = f"{manifest.name} line {line}"
        if not row["path"]:
            skipped.append(Skipped(f"{where}: empty path"))
            continue
        path = Path(row["path"]).expanduser()
        path = (path if path.is_absolute() else base / path).resolve()
        song_id = row.get("song_id") or path.stem
        if song_id in seen:
            skipped.append(Skipped(f"{where}: duplicate song_id", song_id=song_id, path=str(path)))
            continue
        seen.add(song_id)
        record = Record(
            song_id=song_id,
            path=str(path),
            metadata={c: row[c] for c in meta_columns if row[c]},
        )
        if has_continuous:
            record.valence, record.arousal = (
                _parse_float(row["valence"]),
                _parse_float(row["arousal"]),
            )
        reason = _manifest_labels(record, row, method=method, has_quadrant=has_quadrant)
        if reason is not None:
            skipped.append(Skipped(f"{where}: {reason}", song_id=song_id, path=str(path)))
            continue
        if not path.is_file():
            skipped.append(
                Skipped(f"{where}: audio file not found", song_id=song_id, path=str(path))
            )
            continue
        records.append(record)
    if method == "kmeans":
        label_info = _apply_kmeans(records, seed=kmeans_seed, source=f"Manifest {str(manifest)!r}")
    else:
        label_info = {"method": method}
    return DatasetIndex("manifest", str(manifest), records, skipped, label_info)


def _manifest_labels(
    record: Record, row: Dict[str, str], *, method: str, has_quadrant: bool
) -> str | None:
    """Fills the record's labels from one manifest row; returns why it cannot, or None."""
    from mer_tfx import labels

    if method == "kmeans":
        if record.valence is None or record.arousal is None:
            return f"valence/arousal not numbers ({row['valence']!r}, {row['arousal']!r})"
        return None
    if method == "binary":
        v, a = _parse_binary(row["valence_high"]), _parse_binary(row["arousal_high"])
        if v is None or a is None:
            return f"valence_high/arousal_high must be 0 or 1 ({row['valence_high']!r}, {row['arousal_high']!r})"
        record.valence_high, record.arousal_high = v, a
        record.quadrant = labels.binary_to_quadrant(v, a)
        if has_quadrant and row["quadrant"]:
            given = _normalise_quadrant(row["quadrant"])
            if given != record.quadrant:
                return (
                    f"quadrant {row['quadrant']!r} contradicts valence_high={v}, arousal_high={a} "
                    f"({record.quadrant})"
                )
        return None
    quadrant = _normalise_quadrant(row["quadrant"])
    if quadrant is None:
        return f"quadrant {row['quadrant']!r} is not Q1..Q4"
    _apply_quadrant(record, quadrant)
    return None
