import logging

import apache_beam as beam
import numpy as np
import soundfile
import tensorflow as tf
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from components import example_codec
from components.audio_example_gen import decode
from components.conftest import TINY_FEATURES, song_dict, write_corrupt, write_tone
from mer_tfx import contract


def _parse(song):
    return tf.train.Example.FromString(song.example)


def _song_id(example):
    return example.features.feature["song_id"].bytes_list.value[0].decode()


def test_encode_song_example_has_the_contract_features():
    waveform = np.linspace(-1, 1, TINY_FEATURES.clip_samples, dtype=np.float32)
    song = song_dict("s1", "/x/s1.wav", quadrant="Q2", valence=0.25, arousal=0.75, valence_high=0)
    song["metadata"] = {"genre": "Jazz", "artist": "A", "quadrant": "clash"}
    example = tf.train.Example.FromString(
        decode.encode_song_example(song, waveform, sample_rate=8000)
    )
    f = example.features.feature
    assert f["song_id"].bytes_list.value == [b"s1"]
    assert f["audio_path"].bytes_list.value == [b"/x/s1.wav"]
    np.testing.assert_array_equal(example_codec.float_values(f["waveform"]), waveform)
    assert f["sample_rate"].int64_list.value == [8000]
    assert f["valence_high"].int64_list.value == [0]
    assert f["arousal_high"].int64_list.value == [1]
    # A metadata key never overrides a contract feature.
    assert f["quadrant"].bytes_list.value == [b"Q2"]
    assert f["valence"].float_list.value == [0.25]
    assert f["arousal"].float_list.value == [0.75]
    assert f["genre"].bytes_list.value == [b"Jazz"]
    assert f["artist"].bytes_list.value == [b"A"]


def test_encode_song_example_leaves_out_absent_continuous_labels():
    example = tf.train.Example.FromString(
        decode.encode_song_example(song_dict("s1", "/x"), np.zeros(4, np.float32), sample_rate=8000)
    )
    assert "valence" not in example.features.feature
    assert "arousal" not in example.features.feature


def test_decode_songs_routes_bad_files_to_skipped(tmp_path, caplog):
    good = write_tone(tmp_path / "good.wav", seconds=1.0, sample_rate=16000, frequency=440)
    longer = write_tone(
        tmp_path / "long.wav", seconds=4.0, sample_rate=8000, frequency=220, channels=2
    )
    corrupt = write_corrupt(tmp_path / "corrupt.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    songs = [
        song_dict("good", good),
        song_dict("long", longer),
        song_dict("corrupt", corrupt),
        song_dict("empty", empty),
        song_dict("missing", tmp_path / "missing.wav"),
    ]
    caplog.set_level(logging.WARNING)
    with test_pipeline.TestPipeline() as pipeline:
        result = (
            pipeline
            | beam.Create(songs)
            | decode.DecodeSongs(features=TINY_FEATURES)
        )
        shapes = result.songs | "Shape" >> beam.Map(
            lambda song: (
                song.song_id,
                _song_id(tf.train.Example.FromString(song.example)),
                len(_parse(song).features.feature["waveform"].float_list.value),
                _parse(song).features.feature["sample_rate"].int64_list.value[0],
            )
        )
        assert_that(
            shapes,
            equal_to([("good", "good", 24000, 8000), ("long", "long", 24000, 8000)]),
            label="Examples",
        )
        skipped_ids = result[decode.SKIPPED_TAG] | "Ids" >> beam.Map(
            lambda row: (row["song_id"], bool(row["reason"]), row["path"].endswith(".wav"))
        )
        assert_that(
            skipped_ids,
            equal_to([("corrupt", True, True), ("empty", True, True), ("missing", True, True)]),
            label="Skipped",
        )
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for name in ("corrupt.wav", "empty.wav", "missing.wav"):
        assert name in warned


def test_decoded_waveform_loops_a_short_clip(tmp_path):
    path = write_tone(tmp_path / "short.wav", seconds=1.0, sample_rate=8000, frequency=440)
    with test_pipeline.TestPipeline() as pipeline:
        result = (
            pipeline
            | beam.Create([song_dict("short", path)])
            | decode.DecodeSongs(features=TINY_FEATURES)
        )
        looped = result.songs | beam.Map(
            lambda song: bool(
                np.array_equal(
                    example_codec.float_values(_parse(song).features.feature["waveform"])[:8000],
                    example_codec.float_values(_parse(song).features.feature["waveform"])[
                        8000:16000
                    ],
                )
            )
        )
        assert_that(looped, equal_to([True]))


def test_decoded_examples_carry_the_audio_level_facts(tmp_path):
    tone = write_tone(tmp_path / "tone.wav", seconds=1.5, sample_rate=16000, frequency=440)
    silent = tmp_path / "silent.wav"
    soundfile.write(str(silent), np.zeros(8000, np.float32), 8000, subtype="PCM_16")
    with test_pipeline.TestPipeline() as pipeline:
        result = (
            pipeline
            | beam.Create([song_dict("tone", tone), song_dict("silent", silent)])
            | decode.DecodeSongs(features=TINY_FEATURES)
        )
        facts = result.songs | beam.Map(
            lambda song: (
                song.song_id,
                *(
                    round(_parse(song).features.feature[name].float_list.value[0], 2)
                    for name in (
                        contract.DURATION_SECONDS,
                        contract.RMS_DBFS,
                        contract.SILENCE_SHARE,
                        contract.CLIPPING_SHARE,
                    )
                ),
                _parse(song).features.feature[contract.SOURCE_SAMPLE_RATE].int64_list.value[0],
            )
        )
        # write_tone: amplitude 0.3, so -13.47 dBFS; the silent file is at the floor.
        assert_that(
            facts,
            equal_to(
                [
                    ("tone", 1.5, -13.47, 0.0, 0.0, 16000),
                    ("silent", 1.0, contract.RMS_FLOOR_DBFS, 1.0, 0.0, 8000),
                ]
            ),
        )
