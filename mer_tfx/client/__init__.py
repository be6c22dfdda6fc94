"""The served model from the user's side (`mer predict`, `mer_tfx.predict`, `mer score`).

- `rest_model`: `RestModel`, the REST client of TF Serving or `mer serve` (no TensorFlow,
  none of `mer_tfx.server`);
- `local_model`: `LocalModel`, a pushed SavedModel in this process (same API);
- `predictions`: `Prediction`, `ModelInfo`, `ServingError`, what both answer;
- `file_predictions`: `predict_files` and its table (`mer predict`);
- `timeline`: a song of any length in windows over time, and its plot.

Submodules are imported on use; importing this package loads nothing heavy.
See docs/serving.md.
"""
