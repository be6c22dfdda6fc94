"""No module of the project's code is longer than 600 lines: a longer one holds more than one
thing and is split along its seams (as mer_tfx.training and mer_tfx.datasets were).

Tests (`*_test.py`, `test_*.py`, conftest.py, tests/) and benchmarks/ may be longer.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
CODE_FOLDERS = ("mer_tfx", "components", "pipeline", "scripts")


def _is_test(path: Path) -> bool:
    return path.name.endswith("_test.py") or path.name.startswith("test_") or (
        path.name == "conftest.py"
    )


def test_no_module_is_longer_than_600_lines():
    too_long, checked = [], 0
    for folder in CODE_FOLDERS:
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if _is_test(path):
                continue
            checked += 1
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES:
                too_long.append(f"{path.relative_to(REPO_ROOT)}: {lines} lines")
    assert checked > 50  # the walk found the code (not an empty or moved folder)
    assert too_long == [], f"split these modules (at most {MAX_LINES} lines each): {too_long}"

