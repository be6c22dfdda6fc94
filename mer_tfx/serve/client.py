"""Deprecated: `mer_tfx.serve.client` moved to `mer_tfx.client.rest_model`; this path goes in the next release."""

import warnings

from mer_tfx.client.rest_model import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.client is deprecated: import mer_tfx.client.rest_model instead",
    DeprecationWarning,
    stacklevel=2,
)
