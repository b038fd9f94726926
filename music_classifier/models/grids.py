"""Hyper-parameter grids, kept as data.

A grid maps parameter names of the classifier (without the Pipeline's ``clf__`` prefix) to the
values to try. ``--grid FILE`` reads the same shape from JSON: an object of name -> list (a scalar
means one value), or a list of such objects (alternatives, as GridSearchCV accepts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from music_classifier.errors import InputError

Grid = list[dict[str, list[Any]]]

# RandomForest first, as in the seed. Small grids: the machine is shared and nested CV multiplies them.
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "rf": {"n_estimators": [300], "max_features": ["sqrt", 0.3], "min_samples_leaf": [1, 3]},
    "logreg": {"C": [0.1, 1.0, 10.0]},
    "svm": {"estimator__C": [1.0, 10.0], "estimator__gamma": ["scale"]},  # SVC inside CalibratedClassifierCV
    "hgb": {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [31]},
    "knn": {"n_neighbors": [5, 15], "weights": ["distance"]},
}
MODEL_KINDS = tuple(DEFAULT_GRIDS)


def default_grid(kind: str) -> Grid:
    if kind not in DEFAULT_GRIDS:
        raise InputError(f"--model {kind!r}: choose one of {', '.join(MODEL_KINDS)}")
    return [{k: list(v) for k, v in DEFAULT_GRIDS[kind].items()}]


def _normalise(obj: Any, where: str) -> Grid:
    dicts = obj if isinstance(obj, list) else [obj]
    if not dicts or not all(isinstance(d, dict) and d for d in dicts):
        raise InputError(f"{where}: a grid is a JSON object of parameter -> list of values (or a list of them)")
    grid: Grid = []
    for d in dicts:
        entry = {}
        for key, values in d.items():
            values = values if isinstance(values, list) else [values]
            if not values:
                raise InputError(f"{where}: parameter {key!r} has no values")
            entry[str(key)] = values
        grid.append(entry)
    return grid


def load_grid_file(path: str | Path, kind: str | None = None) -> Grid:
    """Read a grid from JSON. A file may also map model kinds to grids ({"rf": {...}, "svm": {...}});
    then ``kind`` picks one."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--grid {path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--grid {path}: not valid JSON ({str(exc).splitlines()[0]})") from None
    if isinstance(obj, dict) and obj and set(obj) <= set(MODEL_KINDS):
        if kind not in obj:
            raise InputError(f"--grid {path}: no grid for model {kind!r} (the file has {', '.join(obj)})")
        obj = obj[kind]
    return _normalise(obj, f"--grid {path}")


def resolve_grid(grid: str | Path | None, kind: str) -> Grid:
    """``None``/``"default"`` -> the default grid of ``kind``; anything else is a JSON file path."""
    if grid is None or str(grid) == "default":
        return default_grid(kind)
    default_grid(kind)  # validates kind
    return load_grid_file(grid, kind)


def n_candidates(grid: Grid) -> int:
    total = 0
    for entry in grid:
        n = 1
        for values in entry.values():
            n *= len(values)
        total += n
    return total


def check_grid_params(grid: Grid, valid: set[str], where: str) -> None:
    """Refuse a parameter the classifier does not have, naming it (GridSearchCV's own error is a traceback)."""
    for entry in grid:
        bad = sorted(set(entry) - valid)
        if bad:
            raise InputError(f"{where}: unknown parameter(s) {', '.join(bad)}; "
                             f"the classifier accepts {', '.join(sorted(valid))}")


def pipeline_grid(grid: Grid) -> list[dict[str, list[Any]]]:
    """The grid in Pipeline terms (``clf__`` prefix)."""
    return [{f"clf__{k}": v for k, v in entry.items()} for entry in grid]
