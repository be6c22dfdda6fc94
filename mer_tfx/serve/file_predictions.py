"""Deprecated: `mer_tfx.serve.file_predictions` moved to `mer_tfx.client.file_predictions`; this path goes in the next release."""

import warnings

from mer_tfx.client.file_predictions import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.file_predictions is deprecated: import mer_tfx.client.file_predictions instead",
    DeprecationWarning,
    stacklevel=2,
)
