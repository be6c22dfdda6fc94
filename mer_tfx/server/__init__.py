"""The server of `mer serve`: TF Serving's REST API for pushed SavedModels, one job per module.

- `rest_server`: `RestServer`, starts and stops the pieces below (and re-exports them);
- `serving_config`: which models are served (`models.config` or arguments);
- `versions`: `ModelManager`, the loaded versions of one model, polling the disk;
- `json_codec`: TF Serving's predict JSON <-> the signature's arrays;
- `handler`: HTTP routing, body rules and JSON errors;
- `rest_error`: the `{"error": ...}` answer with its status;
- `servable`: one loaded SavedModel version and the version-folder layout.

Submodules are imported on use; importing this package loads nothing heavy.
See docs/serving.md.
"""
