"""Deprecated: the old home of the server, the client and catalog scoring.

Each module here now re-exports its new home and warns (`DeprecationWarning`) on
import; these paths go in the next release:

- `mer_tfx.server`: `rest_server`, `handler`, `json_codec`, `versions`, `servable`,
  `rest_error`, `serving_config` (the server of `mer serve`);
- `mer_tfx.client`: `client` (now `rest_model`), `local_model`, `predictions`,
  `file_predictions`, `timeline` (the model from the user's side);
- `mer_tfx.scoring`: `scoring` (now `catalog`, `mer score`).

The test model of `mer_tfx.serve.testing` is a test fixture now, in
tests/fixtures/serving.py (not installed with the library).
"""
