"""mer-tfx: music emotion recognition by segment-level two-stage learning.

Keras layers and models implementing He & Ferguson, "Music Emotion Recognition
based on Segment-level Two-stage Learning", plus a TFX pipeline that trains,
evaluates and pushes them for TF Serving.

The one-line call, with the model shipped in the package (`mer_tfx.api`):

>>> import mer_tfx
>>> mer_tfx.predict("song.mp3")[0].quadrant  # doctest: +SKIP
'Q1'

`predict`, `predict_timeline` and `SongPrediction` are loaded on first use, so
`import mer_tfx` imports no TensorFlow (and no Keras).
"""

import importlib

__version__ = "0.2.0"

# Loaded on first access (PEP 562): the names of `mer_tfx.api` offered here.
_API = ("SongPrediction", "SongPredictions", "predict", "predict_timeline")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module(f"{__name__}.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_API})
