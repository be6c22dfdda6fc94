"""The direction of imports (docs/architecture.md) holds, and nothing edits sys.path.

The layers are an import-linter contract in pyproject.toml ([tool.importlinter]);
this test runs `lint-imports` as CI does, so an import that runs back up (e.g. the
core library importing `components` or `pipeline`, even inside a function) fails.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter's own dependency
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
SYS_PATH_EDIT = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend|remove)\b|\[[^\]]*\]\s*=|\+?=)")


def _direction_layers() -> list[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (direction,) = [c for c in config["contracts"] if c["id"] == "direction"]
    # "(name)": an optional layer, one that may not exist yet
    return [m.strip().strip("()") for layer in direction["layers"] for m in re.split(r"[|:]", layer)]


def test_imports_run_one_way():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_module_of_the_library_sits_in_a_layer():
    """A new mer_tfx module must be placed in the contract, or the contract would not see it."""
    layered = set(_direction_layers())
    modules = {
        f"mer_tfx.{p.stem}" for p in (REPO_ROOT / "mer_tfx").glob("*.py")
        if p.stem != "__init__" and p.stem != "conftest" and not p.stem.endswith("_test")
    } | {
        f"mer_tfx.{p.parent.name}" for p in (REPO_ROOT / "mer_tfx").glob("*/__init__.py")
    }
    assert sorted(modules - layered) == []


def _imported_modules(path: Path) -> set[str]:
    """Every module an `import` or `from ... import` names in `path`, also inside functions
    (for `from package import name`, also `package.name`: it may be a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_commands_never_import_one_another():
    """A command imports the library and `mer_tfx.commands.options`, never another command:
    what two commands share goes to options.py or into the library."""
    offenders = []
    for path in sorted((REPO_ROOT / "mer_tfx" / "commands").glob("*.py")):
        if path.stem == "__init__" or path.stem.endswith("_test"):
            continue
        offenders += [
            f"{path.relative_to(REPO_ROOT)} imports {name}"
            for name in sorted(_imported_modules(path))
            if name.startswith("mer_tfx.commands.")
            and name.split(".")[2] not in ("options", path.stem)
        ]
    assert offenders == []


def test_nothing_edits_sys_path():
    """Every package resolves through the install; scripts (pipeline/local.py, benchmarks) too."""
    offenders = []
    for folder in ("mer_tfx", "components", "pipeline", "benchmarks", "tests", "serving", "scripts"):
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if SYS_PATH_EDIT.search(line.split("#")[0]):
                    offenders.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}")
    assert offenders == []
