"""The serving tests' fixtures: one tiny pushed model per test session (tests/fixtures)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tests.fixtures.serving import pushed_base, servable  # noqa: E402, F401
