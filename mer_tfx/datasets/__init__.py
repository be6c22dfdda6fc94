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

The package: `records` (`Record`, `Skipped`, `DatasetIndex`), one module per layout
(`pmemo`, `four_q`, `manifest`) with what they share in `common`, and `unlabeled`
(the check of an unlabelled-audio folder). Import the names from here.
"""

from __future__ import annotations

from pathlib import Path

from mer_tfx.datasets.four_q import Q4_ANNOTATIONS, Q4_METADATA, _read_4q
from mer_tfx.datasets.manifest import MANIFEST_LABEL_COLUMNS, _read_manifest
from mer_tfx.datasets.pmemo import (
    PMEMO_ANNOTATIONS,
    PMEMO_AUDIO_DIR,
    PMEMO_METADATA,
    _read_pmemo,
)
from mer_tfx.datasets.records import (
    LAYOUT_HELP,
    LAYOUTS,
    QUADRANTS,
    UNKNOWN_GENRE,
    DatasetIndex,
    PathLike,
    Record,
    Skipped,
)
from mer_tfx.datasets.unlabeled import check_unlabeled_data
from mer_tfx.errors import DatasetError, ParameterError

__all__ = [
    "LAYOUTS",
    "LAYOUT_HELP",
    "MANIFEST_LABEL_COLUMNS",
    "PMEMO_ANNOTATIONS",
    "PMEMO_AUDIO_DIR",
    "PMEMO_METADATA",
    "Q4_ANNOTATIONS",
    "Q4_METADATA",
    "QUADRANTS",
    "UNKNOWN_GENRE",
    "DatasetIndex",
    "PathLike",
    "Record",
    "Skipped",
    "check_unlabeled_data",
    "detect_layout",
    "read_dataset",
]


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
