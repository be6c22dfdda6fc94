"""Deprecated: `mer_tfx.serve.json_codec` moved to `mer_tfx.server.json_codec`; this path goes in the next release."""

import warnings

from mer_tfx.server.json_codec import *  # noqa: F401, F403

warnings.warn(
    "mer_tfx.serve.json_codec is deprecated: import mer_tfx.server.json_codec instead",
    DeprecationWarning,
    stacklevel=2,
)
