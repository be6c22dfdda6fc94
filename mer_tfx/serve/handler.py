"""Deprecated: `mer_tfx.serve.handler` moved to `mer_tfx.server.handler`; this path goes in the next release."""

import warnings

from mer_tfx.server.handler import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.handler is deprecated: import mer_tfx.server.handler instead",
    DeprecationWarning,
    stacklevel=2,
)
