"""A pushed SavedModel loaded in this process: the served model without a server.

`LocalModel` has the REST client's small API (`model_info()`, `predict(waveforms)`,
`close()`), so `mer predict --model-dir`, the timeline and catalog scoring use a
pushed model exactly as they would use a running TF Serving. It lives beside
`servable` (it loads one), not in the client, which stays free of TensorFlow.
"""

from __future__ import annotations

import os
from typing import List, Sequence, Union

import numpy as np

from mer_tfx.client.predictions import (
    ModelInfo,
    Prediction,
    ServingError,
    info_from_columns,
    predictions_from_columns,
    same_length_groups,
)
from mer_tfx.contract import MODEL_INFO, SERVING_DEFAULT
from mer_tfx.server.servable import Servable, graph_error_message, resolve_model_dir

PathLike = Union[str, os.PathLike]


class LocalModel:
    """A pushed SavedModel loaded in this process (no server).

    Args:
        model_dir: a version folder, a model base path (latest version taken) or a
            Pusher base holding one model name.

    Raises:
        ParameterError: no SavedModel under `model_dir`.
    """

    def __init__(self, *, model_dir: PathLike):
        path = resolve_model_dir(model_dir)
        self.servable = Servable(path=path)
        self.path = path
        self._info: ModelInfo | None = None

    def model_info(self) -> ModelInfo:
        if self._info is None:
            self._info = info_from_columns(
                self._run(MODEL_INFO, {"unused": np.zeros([1], np.int32)})
            )
        return self._info

    def _run(self, signature: str, inputs: dict) -> dict:
        import tensorflow as tf

        try:
            return self.servable.run(signature, inputs)
        except tf.errors.InvalidArgumentError as error:
            raise ServingError(graph_error_message(error), status=400) from None

    def predict(self, waveforms: Sequence[np.ndarray]) -> List[Prediction]:
        """One prediction per float32 [samples] waveform at the model's sample rate.

        Raises:
            ServingError: the graph rejected a clip (empty, silent, NaN); status 400.
        """
        waveforms = [np.asarray(w, np.float32).reshape(-1) for w in waveforms]
        results: dict = {}
        for group in same_length_groups(waveforms):
            batch = np.stack([waveforms[i] for i in group])
            answer = self._run(SERVING_DEFAULT, {"waveform": batch})
            results.update(zip(group, predictions_from_columns(answer), strict=True))
        return [results[i] for i in range(len(waveforms))]

    def close(self) -> None:
        """Nothing to release (kept for symmetry with RestModel)."""
