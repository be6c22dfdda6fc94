"""Dataset layouts: PMEmo, 4Q and a CSV manifest -> a list of labelled `Record`s.

Users bring the datasets in their own published layouts; `read_dataset` finds
the audio files, joins them with the annotations and turns every label into the
binary targets the model learns (`valence_high`, `arousal_high`, 1 = high) plus a
Russell quadrant. Nothing is decoded here: files are only listed, so reading a
folder of a thousand songs takes milliseconds. Audio that turns out to be
unreadable is reported later by whoever decodes it (`mer_tfx.audio`).

Accepted layouts (see docs/data.md for the full description):

- ``pmemo``: ``<root>/chorus/<musicId>.mp3`` and
  ``<root>/annotations/static_annotations.csv`` (``musicId, Arousal(mean),
  Valence(mean)``), optional ``<root>/metadata.csv`` (title, artist, ...).
  Continuous labels are split by k-means midpoint thresholds computed on the
  songs that have audio.
- ``4q``: ``<root>/Q1..Q4/<Song>.mp3`` and
  ``<root>/panda_dataset_taffc_annotations.csv`` (``Song, Quadrant``), optional
  ``panda_dataset_taffc_metadata.csv`` (artist, title, genres). Without the
  annotations file, the ``Qn`` folder is the label.
- ``manifest``: a CSV file with a ``path`` column and labels as ``valence,arousal``
  (continuous), ``valence_high,arousal_high`` (0/1) or ``quadrant`` (Q1..Q4).

Every annotated song without audio, and every audio file without an
annotation, is listed in `DatasetIndex.skipped` with the reason.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from mer_tfx.audio import AUDIO_EXTENSIONS
from mer_tfx.errors import DatasetError, ParameterError

PathLike = Union[str, os.PathLike]

LAYOUTS = ("pmemo", "4q", "manifest")
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")

PMEMO_ANNOTATIONS = os.path.join("annotations", "static_annotations.csv")
PMEMO_AUDIO_DIR = "chorus"
PMEMO_METADATA = ("metadata.csv", "clips.csv")  # official release, then the shared-data sample
Q4_ANNOTATIONS = "panda_dataset_taffc_annotations.csv"
Q4_METADATA = "panda_dataset_taffc_metadata.csv"

UNKNOWN_GENRE = "unknown"

LAYOUT_HELP = (
    "mer-tfx reads three layouts:\n"
    "  pmemo:    <root>/chorus/<musicId>.mp3 + <root>/annotations/static_annotations.csv\n"
    "            (columns musicId, Arousal(mean), Valence(mean))\n"
    "  4q:       <root>/Q1..Q4/<Song>.mp3 [+ <root>/panda_dataset_taffc_annotations.csv (Song, Quadrant)]\n"
    "  manifest: a CSV file with a 'path' column and 'valence','arousal' or\n"
    "            'valence_high','arousal_high' (0/1) or 'quadrant' (Q1..Q4) columns"
)


@dataclass
class Record:
    """One song: where its audio is and how it is labelled.

    Attributes:
        song_id: the dataset's id (PMEmo musicId, 4Q song id, or the manifest's).
        path: absolute path of the audio file.
        valence: continuous valence, when the dataset has one (PMEmo, manifest).
        arousal: continuous arousal, when the dataset has one.
        valence_high: 1 for high valence, 0 for low.
        arousal_high: 1 for high arousal, 0 for low.
        quadrant: Russell quadrant "Q1".."Q4" (Q1 = +V+A, Q2 = -V+A, Q3 = -V-A, Q4 = +V-A).
        metadata: string facts such as "genre", "artist", "title" (for slicing and reports).
    """

    song_id: str
    path: str
    valence: float | None = None
    arousal: float | None = None
    valence_high: int | None = None
    arousal_high: int | None = None
    quadrant: str | None = None
    metadata: Dict[str, str] = field(default_factory=dict)


@dataclass
class Skipped:
    """A song or file left out of the dataset, and why.

    Attributes:
        reason: human readable reason, e.g. "annotated but no audio file".
        song_id: the song's id, when known.
        path: the file, when there is one.
    """

    reason: str
    song_id: str | None = None
    path: str | None = None

    @property
    def name(self) -> str:
        """The song id, else the path: what a report should print."""
        return self.song_id if self.song_id is not None else str(self.path)


@dataclass
class DatasetIndex:
    """The result of `read_dataset`.

    Attributes:
        layout: "pmemo", "4q" or "manifest".
        root: the dataset folder (or the manifest file).
        records: the songs with audio and labels, in the annotation file's order.
        skipped: songs without audio, audio without labels, bad rows.
        label_info: how labels were made binary, e.g. the k-means thresholds
            (`LabelThresholds.to_dict()`) or {"method": "quadrant", ...}.
    """

    layout: str
    root: str
    records: List[Record]
    skipped: List[Skipped] = field(default_factory=list)
    label_info: Dict[str, object] = field(default_factory=dict)

    def quadrant_counts(self) -> Dict[str, int]:
        """Number of records per quadrant, Q1..Q4 in order."""
        counts = {q: 0 for q in QUADRANTS}
        for record in self.records:
            if record.quadrant in counts:
                counts[record.quadrant] += 1
        return counts

    def summary(self) -> str:
        """A few lines for a console report (counts, labels, the first skipped items)."""
        lines = [
            f"{self.layout} dataset at {self.root}: {len(self.records)} songs, "
            f"{len(self.skipped)} skipped",
            "quadrants: " + ", ".join(f"{q}={n}" for q, n in self.quadrant_counts().items()),
            f"labels: {self.label_info}",
        ]
        for item in self.skipped[:10]:
            lines.append(f"  skipped {item.name}: {item.reason}")
        if len(self.skipped) > 10:
            lines.append(f"  ... and {len(self.skipped) - 10} more skipped")
        return "\n".join(lines)

    def to_dict(self) -> Dict[str, object]:
        """JSON-ready form (records and skipped as dicts)."""
        return {
            "layout": self.layout,
            "root": self.root,
            "records": [asdict(r) for r in self.records],
            "skipped": [asdict(s) for s in self.skipped],
            "label_info": dict(self.label_info),
        }


# --------------------------------------------------------------------------- helpers


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


# --------------------------------------------------------------------------- layouts


def detect_layout(root: PathLike) -> str:
    """Names the layout of a dataset folder or manifest file.

    Args:
        root: a dataset folder, or a manifest CSV file.

    Returns:
        "pmemo", "4q" or "manifest".

    Raises:
        DatasetError: the path does not exist or matches no layout (the message
            describes the three accepted layouts).
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"Dataset path {str(root)!r} does not exist.\n{LAYOUT_HELP}")
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "manifest"
        raise DatasetError(
            f"Dataset path {str(root)!r} is a file but not a .csv manifest.\n{LAYOUT_HELP}"
        )
    if (root / PMEMO_ANNOTATIONS).is_file() or (root / PMEMO_AUDIO_DIR).is_dir():
        return "pmemo"
    if (root / Q4_ANNOTATIONS).is_file() or any((root / q).is_dir() for q in QUADRANTS):
        return "4q"
    raise DatasetError(f"Dataset folder {str(root)!r} matches no known layout.\n{LAYOUT_HELP}")


def read_dataset(
    root_or_manifest: PathLike, *, layout: str | None = None, kmeans_seed: int = 0
) -> DatasetIndex:
    """Lists a dataset's songs with their labels, without decoding any audio.

    Args:
        root_or_manifest: a PMEmo or 4Q folder, or a manifest CSV file.
        layout: "pmemo", "4q" or "manifest"; detected when None. Defaults to None.
        kmeans_seed: seed of the k-means that splits continuous labels. Defaults to 0.

    Returns:
        A `DatasetIndex`: records (absolute audio paths, binary labels, quadrant,
        metadata), skipped items with reasons, and how labels were binarised.

    Raises:
        DatasetError: unknown layout, missing or unreadable annotation files.
        ParameterError: `layout` is not one of the three names.
    """
    if layout is not None and layout not in LAYOUTS:
        raise ParameterError(
            f"layout must be one of {LAYOUTS} or None. Received: layout={layout!r}"
        )
    root = Path(root_or_manifest).expanduser().resolve()
    if layout is None:
        layout = detect_layout(root)
    elif not root.exists():
        raise DatasetError(f"Dataset path {str(root)!r} does not exist.\n{LAYOUT_HELP}")
    if layout == "pmemo":
        return _read_pmemo(root, kmeans_seed=kmeans_seed)
    if layout == "4q":
        return _read_4q(root)
    return _read_manifest(root, kmeans_seed=kmeans_seed)


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


# --------------------------------------------------------------------------- unlabelled audio


def check_unlabeled_data(folder, *, data_root) -> Path | None:
    """`--unlabeled-data` as a resolved folder, or None when not given.

    Stage 1 may train on extra unlabelled audio; that audio must not include the
    dataset's own songs, whose evaluation split would then train stage 1.

    Args:
        folder: the unlabelled-audio folder, or None.
        data_root: the dataset's folder, or its manifest file.

    Returns:
        The resolved folder, or None when `folder` is None.

    Raises:
        ParameterError: it is not a folder, or it and the dataset's folder contain one
            another (the evaluation songs' audio would join stage 1's training set).
    """
    if folder is None:
        return None
    path = Path(folder).resolve()
    if not path.is_dir():
        raise ParameterError(f"--unlabeled-data must be a folder. Received: {folder}")
    data = Path(data_root).resolve()
    data_folder = data if data.is_dir() else data.parent
    if path == data_folder or data_folder in path.parents or path in data_folder.parents:
        raise ParameterError(
            "--unlabeled-data must not hold the dataset's audio (the evaluation songs would "
            f"train stage 1). Received: --unlabeled-data {folder}, data {data_root}")
    return path
