"""What a served model answers, whichever way it is reached (REST or in process).

`ModelInfo` (the `model_info` signature: the sample rate the model wants, its clip
and segment length, its preset), `Prediction` (one clip's valence and arousal
P(high), labels and quadrant), `ServingError` (the model or its server rejected a
request), and their parsing from a signature's output columns. The REST client
(`client`) and the in-process model (`local_model`) both return these, so the code
above them (`mer predict`, the timeline, catalog scoring) does not care which it has.
"""

from __future__ import annotations

import dataclasses
from typing import List, Sequence

import numpy as np

from mer_tfx.errors import MerTfxError


class ServingError(MerTfxError):
    """The model (or the server in front of it) rejected a request.

    Attributes:
        status: the HTTP status (400 for invalid input); 0 when the server is unreachable.
        message: the server's error message.
    """

    def __init__(self, message: str, *, status: int = 400):
        self.status = status
        self.message = message
        super().__init__(message if not status else f"HTTP {status}: {message}")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the served model expects (its `model_info` signature)."""

    sample_rate: int
    clip_seconds: float
    segment_seconds: float
    preset: str


@dataclasses.dataclass(frozen=True)
class Prediction:
    """The model's answer for one clip. Probabilities are P(high)."""

    valence_probability: float
    valence_label: int
    arousal_probability: float
    arousal_label: int
    quadrant: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def predictions_from_columns(columns: dict) -> List[Prediction]:
    """`serving_default`/`serving_wav` outputs ({name: [batch]}) -> one Prediction per clip."""
    return [
        Prediction(
            valence_probability=float(v),
            valence_label=int(vl),
            arousal_probability=float(a),
            arousal_label=int(al),
            quadrant=_text(q),
        )
        for v, vl, a, al, q in zip(
            columns["valence_probability"],
            columns["valence_label"],
            columns["arousal_probability"],
            columns["arousal_label"],
            columns["quadrant"],
            strict=True,
        )
    ]


def info_from_columns(columns: dict) -> ModelInfo:
    """`model_info` outputs ({name: [batch]}) -> ModelInfo (from the first row)."""

    def first(name):
        value = columns[name][0]
        return value.decode("utf-8") if isinstance(value, bytes) else value

    return ModelInfo(
        sample_rate=int(first("sample_rate")),
        clip_seconds=float(first("clip_seconds")),
        segment_seconds=float(first("segment_seconds")),
        preset=str(first("preset")),
    )


def same_length_groups(waveforms: Sequence[np.ndarray]) -> List[List[int]]:
    """Indices of the waveforms grouped by length (each group stacks into one batch)."""
    groups: dict = {}
    for index, waveform in enumerate(waveforms):
        groups.setdefault(len(waveform), []).append(index)
    return list(groups.values())
