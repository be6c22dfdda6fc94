"""What reading a dataset gives: `Record` (one song), `Skipped` (one song or file left out,
and why) and `DatasetIndex` (the whole list), with the names every layout shares.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Union

PathLike = Union[str, os.PathLike]

LAYOUTS = ("pmemo", "4q", "manifest")
QUADRANTS = ("Q1", "Q2", "Q3", "Q4")

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
