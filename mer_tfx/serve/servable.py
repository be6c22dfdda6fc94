"""Deprecated: `mer_tfx.serve.servable` moved to `mer_tfx.server.servable`; this path goes in the next release."""

import warnings

from mer_tfx.server.servable import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.servable is deprecated: import mer_tfx.server.servable instead",
    DeprecationWarning,
    stacklevel=2,
)
