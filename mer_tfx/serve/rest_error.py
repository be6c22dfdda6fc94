"""Deprecated: `mer_tfx.serve.rest_error` moved to `mer_tfx.server.rest_error`; this path goes in the next release."""

import warnings

from mer_tfx.server.rest_error import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.rest_error is deprecated: import mer_tfx.server.rest_error instead",
    DeprecationWarning,
    stacklevel=2,
)
