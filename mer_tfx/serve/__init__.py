"""Serving the pushed model: TF Serving's REST API, locally and from clients, and catalog scoring.

The server (`mer serve`), one job per module:
- `rest_server`: `RestServer`, starts and stops the pieces below (and re-exports them);
- `serving_config`: which models are served (`models.config` or arguments);
- `versions`: `ModelManager`, the loaded versions of one model, polling the disk;
- `json_codec`: TF Serving's predict JSON <-> the signature's arrays;
- `handler`: HTTP routing, body rules and JSON errors;
- `rest_error`: the `{"error": ...}` answer with its status;
- `servable`: one loaded SavedModel version and the version-folder layout.

The model from the user's side (`mer predict`, `mer score`):
- `client`: `RestModel`, the REST client (no TensorFlow, none of the server's modules);
- `local_model`: `LocalModel`, a pushed SavedModel in this process (same API);
- `predictions`: `Prediction`, `ModelInfo`, `ServingError`, shared by both;
- `file_predictions`: `predict_files` and its table (`mer predict`);
- `timeline`: a song of any length in windows over time, and its plot;
- `scoring`: a catalog scored as a Beam pipeline (`mer score`).

`testing`: a tiny model with the production signatures, for tests.
Submodules are imported on use; importing this package loads nothing heavy.
See docs/serving.md and docs/scoring.md.
"""
