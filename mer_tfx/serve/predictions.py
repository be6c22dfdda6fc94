"""Deprecated: `mer_tfx.serve.predictions` moved to `mer_tfx.client.predictions`; this path goes in the next release."""

import warnings

from mer_tfx.client.predictions import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.predictions is deprecated: import mer_tfx.client.predictions instead",
    DeprecationWarning,
    stacklevel=2,
)
