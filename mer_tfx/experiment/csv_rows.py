"""The experiment's CSV files (`results.csv`, `predictions.csv`): fixed columns, typed rows."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import AbstractSet, Iterable, List, Mapping, Sequence


def write_rows(rows: Iterable[Mapping], path: Path, fields: Sequence[str]) -> Path:
    """Writes rows to a CSV with exactly the `fields` columns (extra keys are dropped)."""
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})
    return path


def read_rows(path: Path, *, ints: AbstractSet[str], floats: AbstractSet[str]) -> List[dict]:
    """Reads a CSV back into rows, `ints` as int and `floats` as float (blank: None / NaN)."""
    rows = []
    with Path(path).open(newline="") as handle:
        for raw in csv.DictReader(handle):
            row = dict(raw)
            for key in ints & row.keys():
                row[key] = int(row[key]) if row[key] not in ("", None) else None
            for key in floats & row.keys():
                row[key] = float(row[key]) if row[key] not in ("", None) else math.nan
            rows.append(row)
    return rows
