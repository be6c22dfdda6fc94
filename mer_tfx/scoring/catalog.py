"""Catalog scoring: every song of a folder or manifest through a pushed model, as a Beam pipeline.

`score_catalog` lists the songs (`list_songs`), leaves out those the output file
already holds, and runs a Beam pipeline: songs in batches -> `ScoreSongsFn`, which
loads the SavedModel once per worker (`setup()`), decodes each file on the worker and
predicts the batch in one call -> one row per song; a file that cannot be decoded, or
that the model rejects (silent, empty), goes to a second output with its reason and
never stops the job. The driver then writes the rows after those already in the
output file (Parquet or CSV by its extension) and the unreadable files to
`<out>.skipped.csv` (`mer_tfx.scoring.score_files`). One run at a time per output file
(`mer_tfx.run_lock`): holding its lock, a run first removes what a killed run left
beside the output (its shards, a temporary file), then scores.

A row: `song_id`, `path`, `seconds`, `valence_probability`, `valence_label`,
`arousal_probability`, `arousal_label`, `quadrant` (the model's answer for the first
30 s, looped when shorter, exactly as `mer predict` and the serving graph); with a
timeline also `window_seconds`, `hop_seconds` and the per-window lists
`window_start`, `window_end`, `window_valence_probability`,
`window_arousal_probability`, `window_quadrant` (Parquet list columns; JSON arrays
in CSV). See docs/scoring.md.

The runner is Beam's: the DirectRunner in multi-processing mode with one worker per
core by default (`default_beam_args`), any other by `beam_args`. The pipeline's
shards go to a folder beside the output file, so on a cluster the output must be on
storage that the workers and this process share.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import apache_beam as beam
import numpy as np

from mer_tfx import faults, run_lock
from mer_tfx.audio import AUDIO_EXTENSIONS
from mer_tfx.client.predictions import Prediction, ServingError
from mer_tfx.contract import clip_samples
from mer_tfx.errors import AudioLoadError, ParameterError
from mer_tfx.scoring.score_files import (  # noqa: F401 (re-exported: imported from here too)
    OUTPUT_FORMATS,
    SCORE_COLUMNS,
    SKIPPED_SUFFIX,
    TIMELINE_COLUMNS,
    columns,
    existing_columns,
    output_format,
    parts_prefix,
    read_scores,
    remove_leftovers,
    skipped_path,
    write_scores,
    write_skipped,
)

PathLike = Union[str, os.PathLike]

_SKIPPED_TAG = "skipped"


@dataclasses.dataclass(frozen=True)
class Song:
    """One song to score: its id, its audio file, its place in the listing."""

    song_id: str
    path: str
    index: int = 0


@dataclasses.dataclass(frozen=True)
class TimelineSettings:
    """Windows of `window_seconds` every `hop_seconds` (see `mer_tfx.client.timeline`)."""

    window_seconds: float = 30.0
    hop_seconds: float = 10.0

    def __post_init__(self):
        if not (self.window_seconds > 0 and self.hop_seconds > 0):
            raise ParameterError(
                "window and hop must be positive seconds. Received: "
                f"window_seconds={self.window_seconds}, hop_seconds={self.hop_seconds}"
            )


@dataclasses.dataclass(frozen=True)
class ScoreReport:
    """What a `score_catalog` run did."""

    out: Path
    skipped_file: Path
    listed: int
    already_scored: int
    scored: int
    skipped: List[Tuple[str, str, str]]  # (path, song_id, reason)
    cleaned: Tuple[Path, ...] = ()  # what killed runs had left beside `out`, now removed


# ------------------------------------------------------------------------- the songs


def list_songs(source: PathLike) -> List[Song]:
    """The songs of a folder (audio files at any depth) or a manifest, in a stable order.

    Args:
        source: a folder; a CSV manifest with a `path` column (and optionally `song_id`;
            other columns are ignored, so a training manifest works as is); or a text
            file with one path per line. Relative paths are taken from the manifest's folder.

    Returns:
        Songs with absolute paths; a folder's song ids are the files' paths relative
        to it without their extension, a manifest's its `song_id` column or the file's stem.

    Raises:
        ParameterError: the source does not exist, or a CSV manifest has no `path` column.
    """
    source = Path(source).expanduser()
    if source.is_dir():
        files = sorted(
            p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
        )
        return [
            Song(
                song_id=p.relative_to(source).with_suffix("").as_posix(),
                path=str(p.resolve()),
                index=i,
            )
            for i, p in enumerate(files)
        ]
    if not source.is_file():
        raise ParameterError(
            f"The catalog must be a folder or a manifest file. Received: {str(source)!r}"
        )
    if source.suffix.lower() == ".csv":
        with source.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if "path" not in (reader.fieldnames or []):
                raise ParameterError(
                    "A CSV manifest needs a 'path' column. Received: "
                    f"columns {reader.fieldnames} in {str(source)!r}"
                )
            entries = [(row["path"], row.get("song_id") or "") for row in reader]
    else:
        lines = source.read_text(encoding="utf-8").splitlines()
        entries = [
            (line.strip(), "") for line in lines if line.strip() and not line.startswith("#")
        ]
    songs, seen = [], set()
    for path_text, song_id in entries:
        path = Path(path_text).expanduser()
        path = (path if path.is_absolute() else source.parent / path).resolve()
        if not path_text or str(path) in seen:  # a song listed twice is scored once
            continue
        seen.add(str(path))
        songs.append(Song(song_id=song_id or path.stem, path=str(path), index=len(songs)))
    return songs


# ------------------------------------------------------------------------- the DoFn


def _row(song: Song, seconds: float, prediction: Prediction) -> dict:
    return {"song_id": song.song_id, "path": song.path, "seconds": seconds, **prediction.to_dict()}


def _timeline_columns(timeline) -> dict:
    return {
        "window_seconds": timeline.window_seconds,
        "hop_seconds": timeline.hop_seconds,
        "window_start": [float(s) for s in timeline.starts],
        "window_end": [float(e) for e in timeline.ends],
        "window_valence_probability": [p.valence_probability for p in timeline.predictions],
        "window_arousal_probability": [p.arousal_probability for p in timeline.predictions],
        "window_quadrant": [p.quadrant for p in timeline.predictions],
    }


def _skipped(song: Song, reason: str) -> beam.pvalue.TaggedOutput:
    return beam.pvalue.TaggedOutput(
        _SKIPPED_TAG, {"path": song.path, "song_id": song.song_id, "reason": reason}
    )


class ScoreSongsFn(beam.DoFn):
    """Batches of `Song` -> score rows (main output) and skipped songs (`"skipped"` output).

    The SavedModel is loaded once per worker in `setup()`. Each song is decoded on the
    worker (its first 30 s only, unless a timeline needs all of it); the batch's clips
    go to the model in one call, and when the model rejects one (a silent clip fails
    the graph's check for the whole batch) each clip is retried alone to name it.

    Args:
        model_dir: the pushed model (Pusher base, model base path or version folder).
        timeline: also score windows over time. Defaults to None (no timeline).
        progress_path: a `mer_tfx.console.SharedProgress` file, advanced once per song
            (scored or skipped). Defaults to None (no progress bar).
    """

    def __init__(
        self,
        *,
        model_dir: str,
        timeline: Optional[TimelineSettings] = None,
        progress_path: Optional[str] = None,
    ):
        self._model_dir = str(model_dir)
        self._timeline = timeline
        self._progress_path = progress_path
        self._model = None

    def setup(self):
        from mer_tfx.client.local_model import LocalModel

        self._model = LocalModel(model_dir=self._model_dir)
        info = self._model.model_info()
        self._rate = info.sample_rate
        self._clip_seconds = info.clip_seconds
        self._clip_samples = clip_samples(clip_seconds=info.clip_seconds,
                                          sample_rate=info.sample_rate)

    def _decode(self, song: Song) -> Tuple[np.ndarray, np.ndarray, float]:
        """(model clip, the whole song or None, seconds); raises AudioLoadError."""
        from mer_tfx.audio import load_audio, load_clip_with_info
        from mer_tfx.features import loop_to_length_np

        if self._timeline is not None:
            song_audio = load_audio(song.path, sample_rate=self._rate)
            clip = loop_to_length_np(song_audio, num_samples=self._clip_samples)
            return clip, song_audio, len(song_audio) / self._rate
        # The clip and the header's duration from one open of the file.
        clip, info = load_clip_with_info(
            song.path, sample_rate=self._rate, clip_seconds=self._clip_seconds
        )
        return clip, None, math.nan if info is None else info.seconds

    def _predict(self, clips: List[np.ndarray]) -> List[Prediction | ServingError]:
        try:
            return list(self._model.predict(clips))
        except ServingError:
            if len(clips) == 1:
                raise
        answers: List[Prediction | ServingError] = []
        for clip in clips:
            try:
                answers.extend(self._model.predict([clip]))
            except ServingError as error:
                answers.append(error)
        return answers

    def process(self, songs: Sequence[Song]) -> Iterator:
        from mer_tfx import console

        for item in self._score(songs):
            faults.fault_point("score.song")
            yield item
            console.advance(self._progress_path)  # one item (row or skipped) per song

    def _score(self, songs: Sequence[Song]) -> Iterator:
        from mer_tfx.client.timeline import analyse_timeline

        decoded = []
        for song in songs:
            try:
                decoded.append((song, *self._decode(song)))
            except AudioLoadError as error:
                yield _skipped(song, error.reason)
        if not decoded:
            return
        try:
            answers = self._predict([clip for _, clip, _, _ in decoded])
        except ServingError as error:
            answers = [error]
        for (song, _, song_audio, seconds), answer in zip(decoded, answers, strict=True):
            if isinstance(answer, ServingError):
                yield _skipped(song, answer.message)
                continue
            row = _row(song, seconds, answer)
            if self._timeline is not None:
                try:
                    timeline = analyse_timeline(
                        song_audio,
                        model=self._model,
                        sample_rate=self._rate,
                        window_seconds=self._timeline.window_seconds,
                        hop_seconds=self._timeline.hop_seconds,
                        path=song.path,
                    )
                except ServingError as error:
                    yield _skipped(song, f"timeline: {error.message}")
                    continue
                row.update(_timeline_columns(timeline))
            yield row


# ------------------------------------------------------------------------- the pipeline

# Runners whose workers run on this machine (None: Beam's default, the DirectRunner).
_DIRECT_RUNNERS = (
    None,
    "DirectRunner",
    "direct",
    "BundleBasedDirectRunner",
    "SwitchingDirectRunner",
)


def default_beam_args(beam_args: Sequence[str] = (), *, workers: Optional[int] = None) -> List[str]:
    """`beam_args`, plus the multi-process DirectRunner when they choose no runner or mode.

    One worker per core unless `--direct_num_workers` (or `workers`) says otherwise; on a
    single core, Beam's default in-memory runner.
    """
    args = list(beam_args)
    names = {a.split("=")[0] for a in args}
    if names & {"--runner", "--direct_running_mode"}:
        return args
    if "--direct_num_workers" not in names:
        workers = workers or os.cpu_count() or 1
        if workers < 2:
            return args
        args.append(f"--direct_num_workers={workers}")
    return args + ["--direct_running_mode=multi_processing"]


def build_scoring_pipeline(
    pipeline: beam.Pipeline,
    songs: Sequence[Song],
    *,
    model_dir: str,
    parts_prefix: str,
    timeline: Optional[TimelineSettings] = None,
    batch_size: int = 8,
    progress_path: Optional[str] = None,
) -> None:
    """Adds the scoring steps: songs -> JSON-lines shards `<parts_prefix>scored*`, `...skipped*`.

    `progress_path`: a `console.SharedProgress` file the workers advance once per song.
    """
    results = (
        pipeline
        | "Songs" >> beam.Create(list(songs), reshuffle=True)
        | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=max(1, batch_size))
        | "Score"
        >> beam.ParDo(
            ScoreSongsFn(model_dir=model_dir, timeline=timeline, progress_path=progress_path)
        ).with_outputs(_SKIPPED_TAG, main="scored")
    )
    for name in ("scored", _SKIPPED_TAG):
        (
            results[name]
            | f"{name} to JSON" >> beam.Map(json.dumps)
            | f"Write {name}"
            >> beam.io.WriteToText(f"{parts_prefix}{name}", file_name_suffix=".jsonl")
        )


def _read_parts(folder: Path, name: str) -> List[dict]:
    rows = []
    for shard in sorted(folder.glob(f"{name}*.jsonl")):
        with shard.open(encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


# ------------------------------------------------------------------------- the run


def score_catalog(
    source: PathLike,
    *,
    model_dir: PathLike,
    out: PathLike,
    timeline: Optional[TimelineSettings] = None,
    beam_args: Sequence[str] = (),
    batch_size: int = 8,
) -> ScoreReport:
    """Scores every song of `source` not yet in `out`, and adds them to `out`.

    Args:
        source: a folder or manifest (see `list_songs`).
        model_dir: the pushed model (Pusher base, model base path or version folder).
        out: `.parquet` or `.csv`; created, or extended when it exists (songs already
            in it, by path, are not scored again).
        timeline: also score windows over time. Defaults to None.
        beam_args: Beam pipeline options, e.g. `["--runner=FlinkRunner", ...]`; without a
            runner or running mode, the multi-process DirectRunner (`default_beam_args`).
        batch_size: songs per model call. Defaults to 8.

    Returns:
        A `ScoreReport`; the unreadable songs are also in `<out>.skipped.csv`.

    Raises:
        ParameterError: bad extension, no model, or an existing `out` whose columns
            differ from this run's (with and without `--timeline`).
    """
    from mer_tfx.server.servable import resolve_model_dir

    out = Path(out).expanduser().resolve()
    output_format(out)
    if batch_size < 1:
        raise ParameterError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    model_dir = str(resolve_model_dir(model_dir).resolve())  # fail here, not on every worker
    songs = list_songs(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    # One run at a time per output file: a second one would lose the first one's rows
    # and remove its shards.
    with run_lock.hold(run_lock.file_lock(out), holder="mer score", what=str(out)):
        cleaned = remove_leftovers(out)  # of a run killed before its final rename
        found_columns = existing_columns(out)
        if found_columns is not None and found_columns != columns(timeline is not None):
            raise ParameterError(
                f"{str(out)!r} holds other columns than this run writes (a run "
                f"{'without' if timeline is not None else 'with'} --timeline?); pass another "
                f"--out. Received: columns {list(found_columns)}"
            )
        existing = read_scores(out)
        done = {row["path"] for row in existing}
        todo = [song for song in songs if song.path not in done]
        new_rows, skipped = _score_songs(
            todo, model_dir=model_dir, out=out, timeline=timeline, beam_args=beam_args,
            batch_size=batch_size,
        )
        if new_rows or found_columns is None:
            write_scores(out, existing + new_rows, timeline=timeline is not None)
        sidecar = skipped_path(out)
        write_skipped(sidecar, skipped)
    return ScoreReport(
        out=out,
        skipped_file=sidecar,
        listed=len(songs),
        already_scored=len(songs) - len(todo),
        scored=len(new_rows),
        skipped=skipped,
        cleaned=tuple(cleaned),
    )


def _score_songs(
    todo: Sequence[Song],
    *,
    model_dir: str,
    out: Path,
    timeline: Optional[TimelineSettings],
    beam_args: Sequence[str],
    batch_size: int,
) -> Tuple[List[dict], List[Tuple[str, str, str]]]:
    """Runs the Beam pipeline on `todo`: (rows, skipped songs), in the listing's order.

    The shards go to a hidden folder beside `out` (`.<name>.parts-*`), removed at the end.
    """
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from mer_tfx import console

    if not todo:
        return [], []
    parts = Path(tempfile.mkdtemp(prefix=parts_prefix(out), dir=out.parent))
    try:
        options = PipelineOptions(default_beam_args(beam_args))
        # The workers of Beam's DirectRunner run on this machine and can advance a
        # bar through a file; a remote runner's cannot.
        local = options.view_as(StandardOptions).runner in _DIRECT_RUNNERS
        with (
            console.SharedProgress(total=len(todo), desc="mer score", unit="song") as progress,
            beam.Pipeline(options=options) as p,
        ):
            build_scoring_pipeline(
                p,
                todo,
                model_dir=model_dir,
                parts_prefix=str(parts) + os.sep,
                timeline=timeline,
                batch_size=batch_size,
                progress_path=progress.path if local else None,
            )
        order = {song.path: song.index for song in todo}
        rows = sorted(_read_parts(parts, "scored"), key=lambda r: order[r["path"]])
        skipped = sorted(
            ((r["path"], r["song_id"], r["reason"]) for r in _read_parts(parts, _SKIPPED_TAG)),
            key=lambda s: order[s[0]],
        )
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return rows, skipped
