"""Predictions for audio files with any model: decode, predict, report failures, tabulate.

`predict_files` decodes each file on the client (`mer_tfx.audio.load_audio`: MP3,
WAV, FLAC, OGG at any rate, since stock TF Serving has no MP3 decoder), asks the
model (a `RestModel` or a `LocalModel`) and returns the results with the files that
failed and why; `format_table` renders them for `mer predict`.

Examples:

>>> model = RestModel(url="http://localhost:8501")  # doctest: +SKIP
>>> results, failures = predict_files(["song.mp3"], model=model)  # doctest: +SKIP
>>> results[0].prediction.quadrant  # doctest: +SKIP
'Q1'
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, List, Sequence, Tuple, TypeVar, Union

import numpy as np

from mer_tfx.client.predictions import Prediction, ServingError
from mer_tfx.errors import AudioLoadError

PathLike = Union[str, os.PathLike]
T = TypeVar("T")


def load_for_model(path: PathLike, *, sample_rate: int) -> np.ndarray:
    """Decodes any supported audio file to float32 mono [samples] at `sample_rate`.

    Raises:
        AudioLoadError: the file is missing or cannot be decoded.
    """
    from mer_tfx.audio import load_audio

    return load_audio(path, sample_rate=sample_rate)


@dataclasses.dataclass(frozen=True)
class FileResult:
    """The prediction for one audio file."""

    path: str
    seconds: float
    prediction: Prediction

    def to_dict(self) -> dict:
        return {"file": self.path, "seconds": round(self.seconds, 3), **self.prediction.to_dict()}


def map_files(
    paths: Sequence[PathLike], *, model, analyse: Callable[[str, np.ndarray], T]
) -> Tuple[List[T], List[Tuple[str, str]]]:
    """Decodes each file at the model's rate and calls `analyse(path, waveform)` on it.

    A file that cannot be decoded, or that the model rejects, is reported and the
    others still run.

    Args:
        paths: audio files.
        model: a `RestModel` or `LocalModel` (anything with `model_info()`).
        analyse: (path, float32 [samples] at the model's rate) -> a result.

    Returns:
        (results in input order, failures as (path, reason)).

    Raises:
        ServingError: the server cannot be reached (status 0).
    """
    rate = model.model_info().sample_rate
    results, failures = [], []
    for path in paths:
        try:
            waveform = load_for_model(path, sample_rate=rate)
            results.append(analyse(str(path), waveform))
        except AudioLoadError as error:
            failures.append((str(path), error.reason))
        except ServingError as error:
            if error.status == 0:
                raise
            failures.append((str(path), error.message))
    return results, failures


def predict_files(
    paths: Sequence[PathLike], *, model
) -> Tuple[List[FileResult], List[Tuple[str, str]]]:
    """Predicts each file (`map_files` with one prediction per file).

    Returns:
        (results in input order, failures as (path, reason)).
    """
    rate = model.model_info().sample_rate

    def predict(path: str, waveform: np.ndarray) -> FileResult:
        (prediction,) = model.predict([waveform])
        return FileResult(path=path, seconds=len(waveform) / rate, prediction=prediction)

    return map_files(paths, model=model, analyse=predict)


def _level(label: int) -> str:
    return "high" if label else "low"


def format_table(results: Sequence[FileResult]) -> str:
    """A fixed-width table: file, valence P(high) and label, arousal, quadrant."""
    header = ("file", "seconds", "valence", "arousal", "quadrant")
    rows = [
        (
            Path(r.path).name,
            f"{r.seconds:.1f}",
            f"{r.prediction.valence_probability:.3f} {_level(r.prediction.valence_label)}",
            f"{r.prediction.arousal_probability:.3f} {_level(r.prediction.arousal_label)}",
            r.prediction.quadrant,
        )
        for r in results
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
