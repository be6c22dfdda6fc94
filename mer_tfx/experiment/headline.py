"""The headline table of docs/results.md, built from committed results.

Which CSVs make which row is written once, in a JSON spec (`docs/results/headline.json`),
so renaming a results folder is a one-line change there:

    {"data": "...", "rounds": "...", "experiment": "mer experiment ...", "note": "...",
     "segment_seconds": 5,
     "rows": [{"name": "two-stage (default)",
               "sources": [{"results": "4q400-seed101-stage1-early-stopping/results.csv",
                            "variant": "mask-mean", "head": "bilstm"}, ...]},
              {"name": "majority class", "majority_of": "two-stage (default)"},
              {"name": "He & Ferguson, Table 5",
               "figures": {"valence accuracy": 66.89, "arousal accuracy": 86.56}}]}

Paths are relative to the spec's folder. A row's scores are the means over every fold x
round of its sources (results.csv rows of that variant, head and segment duration); its
quadrant scores come from the `predictions.csv` beside a results.csv, "–" where there is
none. "majority_of" gives the majority-class scores of another row's folds; "figures"
are published numbers (in %). Print the table, or replace it in a Markdown page between
the lines `<!-- headline-table:start -->` and `<!-- headline-table:end -->`:

    python -m mer_tfx.experiment.headline                       # prints it
    python -m mer_tfx.experiment.headline --write docs/results.md
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from mer_tfx.errors import ParameterError

START, END = "<!-- headline-table:start -->", "<!-- headline-table:end -->"
COLUMNS = ("valence accuracy", "valence F1 (high)", "arousal accuracy", "arousal F1 (high)",
           "quadrant accuracy", "quadrant macro-F1")
DEFAULT_SPEC = Path("docs/results/headline.json")
DEFAULT_PAGE = Path("docs/results.md")


def _source_rows(source: Mapping, *, folder: Path, seconds: Optional[float]) -> List[dict]:
    from mer_tfx.experiment import report

    rows = [r for r in report.read_results(folder / source["results"])
            if r["variant"] == source["variant"]
            and ("head" not in source or r["head"] == source["head"])
            and (seconds is None or float(r["segment_seconds"]) == float(seconds))]
    if not rows:
        raise ParameterError(f"No rows of variant {source['variant']!r} in "
                             f"{source['results']!r}. Received: {dict(source)}")
    return rows


def _source_predictions(source: Mapping, *, folder: Path, seconds: Optional[float]
                        ) -> Optional[List[dict]]:
    from mer_tfx.experiment import quadrants

    path = folder / source.get("predictions",
                               str(Path(source["results"]).with_name("predictions.csv")))
    if not path.is_file():
        return None
    return [p for p in quadrants.read_predictions(path)
            if p["variant"] == source["variant"]
            and ("head" not in source or p["head"] == source["head"])
            and (seconds is None or float(p["segment_seconds"]) == float(seconds))]


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def row_figures(spec: Mapping, *, folder: Path) -> Dict[str, Dict[str, float]]:
    """name -> {column: value in %, NaN where not available} of every row of `spec`."""
    from mer_tfx.experiment import quadrants

    seconds = spec.get("segment_seconds")
    out: Dict[str, Dict[str, float]] = {}
    results: Dict[str, List[dict]] = {}
    for row in spec["rows"]:
        name, figures = row["name"], {c: math.nan for c in COLUMNS}
        if "sources" in row:
            rows = [r for s in row["sources"] for r in _source_rows(s, folder=folder,
                                                                     seconds=seconds)]
            results[name] = rows
            for target in ("valence", "arousal"):
                chosen = [r for r in rows if r["target"] == target]
                figures[f"{target} accuracy"] = 100 * _mean([r["accuracy"] for r in chosen])
                figures[f"{target} F1 (high)"] = 100 * _mean([r["f1"] for r in chosen])
            predictions = [_source_predictions(s, folder=folder, seconds=seconds)
                           for s in row["sources"]]
            if all(p is not None for p in predictions):
                accuracy, macro_f1 = quadrants.mean_fold_scores([p for ps in predictions
                                                                 for p in ps])
                figures["quadrant accuracy"] = 100 * accuracy
                figures["quadrant macro-F1"] = 100 * macro_f1
        elif "majority_of" in row:
            rows = results[row["majority_of"]]
            for target in ("valence", "arousal"):
                chosen = [r for r in rows if r["target"] == target]
                figures[f"{target} accuracy"] = 100 * _mean(
                    [r["majority_accuracy"] for r in chosen])
                figures[f"{target} F1 (high)"] = 100 * _mean([r["majority_f1"] for r in chosen])
        else:
            unknown = set(row.get("figures", {})) - set(COLUMNS)
            if unknown:
                raise ParameterError(f"figures must be among {COLUMNS}. Received: {unknown}")
            figures.update({k: float(v) for k, v in row.get("figures", {}).items()})
        out[name] = figures
    return out


def _shown(path: Path) -> str:
    """`path` relative to the repository that holds it (the folder with pyproject.toml),
    so the table reads the same whatever the working directory."""
    path = path.resolve()
    for root in path.parents:
        if (root / "pyproject.toml").is_file():
            return path.relative_to(root).as_posix()
    return path.as_posix()


def build_table(spec_path: Path = DEFAULT_SPEC, *, command: Optional[str] = None) -> str:
    """The Markdown table of the spec, and under it one line: the data, the rounds and
    the command that rebuilds the table."""
    spec_path = Path(spec_path)
    spec = json.loads(spec_path.read_text())
    figures = row_figures(spec, folder=spec_path.parent)
    lines = ["| 4Q, 5 s (%) | " + " | ".join(COLUMNS) + " |",
             "|---|" + "|".join("---" for _ in COLUMNS) + "|"]
    for name, values in figures.items():
        cells = ["–" if math.isnan(values[c]) else f"{values[c]:.2f}" for c in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    command = command or f"python -m mer_tfx.experiment.headline --write {DEFAULT_PAGE}"
    lines += ["", f"Data: {spec['data']}; {spec['rounds']}. Means over folds x rounds; F1 of "
              "the \"high\" class; quadrants from per-song predictions where a run has them "
              f"(`predictions.csv`), else –."
              + (f" Made by `{spec['experiment']}`." if spec.get("experiment") else "")
              + f" Sources: `{_shown(spec_path)}`. Rebuild: `{command}`."
              + (f" {spec['note']}" if spec.get("note") else "")]
    return "\n".join(lines)


def replace_between_markers(page: str, table: str) -> str:
    """`page` with the text between the two marker lines replaced by `table`."""
    if page.count(START) != 1 or page.count(END) != 1 or page.index(START) > page.index(END):
        raise ParameterError(f"The page must hold the lines {START!r} and {END!r} once each, "
                             "in that order.")
    head, rest = page.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def between_markers(page: str) -> str:
    """The text between the two marker lines of `page`."""
    return page.split(START, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mer_tfx.experiment.headline",
        description="The headline results table, from the CSVs a JSON spec lists.")
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC,
                        help=f"which CSVs make which row (default: {DEFAULT_SPEC})")
    parser.add_argument("--write", type=Path, default=None, metavar="PAGE",
                        help="replace the table between the headline-table markers of PAGE "
                             "(e.g. docs/results.md) instead of printing it")
    args = parser.parse_args(argv)
    table = build_table(args.spec)
    if args.write is None:
        print(table)
    else:
        args.write.write_text(replace_between_markers(args.write.read_text(), table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
