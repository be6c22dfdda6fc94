"""Deprecated: `mer_tfx.serve.local_model` moved to `mer_tfx.client.local_model`; this path goes in the next release."""

import warnings

from mer_tfx.client.local_model import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.local_model is deprecated: import mer_tfx.client.local_model instead",
    DeprecationWarning,
    stacklevel=2,
)
