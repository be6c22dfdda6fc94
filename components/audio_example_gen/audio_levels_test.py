import numpy as np
import pytest

from components.audio_example_gen.audio_levels import audio_levels
from mer_tfx import contract

RATE = 8000


def test_digital_silence_is_at_the_floor_and_all_silent():
    levels = audio_levels(np.zeros(3 * RATE, np.float32), sample_rate=RATE)
    assert levels == {
        contract.RMS_DBFS: contract.RMS_FLOOR_DBFS,
        contract.SILENCE_SHARE: 1.0,
        contract.CLIPPING_SHARE: 0.0,
    }


def test_a_full_scale_sine_is_minus_3_dbfs_and_not_silent():
    t = np.arange(2 * RATE) / RATE
    levels = audio_levels(0.5 * np.sin(2 * np.pi * 440 * t), sample_rate=RATE)
    # RMS of a sine of amplitude a is a / sqrt(2): 20 log10(0.5 / sqrt 2) = -9.03 dB.
    assert levels[contract.RMS_DBFS] == pytest.approx(-9.03, abs=0.01)
    assert levels[contract.SILENCE_SHARE] == 0.0
    assert levels[contract.CLIPPING_SHARE] == 0.0


def test_half_silence_and_clipped_samples_are_counted():
    clip = np.concatenate([np.zeros(RATE), np.full(RATE, 0.2)])
    clip[RATE : RATE + 80] = 1.0  # 80 of 16000 samples at full scale
    levels = audio_levels(clip, sample_rate=RATE)
    assert levels[contract.SILENCE_SHARE] == 0.5
    assert levels[contract.CLIPPING_SHARE] == pytest.approx(80 / (2 * RATE))


def test_a_clip_shorter_than_a_frame_is_one_frame():
    levels = audio_levels(np.full(10, 0.5), sample_rate=RATE)
    assert levels[contract.SILENCE_SHARE] == 0.0
    assert levels[contract.RMS_DBFS] == pytest.approx(-6.02, abs=0.01)
