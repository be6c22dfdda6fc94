import logging

import apache_beam as beam
import numpy as np
import pytest
import soundfile
import tensorflow as tf
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from components import example_codec
from components.audio_example_gen import decode
from components.conftest import TINY_FEATURES, song_dict, write_corrupt, write_tone
from mer_tfx import audio, contract
from mer_tfx.errors import AudioLoadError
from tests.fixtures.opens import count_opens


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


def test_decoding_a_song_opens_its_file_once(tmp_path, monkeypatch):
    mono = write_tone(tmp_path / "mono.wav", seconds=1.0, sample_rate=16000, frequency=440)
    stereo = write_tone(
        tmp_path / "stereo.wav", seconds=4.0, sample_rate=8000, frequency=220, channels=2
    )
    decode_fn = decode.DecodeSongFn(features=TINY_FEATURES)
    opens = count_opens(monkeypatch)
    for path, seconds, rate in ((mono, 1.0, 16000), (stereo, 4.0, 8000)):
        (song,) = decode_fn.process(song_dict(path.stem, path))
        feature = _parse(song).features.feature
        # The header facts come from the same open as the waveform.
        assert feature[contract.DURATION_SECONDS].float_list.value == [seconds]
        assert feature[contract.SOURCE_SAMPLE_RATE].int64_list.value == [rate]
    assert {path: opens[path] for path in (str(mono), str(stereo))} == {
        str(mono): 1,
        str(stereo): 1,
    }


def _sources(tmp_path):
    """Files of each kind the datasets hold: shorter and longer than the clip, mono and
    stereo, at the clip's rate and others, PCM and float, WAV, FLAC, MP3 and OGG."""
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, size=(5 * 44100, 2)).astype(np.float32)
    paths = [
        write_tone(tmp_path / "short.wav", seconds=1.0, sample_rate=16000, frequency=440),
        write_tone(tmp_path / "native.wav", seconds=4.0, sample_rate=8000, frequency=220),
    ]
    for name, rate, data, kwargs in (
        ("noise.wav", 44100, noise, {"subtype": "FLOAT"}),
        ("noise.flac", 22050, noise[: 3 * 22050], {}),
        ("noise.mp3", 44100, noise, {}),
        ("noise.ogg", 32000, noise[: 2 * 32000, :1], {}),
    ):
        soundfile.write(str(tmp_path / name), data, rate, **kwargs)
        paths.append(tmp_path / name)
    return paths


def test_load_song_is_load_clip_and_audio_info_from_one_open(tmp_path):
    for path in _sources(tmp_path):
        waveform, facts = decode.load_song(str(path), features=TINY_FEATURES)
        expected = audio.load_clip(
            path, sample_rate=TINY_FEATURES.sample_rate, clip_seconds=TINY_FEATURES.clip_seconds
        )
        np.testing.assert_array_equal(waveform, expected, err_msg=path.name)
        info = audio.audio_info(path)
        assert facts == {
            contract.DURATION_SECONDS: info.seconds,
            contract.SOURCE_SAMPLE_RATE: info.sample_rate,
        }, path.name


def test_load_song_gives_load_clips_one_line_reason_for_a_bad_file(tmp_path):
    no_samples = tmp_path / "no_samples.wav"
    soundfile.write(str(no_samples), np.zeros((0, 1), np.float32), 8000)
    nan = tmp_path / "nan.wav"
    soundfile.write(str(nan), np.array([0.1, np.nan, 0.2], np.float32), 8000, subtype="FLOAT")
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    corrupt = write_corrupt(tmp_path / "corrupt.wav")
    for path in (corrupt, empty, tmp_path / "missing.wav", no_samples, nan):
        with pytest.raises(AudioLoadError) as ours:
            decode.load_song(str(path), features=TINY_FEATURES)
        with pytest.raises(AudioLoadError) as load_clip:
            audio.load_clip(path, sample_rate=8000, clip_seconds=TINY_FEATURES.clip_seconds)
        assert (ours.value.path, ours.value.reason) == (str(path), load_clip.value.reason)
        assert "\n" not in str(ours.value)
