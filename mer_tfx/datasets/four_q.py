"""The 4Q layout (Panda et al. 2018): `<root>/Q1..Q4/<Song>.mp3` and, optionally,
`panda_dataset_taffc_annotations.csv` and `panda_dataset_taffc_metadata.csv`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Tuple

from mer_tfx.datasets.common import _apply_quadrant, _audio_files, _normalise_quadrant, _read_csv
from mer_tfx.datasets.records import (
    LAYOUT_HELP,
    QUADRANTS,
    UNKNOWN_GENRE,
    DatasetIndex,
    Record,
    Skipped,
)
from mer_tfx.errors import DatasetError

Q4_ANNOTATIONS = "panda_dataset_taffc_annotations.csv"
Q4_METADATA = "panda_dataset_taffc_metadata.csv"


def _read_4q(root: Path) -> DatasetIndex:
    audio: Dict[str, Tuple[Path, str]] = {}
    skipped: List[Skipped] = []
    for quadrant in QUADRANTS:
        files, ignored = _audio_files(root / quadrant)
        skipped.extend(ignored)
        for stem, path in files.items():
            if stem in audio:
                skipped.append(
                    Skipped(
                        f"same song also in {audio[stem][1]}/; using that one",
                        song_id=stem,
                        path=str(path),
                    )
                )
                continue
            audio[stem] = (path, quadrant)
    if not audio and not (root / Q4_ANNOTATIONS).is_file():
        raise DatasetError(f"4Q folder {str(root)!r} has no audio in Q1..Q4/.\n{LAYOUT_HELP}")
    metadata = _4q_metadata(root)

    records: List[Record] = []
    annotations = root / Q4_ANNOTATIONS
    mismatched: List[str] = []
    if annotations.is_file():
        _, rows = _read_csv(annotations, required=("Song", "Quadrant"))
        seen = set()
        for line, row in enumerate(rows, start=2):
            song_id, quadrant = row["Song"], _normalise_quadrant(row["Quadrant"])
            if not song_id:
                skipped.append(Skipped(f"{annotations.name} line {line}: empty Song"))
                continue
            if song_id in seen:
                skipped.append(
                    Skipped(f"duplicate Song in {annotations.name} (line {line})", song_id=song_id)
                )
                continue
            seen.add(song_id)
            if quadrant is None:
                skipped.append(
                    Skipped(
                        f"{annotations.name} line {line}: quadrant {row['Quadrant']!r} is not Q1..Q4",
                        song_id=song_id,
                    )
                )
                continue
            if song_id not in audio:
                skipped.append(
                    Skipped(
                        f"annotated but no audio file {quadrant}/{song_id}.mp3", song_id=song_id
                    )
                )
                continue
            path, folder = audio[song_id]
            if folder != quadrant:
                mismatched.append(song_id)
            record = Record(
                song_id=song_id, path=str(path), metadata=_4q_record_metadata(metadata, song_id)
            )
            _apply_quadrant(record, quadrant)
            records.append(record)
        for stem, (path, _) in sorted(audio.items()):
            if stem not in seen:
                skipped.append(
                    Skipped(
                        f"audio file has no annotation in {annotations.name}",
                        song_id=stem,
                        path=str(path),
                    )
                )
        label_info: Dict[str, object] = {"method": "quadrant", "source": annotations.name}
        if mismatched:
            label_info["folder_mismatch"] = mismatched
    else:
        for stem, (path, quadrant) in sorted(audio.items(), key=lambda item: (item[1][1], item[0])):
            record = Record(
                song_id=stem, path=str(path), metadata=_4q_record_metadata(metadata, stem)
            )
            _apply_quadrant(record, quadrant)
            records.append(record)
        label_info = {"method": "quadrant", "source": "folders"}
    return DatasetIndex("4q", str(root), records, skipped, label_info)


def _4q_metadata(root: Path) -> Dict[str, Dict[str, str]] | None:
    path = root / Q4_METADATA
    if not path.is_file():
        return None
    columns, rows = _read_csv(path, required=("Song",))
    out: Dict[str, Dict[str, str]] = {}
    for row in rows:
        meta: Dict[str, str] = {}
        if "GenresStr" in columns:
            genres = [g.strip() for g in row["GenresStr"].split(";") if g.strip()]
            meta["genre"] = genres[0] if genres else UNKNOWN_GENRE
            meta["genres"] = "; ".join(genres)
        for column, key in (("Artist", "artist"), ("Title", "title")):
            if column in columns and row[column]:
                meta[key] = row[column]
        out[row["Song"]] = meta
    return out


def _4q_record_metadata(metadata: Dict[str, Dict[str, str]] | None, song_id: str) -> Dict[str, str]:
    if metadata is None:
        return {}
    meta = dict(metadata.get(song_id, {}))
    # With a metadata file, every record gets a genre so slicing sees a complete feature.
    meta.setdefault("genre", UNKNOWN_GENRE)
    return meta
