"""The PMEmo layout: `<root>/chorus/<musicId>.mp3` and
`<root>/annotations/static_annotations.csv`; continuous labels split by k-means.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List

from mer_tfx.datasets.common import _apply_kmeans, _audio_files, _parse_float, _read_csv
from mer_tfx.datasets.records import DatasetIndex, Record, Skipped
from mer_tfx.errors import DatasetError

PMEMO_ANNOTATIONS = os.path.join("annotations", "static_annotations.csv")
PMEMO_AUDIO_DIR = "chorus"
PMEMO_METADATA = ("metadata.csv", "clips.csv")  # official release, then the shared-data sample


def _read_pmemo(root: Path, *, kmeans_seed: int) -> DatasetIndex:
    annotations = root / PMEMO_ANNOTATIONS
    if not annotations.is_file():
        raise DatasetError(
            f"PMEmo folder {str(root)!r} has no {PMEMO_ANNOTATIONS} "
            "(columns musicId, Arousal(mean), Valence(mean))"
        )
    if not (root / PMEMO_AUDIO_DIR).is_dir():
        raise DatasetError(f"PMEmo folder {str(root)!r} has no {PMEMO_AUDIO_DIR}/ folder of audio")
    _, rows = _read_csv(annotations, required=("musicId", "Arousal(mean)", "Valence(mean)"))
    audio, skipped = _audio_files(root / PMEMO_AUDIO_DIR)
    metadata = _pmemo_metadata(root)

    records: List[Record] = []
    seen = set()
    for line, row in enumerate(rows, start=2):
        song_id = row["musicId"]
        valence, arousal = _parse_float(row["Valence(mean)"]), _parse_float(row["Arousal(mean)"])
        if not song_id:
            skipped.append(Skipped(f"{annotations.name} line {line}: empty musicId"))
            continue
        if song_id in seen:
            skipped.append(
                Skipped(f"duplicate musicId in {annotations.name} (line {line})", song_id=song_id)
            )
            continue
        seen.add(song_id)
        if valence is None or arousal is None:
            skipped.append(
                Skipped(
                    f"{annotations.name} line {line}: valence/arousal not numbers "
                    f"({row['Valence(mean)']!r}, {row['Arousal(mean)']!r})",
                    song_id=song_id,
                )
            )
            continue
        path = audio.get(song_id)
        if path is None:
            skipped.append(
                Skipped(
                    f"annotated but no audio file {PMEMO_AUDIO_DIR}/{song_id}.mp3", song_id=song_id
                )
            )
            continue
        records.append(
            Record(
                song_id=song_id,
                path=str(path),
                valence=valence,
                arousal=arousal,
                metadata=dict(metadata.get(song_id, {})),
            )
        )
    for stem, path in sorted(audio.items()):
        if stem not in seen:
            skipped.append(
                Skipped(
                    f"audio file has no annotation in {annotations.name}",
                    song_id=stem,
                    path=str(path),
                )
            )
    label_info = _apply_kmeans(records, seed=kmeans_seed, source=f"PMEmo folder {str(root)!r}")
    label_info["num_annotated"] = len(seen)
    return DatasetIndex("pmemo", str(root), records, skipped, label_info)


def _pmemo_metadata(root: Path) -> Dict[str, Dict[str, str]]:
    for name in PMEMO_METADATA:
        path = root / name
        if not path.is_file():
            continue
        columns, rows = _read_csv(path, required=("musicId",))
        keep = [c for c in ("title", "artist", "album") if c in columns]
        return {row["musicId"]: {c: row[c] for c in keep if row[c]} for row in rows}
    return {}
