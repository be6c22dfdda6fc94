"""What the layout readers share: reading an annotation CSV, listing a folder's audio,
parsing label cells and turning labels into the binary targets and the quadrant.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from mer_tfx.audio import AUDIO_EXTENSIONS
from mer_tfx.datasets.records import QUADRANTS, Record, Skipped
from mer_tfx.errors import DatasetError, ParameterError


def _read_csv(
    path: Path, *, required: Sequence[str] = ()
) -> Tuple[List[str], List[Dict[str, str]]]:
    """Reads a CSV with a header row. Returns (columns, rows); raises DatasetError."""
    last_error: Exception | None = None
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            with open(path, newline="", encoding=encoding) as handle:
                reader = csv.DictReader(handle)
                columns = [c.strip() for c in (reader.fieldnames or [])]
                rows = []
                for raw in reader:
                    if None in raw:
                        raise DatasetError(
                            f"CSV file {str(path)!r}: line {reader.line_num} has more fields "
                            f"than the header ({len(columns)} columns)"
                        )
                    rows.append(
                        {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                    )
            break
        except UnicodeDecodeError as error:
            last_error = error
            continue
        except csv.Error as error:
            raise DatasetError(f"CSV file {str(path)!r} cannot be parsed: {error}") from error
        except OSError as error:
            raise DatasetError(f"CSV file {str(path)!r} cannot be read: {error}") from error
    else:  # pragma: no cover - latin-1 decodes any byte string
        raise DatasetError(f"CSV file {str(path)!r} is not text: {last_error}")
    if not columns:
        raise DatasetError(f"CSV file {str(path)!r} is empty (no header row)")
    missing = [c for c in required if c not in columns]
    if missing:
        raise DatasetError(
            f"CSV file {str(path)!r} lacks the column(s) {missing}; it has {columns}"
        )
    return columns, rows


def _audio_files(folder: Path) -> Tuple[Dict[str, Path], List[Skipped]]:
    """stem -> audio file in `folder` (not recursive), and the files it ignored."""
    found: Dict[str, Path] = {}
    skipped: List[Skipped] = []
    if not folder.is_dir():
        return found, skipped
    preference = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        ext = path.suffix.lower()
        if ext not in preference:
            skipped.append(
                Skipped(
                    f"not an audio file (extension {path.suffix or '(none)'!r}; "
                    f"accepted: {', '.join(AUDIO_EXTENSIONS)})",
                    path=str(path),
                )
            )
            continue
        previous = found.get(path.stem)
        if previous is not None:
            keep, drop = sorted([previous, path], key=lambda p: preference[p.suffix.lower()])
            found[path.stem] = keep
            skipped.append(
                Skipped(f"duplicate audio for {path.stem!r}; using {keep.name}", path=str(drop))
            )
            continue
        found[path.stem] = path
    return found, skipped


def _parse_float(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _parse_binary(text: str) -> int | None:
    value = _parse_float(text)
    if value is None and text.strip().lower() in ("true", "false", "high", "low"):
        return 1 if text.strip().lower() in ("true", "high") else 0
    if value in (0.0, 1.0):
        return int(value)
    return None


def _normalise_quadrant(text: str) -> str | None:
    value = text.strip().upper()
    if value in ("1", "2", "3", "4"):
        value = "Q" + value
    return value if value in QUADRANTS else None


def _apply_kmeans(records: List[Record], *, seed: int, source: str) -> Dict[str, object]:
    """Fills the binary labels of `records` from their continuous valence/arousal."""
    from mer_tfx import labels

    if len(records) < 2:
        raise DatasetError(
            f"{source}: k-means thresholds need at least 2 songs with audio and continuous "
            f"labels; found {len(records)}"
        )
    valence = np.array([r.valence for r in records], dtype=np.float64)
    arousal = np.array([r.arousal for r in records], dtype=np.float64)
    try:
        thresholds = labels.kmeans_thresholds(valence, arousal, seed=seed)
    except ParameterError as error:
        raise DatasetError(f"{source}: cannot compute k-means thresholds: {error}") from error
    v_high = labels.binarize(valence, thresholds.valence_threshold)
    a_high = labels.binarize(arousal, thresholds.arousal_threshold)
    for record, v, a in zip(records, v_high, a_high, strict=True):
        record.valence_high, record.arousal_high = int(v), int(a)
        record.quadrant = labels.binary_to_quadrant(int(v), int(a))
    info = dict(thresholds.to_dict())
    info["num_songs"] = len(records)
    return info


def _apply_quadrant(record: Record, quadrant: str) -> None:
    from mer_tfx import labels

    record.quadrant = quadrant
    record.valence_high, record.arousal_high = (int(x) for x in labels.quadrant_to_binary(quadrant))
