"""Songs -> tf.Examples: decoding each file and encoding its Example (Beam PTransforms).

An element is a song as a plain dict (`record_to_song`). `DecodeSongs` reshuffles
them (so that a parallel runner spreads the files over its workers) and decodes
each one, opening its file once (`load_song`: the clip and the file's header facts);
a file that cannot be decoded goes to the `SKIPPED_TAG` output with its
reason instead of failing the run. A decoded song is an `EncodedSong`: its
serialized tf.Example and what splitting and counting need.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterator, Mapping, NamedTuple, Sequence, Tuple

import apache_beam as beam
import numpy as np
import tensorflow as tf

from components import example_codec
from components.audio_example_gen import audio_levels
from mer_tfx import console, contract, faults
from mer_tfx.errors import AudioLoadError
from mer_tfx.presets import FeatureConfig

_LOGGER = logging.getLogger(__name__)

SKIPPED_TAG = "skipped"


def record_to_song(record: Any) -> Dict[str, Any]:
    """A dataset `Record` as a plain, picklable dict (the PCollection element)."""
    metadata = getattr(record, "metadata", None) or {}
    return {
        "song_id": str(record.song_id),
        "path": str(record.path),
        "valence": getattr(record, "valence", None),
        "arousal": getattr(record, "arousal", None),
        "valence_high": int(record.valence_high),
        "arousal_high": int(record.arousal_high),
        "quadrant": str(record.quadrant),
        "metadata": {str(k): str(v) for k, v in metadata.items() if v is not None},
    }


class EncodedSong(NamedTuple):
    """A decoded song: its serialized tf.Example and what splitting and counting need."""

    song_id: str
    quadrant: str
    example: bytes


def encode_song_example(
    song: Mapping[str, Any],
    waveform: np.ndarray,
    *,
    sample_rate: int,
    source: Mapping[str, Any] | None = None,
) -> bytes:
    """The ExampleGen's serialized tf.Example for one decoded song.

    The waveform is appended at the wire level (`example_codec`): setting a
    661,500-value feature through the protobuf API costs 322 ms per song against
    55 ms (`benchmarks/codec_benchmark.py`).

    Args:
        song: a `record_to_song` dict.
        waveform: float32 [clip_samples], already looped/cut and resampled.
        sample_rate: rate of `waveform` in Hz.
        source: the file's `DURATION_SECONDS` and `SOURCE_SAMPLE_RATE` when its
            header was readable (left out otherwise).

    Returns:
        serialized tf.train.Example with the features of `mer_tfx.contract`
        (docs/components.md); metadata keys that clash with those names are left out.
    """
    feature = {
        contract.SONG_ID: example_codec.bytes_feature(song["song_id"]),
        contract.AUDIO_PATH: example_codec.bytes_feature(song["path"]),
        contract.SAMPLE_RATE: example_codec.int64_feature(sample_rate),
        contract.VALENCE_HIGH: example_codec.int64_feature(song["valence_high"]),
        contract.AROUSAL_HIGH: example_codec.int64_feature(song["arousal_high"]),
        contract.QUADRANT: example_codec.bytes_feature(song["quadrant"]),
    }
    for name in (contract.VALENCE, contract.AROUSAL):
        if song.get(name) is not None:
            feature[name] = example_codec.scalar_float_feature(song[name])
    for name, value in audio_levels.audio_levels(waveform, sample_rate=sample_rate).items():
        feature[name] = example_codec.scalar_float_feature(value)
    source = source or {}
    if source.get(contract.DURATION_SECONDS) is not None:
        feature[contract.DURATION_SECONDS] = example_codec.scalar_float_feature(
            source[contract.DURATION_SECONDS]
        )
    if source.get(contract.SOURCE_SAMPLE_RATE) is not None:
        feature[contract.SOURCE_SAMPLE_RATE] = example_codec.int64_feature(
            source[contract.SOURCE_SAMPLE_RATE]
        )
    for key, value in sorted(song.get("metadata", {}).items()):
        if key not in contract.RESERVED_FEATURES and key:
            feature[key] = example_codec.bytes_feature(value)
    head = tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()
    return head + example_codec.feature_entry(
        contract.WAVEFORM, example_codec.float_feature(waveform)
    )


def load_song(path: str, *, features: FeatureConfig) -> Tuple[np.ndarray, Dict[str, Any]]:
    """A song's clip and its file's header facts, from one open of the file
    (`mer_tfx.audio.load_clip_with_info`).

    Args:
        path: the audio file.
        features: the preset's feature settings (sample rate, clip length).

    Returns:
        (waveform float32 [features.clip_samples] in [-1, 1], `mer_tfx.audio.load_clip`'s
        sample for sample; {DURATION_SECONDS, SOURCE_SAMPLE_RATE} of the file, or {}
        when only the audioread fallback could decode it, which reads no header).

    Raises:
        AudioLoadError: missing, empty or undecodable file, no or non-finite samples;
            `load_clip`'s one-line reason.
    """
    from mer_tfx import audio

    waveform, info = audio.load_clip_with_info(
        path, sample_rate=features.sample_rate, clip_seconds=features.clip_seconds
    )
    if info is None:
        return waveform, {}
    return waveform, {
        contract.DURATION_SECONDS: info.seconds,
        contract.SOURCE_SAMPLE_RATE: info.sample_rate,
    }


class DecodeSongFn(beam.DoFn):
    """Decodes one song into its tf.Example; failures go to the `SKIPPED_TAG` output.

    Input: a `record_to_song` dict. Main output: `EncodedSong`. Tagged output
    `SKIPPED_TAG`: dict(path, song_id, reason) for a file that could not be
    decoded. A bad file never fails the pipeline; it is logged as a WARNING.

    Args:
        features: the preset's feature settings (sample rate, clip length).
        progress_path: a `mer_tfx.console.SharedProgress` file, advanced once per
            song; None (the default): no progress bar.
    """

    def __init__(self, *, features: FeatureConfig, progress_path: str | None = None):
        super().__init__()
        self._features = features
        self._progress_path = progress_path
        self._decoded = beam.metrics.Metrics.counter("mer_tfx", "songs_decoded")
        self._failed = beam.metrics.Metrics.counter("mer_tfx", "songs_skipped")

    def process(self, song: Dict[str, Any]) -> Iterator[Any]:
        try:
            waveform, source = load_song(song["path"], features=self._features)
        except AudioLoadError as error:
            reason = error.reason
        except Exception as error:  # a decoder bug on one file must not stop the run
            reason = f"{type(error).__name__}: {error}"
        else:
            faults.fault_point("example_gen.song")
            self._decoded.inc()
            console.advance(self._progress_path)
            yield EncodedSong(
                song["song_id"],
                song["quadrant"],
                encode_song_example(
                    song,
                    waveform,
                    sample_rate=self._features.sample_rate,
                    source=source,
                ),
            )
            return
        self._failed.inc()
        console.advance(self._progress_path)
        _LOGGER.warning("Skipping %s (song %s): %s", song["path"], song["song_id"], reason)
        yield beam.pvalue.TaggedOutput(
            SKIPPED_TAG, {"path": song["path"], "song_id": song["song_id"], "reason": reason}
        )


class DecodeSongs(beam.PTransform):
    """Song dicts -> (songs, skipped): one element per file, reshuffled, decoded.

    Output: a `DoOutputsTuple` with `.songs` (`EncodedSong`) and
    `[SKIPPED_TAG]` (dict(path, song_id, reason)). `progress_path`: as in `DecodeSongFn`.
    """

    def __init__(self, *, features: FeatureConfig, progress_path: str | None = None):
        super().__init__()
        self._features = features
        self._progress_path = progress_path

    def expand(self, songs):
        decode = DecodeSongFn(features=self._features, progress_path=self._progress_path)
        return (
            songs
            | "Reshuffle" >> beam.Reshuffle()
            | "Decode" >> beam.ParDo(decode).with_outputs(SKIPPED_TAG, main="songs")
        )


class ReadSongs(beam.PTransform):
    """A dataset index's records, decoded: PBegin -> `DecodeSongs`' (songs, skipped).

    Args:
        records: the `mer_tfx.datasets.Record`s of a `DatasetIndex`.
        features: the preset's feature settings.
        progress_path: as in `DecodeSongFn`.
    """

    def __init__(
        self, records: Sequence[Any], *, features: FeatureConfig, progress_path: str | None = None
    ):
        super().__init__()
        self._songs = [record_to_song(record) for record in records]
        self._features = features
        self._progress_path = progress_path

    def expand(self, pbegin):
        return (
            pbegin
            | "CreateSongs" >> beam.Create(self._songs, reshuffle=False)
            | "DecodeSongs"
            >> DecodeSongs(features=self._features, progress_path=self._progress_path)
        )
