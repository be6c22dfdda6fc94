"""The audio-level facts of a decoded clip that the pipeline's data validation checks.

RMS level, share of silent frames and share of clipped samples, as the features
of `mer_tfx.contract` (`RMS_DBFS`, `SILENCE_SHARE`, `CLIPPING_SHARE`). They are
measured on the clip the model sees (resampled, looped or cut to the preset's
length), so a short song looped to 30 s has the level of its own audio.
"""

from __future__ import annotations

from typing import Dict

import numpy as np

from mer_tfx import contract


def _dbfs(mean_square: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        level = 10.0 * np.log10(mean_square)
    return np.maximum(level, contract.RMS_FLOOR_DBFS)


def audio_levels(waveform: np.ndarray, *, sample_rate: int) -> Dict[str, float]:
    """RMS level (dBFS), silence share and clipping share of a mono clip.

    Args:
        waveform: float [samples] in [-1, 1].
        sample_rate: its rate in Hz (sets the 50 ms frames of the silence share).

    Returns:
        {RMS_DBFS: float >= RMS_FLOOR_DBFS, SILENCE_SHARE: float in [0, 1],
        CLIPPING_SHARE: float in [0, 1]}; an all-zero clip gives
        (RMS_FLOOR_DBFS, 1.0, 0.0).
    """
    x = np.asarray(waveform, np.float64).ravel()
    if x.size == 0:
        return {contract.RMS_DBFS: contract.RMS_FLOOR_DBFS, contract.SILENCE_SHARE: 1.0,
                contract.CLIPPING_SHARE: 0.0}
    frame = max(1, int(round(contract.SILENCE_FRAME_SECONDS * sample_rate)))
    if x.size < frame:
        frames = x[np.newaxis]
    else:  # whole frames only; the last partial frame is left out
        frames = x[: x.size - x.size % frame].reshape(-1, frame)
    frame_levels = _dbfs(np.mean(np.square(frames), axis=1))
    return {
        contract.RMS_DBFS: float(_dbfs(np.mean(np.square(x)))),
        contract.SILENCE_SHARE: float(np.mean(frame_levels < contract.SILENCE_DBFS)),
        contract.CLIPPING_SHARE: float(np.mean(np.abs(x) >= contract.CLIPPING_LEVEL)),
    }
