"""The Python call: valence, arousal and quadrant of songs in one line.

`predict` rates whole songs (files or waveforms), `predict_timeline` follows one
song in windows over time. Both take the same `model`:

- None (default): the model shipped in the package (`mer_tfx.pretrained`); the
  first use logs one line naming the terms of its weights;
- a path: a SavedModel folder, a TF Serving model base path (latest version) or a
  Pusher base holding one model (`mer_tfx.server.servable.resolve_model_dir`);
- an `http(s)://` URL: a running TF Serving or `mer serve` (`RestModel`, model "mer");
- a `LocalModel` or `RestModel` already opened.

They are what `mer predict` and `mer predict --timeline` compute (the same
decoding, model calls and windows: `mer_tfx.client`). A model loaded from disk is
kept for the next call. TensorFlow is imported when a model is first loaded, not
when this module is.

Examples:

>>> import mer_tfx
>>> mer_tfx.predict("song.mp3")  # doctest: +SKIP
[SongPrediction(source='song.mp3', valence_probability=0.71, ..., quadrant='Q1', seconds=30.0)]
>>> mer_tfx.predict([waveform], sample_rate=44100).to_dataframe()  # doctest: +SKIP
>>> mer_tfx.predict_timeline("song.mp3", window_seconds=10, hop_seconds=2)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any, List, Sequence, Tuple, Union

import numpy as np

from mer_tfx import pretrained
from mer_tfx.errors import ParameterError

PathLike = Union[str, os.PathLike]
#: One song: an audio file, or a float waveform [samples] (with `sample_rate`).
Song = Union[PathLike, np.ndarray, Sequence[float]]

_LOGGER = logging.getLogger(__name__)
_URL_SCHEMES = ("http://", "https://")


@dataclasses.dataclass(frozen=True)
class SongPrediction:
    """The model's answer for one song.

    Attributes:
        source: the file's path, or "<waveform N>" for the N-th waveform given.
        valence_probability: P(high valence), in [0, 1].
        arousal_probability: P(high arousal), in [0, 1].
        valence_label: 1 for high valence, 0 for low.
        arousal_label: 1 for high arousal, 0 for low.
        quadrant: Russell's quadrant of the two labels: "Q1" (+V+A), "Q2" (-V+A),
            "Q3" (-V-A) or "Q4" (+V-A).
        seconds: the song's duration (the model rates 30 s: a longer song is cut,
            a shorter one looped, as in training).
    """

    source: str
    valence_probability: float
    arousal_probability: float
    valence_label: int
    arousal_label: int
    quadrant: str
    seconds: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class SongPredictions(List[SongPrediction]):
    """A list of `SongPrediction`, in the order the songs were given."""

    def to_dataframe(self):
        """A pandas DataFrame, one row per song, one column per `SongPrediction` field.

        Raises:
            ImportError: pandas is not installed.
        """
        import pandas as pd

        columns = [field.name for field in dataclasses.fields(SongPrediction)]
        return pd.DataFrame([p.to_dict() for p in self], columns=columns)


@functools.lru_cache(maxsize=4)
def _local_model(version_dir: str):
    from mer_tfx.client.local_model import LocalModel

    return LocalModel(model_dir=version_dir)


@functools.lru_cache(maxsize=1)
def _say_shipped_once() -> None:
    """Logs the shipped model's notice (its weights' terms) once per process."""
    _LOGGER.warning("mer_tfx: %s", pretrained.notice())


def _open_model(model) -> Tuple[Any, bool]:
    """(a model with `model_info()` and `predict(waveforms)`, whether to close it after)."""
    if model is None:
        path = pretrained.latest_version_dir()
        _say_shipped_once()
        return _local_model(str(path.resolve())), False
    if isinstance(model, str) and model.startswith(_URL_SCHEMES):
        from mer_tfx.client.rest_model import RestModel

        return RestModel(url=model), True
    if isinstance(model, (str, os.PathLike)):
        from mer_tfx.server.servable import resolve_model_dir

        return _local_model(str(resolve_model_dir(model).resolve())), False
    if callable(getattr(model, "predict", None)) and callable(getattr(model, "model_info", None)):
        return model, False
    raise ParameterError(
        "model must be None (the shipped model), a SavedModel or TF Serving folder, an "
        f"http(s):// URL, or a LocalModel/RestModel. Received: model={model!r}"
    )


def _as_songs(paths_or_waveforms) -> list:
    """One file, one waveform [samples], a batch [songs, samples], or a sequence of them."""
    if isinstance(paths_or_waveforms, (str, os.PathLike)):
        return [paths_or_waveforms]
    if isinstance(paths_or_waveforms, np.ndarray):
        if paths_or_waveforms.ndim == 1:
            return [paths_or_waveforms]
        if paths_or_waveforms.ndim == 2:
            return list(paths_or_waveforms)
        raise ParameterError(
            "An array of songs must be one waveform [samples] or a batch [songs, samples]. "
            f"Received: shape {paths_or_waveforms.shape}"
        )
    return list(paths_or_waveforms)


def _load(song, *, index: int, model_rate: int, sample_rate: int | None) -> Tuple[str, np.ndarray]:
    """(source, float32 mono [samples] at the model's rate) for a file or a waveform."""
    if isinstance(song, (str, os.PathLike)):
        from mer_tfx.client.file_predictions import load_for_model

        return str(song), load_for_model(song, sample_rate=model_rate)
    if sample_rate is None:
        raise ParameterError(
            "sample_rate is needed with waveforms (the rate they were recorded at). "
            f"Received: sample_rate=None for waveform {index}"
        )
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ParameterError(
            f"sample_rate must be a positive integer. Received: sample_rate={sample_rate!r}"
        )
    waveform = np.asarray(song, np.float32)
    if waveform.ndim != 1 or waveform.size == 0:
        raise ParameterError(
            "A waveform must be a non-empty mono float array [samples]. Received: "
            f"shape {waveform.shape} for waveform {index}"
        )
    if sample_rate != model_rate:
        import soxr

        from mer_tfx.audio import RESAMPLE_QUALITY

        waveform = np.asarray(
            soxr.resample(waveform, int(sample_rate), model_rate, quality=RESAMPLE_QUALITY),
            np.float32,
        )
    return f"<waveform {index}>", waveform


def _predict_one(model, source: str, waveform: np.ndarray):
    """The model's `Prediction` for one clip; a rejected clip's error names it."""
    from mer_tfx.client.predictions import ServingError

    try:
        (prediction,) = model.predict([waveform])
    except ServingError as error:
        if error.status == 0:  # the server cannot be reached: not about this song
            raise
        raise ServingError(f"{source}: {error.message}", status=error.status) from None
    return prediction


def predict(
    paths_or_waveforms: Union[Song, Sequence[Song]],
    *,
    model=None,
    sample_rate: int | None = None,
) -> SongPredictions:
    """Valence and arousal probabilities, labels and quadrant of each song.

    Args:
        paths_or_waveforms: an audio file (MP3, WAV, FLAC, OGG; any rate and length),
            a float waveform [samples], a batch float32 [songs, samples], or a
            sequence of files and waveforms.
        model: None for the shipped model, a model folder, an http(s):// URL, or an
            opened model (see the module docstring). Defaults to None.
        sample_rate: the waveforms' rate in Hz (resampled to the model's); needed
            when waveforms are given, unused for files. Defaults to None.

    Returns:
        A `SongPredictions` list, one `SongPrediction` per song in input order
        (`.to_dataframe()` for a pandas DataFrame).

    Raises:
        AudioLoadError: a file is missing or cannot be decoded; it names the file.
        ServingError: the model rejected a song (silent, NaN); it names the song.
        ParameterError: no model is shipped and none given, or a bad argument.
    """
    songs = _as_songs(paths_or_waveforms)
    opened, close = _open_model(model)
    try:
        rate = opened.model_info().sample_rate
        results = SongPredictions()
        for index, song in enumerate(songs):
            source, waveform = _load(song, index=index, model_rate=rate, sample_rate=sample_rate)
            p = _predict_one(opened, source, waveform)
            results.append(
                SongPrediction(
                    source=source,
                    valence_probability=p.valence_probability,
                    arousal_probability=p.arousal_probability,
                    valence_label=p.valence_label,
                    arousal_label=p.arousal_label,
                    quadrant=p.quadrant,
                    seconds=len(waveform) / rate,
                )
            )
        return results
    finally:
        if close:
            opened.close()


def predict_timeline(
    path_or_waveform: Song,
    *,
    model=None,
    sample_rate: int | None = None,
    window_seconds: float = 30.0,
    hop_seconds: float = 10.0,
    batch_size: int = 8,
):
    """One song's valence, arousal and quadrant in windows over time (`mer predict --timeline`).

    Windows of `window_seconds` start every `hop_seconds`; one more ends exactly at
    the song's end when the regular windows leave at least half a hop unrated
    (`mer_tfx.client.timeline`).

    Args:
        path_or_waveform: an audio file, or a float waveform [samples] with `sample_rate`.
        model: as in `predict`. Defaults to None (the shipped model).
        sample_rate: the waveform's rate in Hz; unused for a file. Defaults to None.
        window_seconds: window length. Defaults to 30 (the model's clip).
        hop_seconds: seconds between window starts. Defaults to 10.
        batch_size: windows per model call. Defaults to 8.

    Returns:
        A `mer_tfx.client.timeline.Timeline`: `.starts`, `.ends` (seconds, float64
        [windows]), `.predictions` (one per window), `.to_dict()`;
        `mer_tfx.client.timeline.plot_timeline` draws it.
    """
    from mer_tfx.client.timeline import analyse_timeline

    if isinstance(path_or_waveform, np.ndarray) and path_or_waveform.ndim != 1:
        raise ParameterError(
            "predict_timeline takes one song: a file or a waveform [samples]. Received: "
            f"shape {path_or_waveform.shape}"
        )
    opened, close = _open_model(model)
    try:
        rate = opened.model_info().sample_rate
        source, waveform = _load(
            path_or_waveform, index=0, model_rate=rate, sample_rate=sample_rate
        )
        return analyse_timeline(
            waveform,
            model=opened,
            sample_rate=rate,
            window_seconds=window_seconds,
            hop_seconds=hop_seconds,
            batch_size=batch_size,
            path=source,
        )
    finally:
        if close:
            opened.close()
