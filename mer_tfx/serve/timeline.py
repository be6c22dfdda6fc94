"""Deprecated: `mer_tfx.serve.timeline` moved to `mer_tfx.client.timeline`; this path goes in the next release."""

import warnings

from mer_tfx.client.timeline import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.timeline is deprecated: import mer_tfx.client.timeline instead",
    DeprecationWarning,
    stacklevel=2,
)
