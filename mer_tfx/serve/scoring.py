"""Deprecated: `mer_tfx.serve.scoring` moved to `mer_tfx.scoring.catalog`; this path goes in the next release."""

import warnings

from mer_tfx.scoring.catalog import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.scoring is deprecated: import mer_tfx.scoring.catalog instead",
    DeprecationWarning,
    stacklevel=2,
)
