"""One version everywhere it is written: the package, pyproject.toml, CITATION.cff, the changelog."""

from __future__ import annotations

import re
from pathlib import Path

import mer_tfx

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_the_version_is_the_same_everywhere():
    version = mer_tfx.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"] == version
    assert re.search(rf"^version: {re.escape(version)}$", (REPO / "CITATION.cff").read_text(), re.M)
    assert re.search(rf"^## {re.escape(version)}\b", (REPO / "CHANGELOG.md").read_text(), re.M)
