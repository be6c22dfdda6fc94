"""Deprecated: `mer_tfx.serve.rest_server` moved to `mer_tfx.server.rest_server`; this path goes in the next release."""

import warnings

from mer_tfx.server.rest_server import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.rest_server is deprecated: import mer_tfx.server.rest_server instead",
    DeprecationWarning,
    stacklevel=2,
)
