import json

import numpy as np
import pytest

from mer_tfx import presets
from mer_tfx.errors import AudioLoadError
from mer_tfx.experiment import features_cache
from mer_tfx.features import clip_to_log_mel_segments

# A short clip keeps the test fast: 2 s clips of 1 s segments at 8 kHz (217 frames each).
FEATURES = presets.FeatureConfig(sample_rate=8000, segment_seconds=1, n_fft=256, hop_length=37,
                                 clip_seconds=2)


class _Loader:
    """Deterministic tones; "bad" paths fail like an unreadable MP3 would."""

    def __init__(self):
        self.calls = 0

    def __call__(self, path, sample_rate, clip_seconds):
        self.calls += 1
        if "bad" in path:
            raise AudioLoadError(path, "file is empty")
        freq = 100.0 + 50.0 * int(path.split("_")[-1])
        t = np.arange(int(1.3 * sample_rate)) / sample_rate  # shorter than the clip: looped
        return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _songs():
    return [("s0", "/x/song_0"), ("s1", "/x/bad_1"), ("s2", "/x/song_2"), ("s3", "/x/song_3")]


def test_cache_matches_feature_maths_and_skips_bad_files(tmp_path, capsys):
    loader = _Loader()
    caches = features_cache.build_feature_caches(
        _songs(), features={"tiny": FEATURES}, cache_dir=tmp_path, batch_size=2,
        progress=False, loader=loader)
    cache = caches["tiny"]
    assert cache.song_ids == ["s0", "s2", "s3"]
    assert cache.skipped == [("/x/bad_1", "file is empty")]
    assert "/x/bad_1: file is empty" in capsys.readouterr().out
    assert cache.log_mels.shape == (3, 2, FEATURES.num_frames, 128) == (3, 2, 217, 128)
    expected = clip_to_log_mel_segments(loader("/x/song_2", 8000, 2.0), FEATURES).numpy()
    # Same float32 maths, batched vs single: only summation order differs.
    np.testing.assert_allclose(cache.log_mels[1], expected, atol=1e-5)
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["song_ids"] == ["s0", "s2", "s3"]


def test_second_call_loads_from_disk_without_decoding(tmp_path):
    first_loader, second_loader = _Loader(), _Loader()
    first = features_cache.build_feature_caches(
        _songs(), features={"tiny": FEATURES}, cache_dir=tmp_path, progress=False,
        loader=first_loader)["tiny"]
    second = features_cache.build_feature_caches(
        _songs(), features={"tiny": FEATURES}, cache_dir=tmp_path, progress=False,
        loader=second_loader)["tiny"]
    assert second.loaded and second_loader.calls == 0
    np.testing.assert_array_equal(np.asarray(first.log_mels), np.asarray(second.log_mels))
    # A different song list invalidates the cache.
    third_loader = _Loader()
    features_cache.build_feature_caches(
        _songs()[:2], features={"tiny": FEATURES}, cache_dir=tmp_path, progress=False,
        loader=third_loader)
    assert third_loader.calls == 2


def test_presets_sharing_a_rate_decode_each_clip_once(tmp_path):
    other = presets.FeatureConfig(sample_rate=8000, segment_seconds=2, n_fft=512, hop_length=74,
                                  clip_seconds=2)
    loader = _Loader()
    caches = features_cache.build_feature_caches(
        _songs(), features={"a": FEATURES, "b": other}, cache_dir=tmp_path, progress=False,
        loader=loader)
    assert loader.calls == len(_songs())
    assert caches["b"].log_mels.shape == (3, 1, 217, 128)


def test_float16_cache(tmp_path):
    cache = features_cache.build_feature_caches(
        _songs(), features={"tiny": FEATURES}, cache_dir=tmp_path, dtype="float16",
        progress=False, loader=_Loader())["tiny"]
    assert cache.log_mels.dtype == np.float16


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(features_cache.ParameterError, match="float64"):
        features_cache.build_feature_caches(_songs(), features={"t": FEATURES},
                                            cache_dir=tmp_path, dtype="float64")
    with pytest.raises(features_cache.ParameterError, match="s0"):
        features_cache.build_feature_caches([("s0", "a"), ("s0", "b")], features={"t": FEATURES},
                                            cache_dir=tmp_path)


def test_small_presets_share_the_paper_presets_cache():
    small, paper = presets.resolve("4q-5s-small"), presets.resolve("4q-5s")
    assert small.features == paper.features
    assert features_cache.cache_name(small) == features_cache.cache_name(paper) == "4q-5s"
    assert features_cache.cache_name(presets.resolve("4q-3s")) == "4q-3s"
