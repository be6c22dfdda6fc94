"""Deprecated: `mer_tfx.serve.versions` moved to `mer_tfx.server.versions`; this path goes in the next release."""

import warnings

from mer_tfx.server.versions import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.versions is deprecated: import mer_tfx.server.versions instead",
    DeprecationWarning,
    stacklevel=2,
)
