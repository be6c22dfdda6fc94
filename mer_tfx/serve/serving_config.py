"""Deprecated: `mer_tfx.serve.serving_config` moved to `mer_tfx.server.serving_config`; this path goes in the next release."""

import warnings

from mer_tfx.server.serving_config import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.serving_config is deprecated: import mer_tfx.server.serving_config instead",
    DeprecationWarning,
    stacklevel=2,
)
