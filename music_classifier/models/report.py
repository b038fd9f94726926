"""A self-contained HTML report of one registered model, and the database-aware `plot` helpers.

Every figure in the report is READ FROM THE STORED RUN (the ``models`` row): metrics, CV score,
best parameters, per-genre figures, confusion matrix, predictions, importances, versions. Nothing is
recomputed, so a report cannot disagree with ``models show``. The only things drawn from current
data need the feature values (the registry stores none): the interactive map, the label audit, the
per-student table and the nearest neighbours of mistakes (:mod:`.report_class`); they read the
dataset's view restricted to the members the model recorded, and say so.

The HTML goes through Jinja2 with autoescaping, so a track titled ``<script>`` is shown as text
(the map's data is JSON-escaped by Plotly). Images are embedded as base64 ``data:`` URIs (and also
written next to ``index.html``), plotly.js is inlined: the report is one file that can be mailed or
opened offline, with no external resource.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, inspect, select

from music_classifier.db.tables import dataset_members, genres
from music_classifier.errors import InputError
from music_classifier.models import plots
from music_classifier.text_safety import escape_controls

MAX_MISCLASSIFIED = 15
MAX_TSNE_ROWS = 2000  # t-SNE is quadratic-ish; a larger dataset is subsampled (deterministically)
TOP_IMPORTANCES = 20


# --- reading the stored run ---------------------------------------------------------------------

def _json(value: Any) -> Any:
    # JSON columns come back decoded from both databases; a string means a hand-written row.
    return json.loads(value) if isinstance(value, str) else value


def model_row(conn: Connection, model_id: int) -> dict[str, Any]:
    """The registry row of `model_id` as a dict with its JSON columns decoded."""
    from music_classifier.models.registry import get_model_row

    out = get_model_row(conn, model_id)
    for key in ("dataset_snapshot", "params", "best_params", "test_metrics", "feature_names",
                "feature_importances", "versions"):
        out[key] = _json(out[key])
    return out


def confusion_of(test_metrics: Mapping[str, Any]) -> tuple[list[list[int]], list[str]]:
    """(matrix, labels) of the stored confusion matrix: rows are true genres, columns predicted."""
    conf = test_metrics.get("confusion")
    if isinstance(conf, Mapping):
        return conf["matrix"], list(conf["labels"])
    if "confusion_matrix" in test_metrics:
        return test_metrics["confusion_matrix"], list(test_metrics["labels"])
    raise KeyError("confusion matrix")


def importances_of(row: Mapping[str, Any]) -> tuple[list[str], list[float], str] | None:
    """(names, values, method) of the stored importances, or None.

    Training stores ``{"method": "impurity"|"permutation", "names": [...], "values": [...]}``; a bare
    list of values (aligned with ``feature_names``) is accepted too.
    """
    imp = row.get("feature_importances")
    if not imp:
        return None
    if isinstance(imp, Mapping):
        return list(imp.get("names") or row["feature_names"]), list(imp["values"]), str(imp.get("method") or "")
    return list(row["feature_names"]), list(imp), ""


def importance_groups(row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The stored importances summed per feature set (extractor), largest first.

    A dataset over several sets names its features ``<set>_<feature>`` (``librosa_tempo``,
    ``musicnn_tag_jazz``); a single-set dataset's features all belong to that set. Negative
    (permutation) importances count as 0 in the sums. Each group: ``group``, ``features`` (how many),
    ``total``, ``share`` of the grand total, ``top`` (its largest feature).
    """
    from music_classifier.db.views import column_prefix, feature_sets, source_views

    imp = importances_of(row)
    if imp is None:
        return []
    names, values, _ = imp
    snapshot = row.get("dataset_snapshot") or {}
    definition = snapshot.get("definition") or {} if isinstance(snapshot, Mapping) else {}
    try:
        sets = feature_sets(definition.get("features", ""))
        views = source_views(definition["features"], bool(definition.get("segments")))
    except (ValueError, KeyError):
        sets, views = [], []
    prefixes = [(column_prefix(v, len(views)), s) for s, v in zip(sets, views, strict=True)]
    groups: dict[str, dict[str, Any]] = {}
    for name, value in zip(names, values, strict=True):
        group = next((s for p, s in prefixes if name.startswith(p)), "other") if prefixes else "all"
        g = groups.setdefault(group, {"group": group, "features": 0, "total": 0.0, "top": name, "_top": -1e300})
        g["features"] += 1
        g["total"] += max(float(value), 0.0)
        if float(value) > g["_top"]:
            g["top"], g["_top"] = name, float(value)
    grand = sum(g["total"] for g in groups.values())
    out = []
    for g in sorted(groups.values(), key=lambda g: (-g["total"], g["group"])):
        g.pop("_top")
        out.append({**g, "share": g["total"] / grand if grand > 0 else 0.0})
    return out


def genre_counts_of(conn: Connection, row: Mapping[str, Any]) -> dict[str, int]:
    """Tracks per genre the model was built on: from the snapshot, else the live membership."""
    snapshot = row.get("dataset_snapshot") or {}
    counts: dict[str, int] = {}
    members = snapshot.get("members") if isinstance(snapshot, Mapping) else None
    if members:
        for member in members:
            genre = member[1] if isinstance(member, Sequence) else member["genre"]
            counts[str(genre)] = counts.get(str(genre), 0) + 1
    elif row.get("dataset_id") is not None:
        stmt = (select(genres.c.display_name, dataset_members.c.track_id)
                .join(genres, genres.c.id == dataset_members.c.genre_id)
                .where(dataset_members.c.dataset_id == row["dataset_id"]))
        for genre, _ in conn.execute(stmt):
            counts[str(genre)] = counts.get(str(genre), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def member_track_ids(row: Mapping[str, Any]) -> set[int] | None:
    snapshot = row.get("dataset_snapshot") or {}
    members = snapshot.get("members") if isinstance(snapshot, Mapping) else None
    if not members:
        return None
    return {int(m[0] if isinstance(m, Sequence) else m["track_id"]) for m in members}


def misclassified(predictions: Sequence[Mapping[str, Any]], limit: int = MAX_MISCLASSIFIED) -> list[dict[str, Any]]:
    """The test predictions that were wrong, most confident first (ties by track id)."""
    wrong = [dict(p) for p in predictions if str(p.get("true")) != str(p.get("pred"))]
    wrong.sort(key=lambda p: (-float(p.get("confidence") or 0.0), p.get("track_id") or 0))
    return wrong[:limit]


def shown_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Training parameters for display: scalars as given; long lists (test track ids) summarised;
    the grid-search table is shown separately."""
    shown: dict[str, str] = {}
    for key, value in params.items():
        if key in ("cv_candidates", "estimate"):  # shown as their own table / the headline
            continue
        if isinstance(value, list) and len(value) > 12:
            shown[key] = f"{len(value)} values"
        else:
            shown[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return shown


def cv_candidates(params: Mapping[str, Any], limit: int = 20) -> list[dict[str, Any]]:
    """The grid search's candidates, best mean CV score first (as stored by training)."""
    rows = [c for c in params.get("cv_candidates") or [] if isinstance(c, Mapping) and "mean" in c]
    rows.sort(key=lambda c: -float(c["mean"]))
    return [{"params": ", ".join(f"{k}={_fmt_value(v)}" for k, v in sorted((c.get("params") or {}).items())),
             "mean": c["mean"], "std": c.get("std")} for c in rows[:limit]]


# --- the dataset's feature matrix (for t-SNE) ---------------------------------------------------

@dataclass
class TsneInput:
    X: Any
    y: list[str]
    note: str


def dataset_tsne_input(conn: Connection, dataset_name: str, *, feature_names: Sequence[str] | None = None,
                       track_ids: set[int] | None = None, seed: int = 0) -> TsneInput:
    """Rows of the dataset's view (optionally only `track_ids`, only `feature_names`), subsampled
    to MAX_TSNE_ROWS."""
    import numpy as np

    from music_classifier.models.load_data import load_dataset

    # Columns by name: the model's own feature list when given (never by position).
    frame = load_dataset(conn, dataset_name, feature_names=list(feature_names) if feature_names else None)
    X = np.asarray(frame.X, dtype=float)
    y = np.asarray([str(v) for v in frame.y])
    ids = np.asarray(frame.track_ids)
    notes = []
    if track_ids is not None:
        keep = np.isin(ids, sorted(track_ids))
        X, y, ids = X[keep], y[keep], ids[keep]
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        notes.append(f"{int((~finite).sum())} row(s) with missing values left out")
        X, y, ids = X[finite], y[finite], ids[finite]
    if len(y) > MAX_TSNE_ROWS:
        pick = np.sort(np.random.default_rng(seed).choice(len(y), MAX_TSNE_ROWS, replace=False))
        notes.append(f"{MAX_TSNE_ROWS} of {len(y)} rows drawn at random (seed {seed})")
        X, y = X[pick], y[pick]
    n_tracks = len(set(ids.tolist()))
    rows = f"{len(y)} rows from {n_tracks} tracks" if len(y) != n_tracks else f"{len(y)} tracks"
    return TsneInput(X=X, y=y.tolist(), note="; ".join([rows, *notes]))


# --- plot helpers the `plot` commands call ------------------------------------------------------

def plot_dataset_tsne(conn: Connection, dataset_name: str, *, out: Path, seed: int = 0) -> Path:
    """t-SNE map of every row of dataset `dataset_name`."""
    data = dataset_tsne_input(conn, dataset_name, seed=seed)
    return plots.plot_tsne(data.X, data.y, out=out, seed=seed, title=f"t-SNE map of dataset {dataset_name}")


def plot_model_confusion(conn: Connection, model_id: int, *, out: Path) -> Path:
    row = model_row(conn, model_id)
    try:
        matrix, labels = confusion_of(row.get("test_metrics") or {})
    except KeyError:
        raise InputError(f"model {model_id} stores no confusion matrix (no test metrics)") from None
    return plots.plot_confusion(matrix, labels, out=out,
                                title=f"Model {model_id} ({row['kind']}) on held-out tracks of {row['dataset_name']}")


def plot_model_importances(conn: Connection, model_id: int, *, out: Path, top: int = TOP_IMPORTANCES) -> Path:
    row = model_row(conn, model_id)
    imp = importances_of(row)
    if imp is None:
        raise InputError(f"model {model_id} ({row['kind']}) stores no feature importances")
    names, values, method = imp
    return plots.plot_importances(names, values, out=out, top=top,
                                  title=f"Model {model_id} ({row['kind']}) {method} importances".replace("  ", " "))


# --- the report ----------------------------------------------------------------------------------

def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    # default=True: escape even if a template is ever loaded under a name not ending in .html.
    # finalize: autoescape covers <, & and quotes, not control characters or bidi overrides; every
    # plain-text value printed is also passed through text_safety (Markup, e.g. the map, is ours).
    return Environment(loader=PackageLoader("music_classifier.models", "templates"),
                       autoescape=select_autoescape(["html"], default=True, default_for_string=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=_finalize)


def _finalize(value: Any) -> Any:
    from markupsafe import Markup

    return escape_controls(value) if isinstance(value, str) and not isinstance(value, Markup) else value


def _write_atomic(path: Path, text: str) -> None:
    """Write then rename: a reader never sees a half-written page, an old report stays until replaced.
    (A plain open() rather than mkstemp, so the file gets the user's umask, not 0600.)"""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _view_exists(conn: Connection, dataset_name: str) -> bool:
    from music_classifier.db.views import dataset_view_name

    return dataset_view_name(dataset_name) in inspect(conn).get_view_names()


def _figure(out_dir: Path, name: str, draw) -> dict[str, str]:  # noqa: ANN001 - a callable(out) -> Path
    path = draw(out_dir / name)
    return {"file": path.name, "uri": _data_uri(path)}


def per_genre_absent_note(row: Mapping[str, Any]) -> str:
    """Why a report has no per-genre test table (instead of an empty one)."""
    params = row.get("params") or {}
    if params.get("model_basis") == "final":
        return ("No per-genre test scores: a final model is fitted on every track of the dataset, so no track is "
                "left to test it on. Its accuracy is the cross-validated estimate above (per-genre scores are "
                "not kept from the CV folds); for per-genre figures, train a held-out-split model (without "
                "--final).")
    return "No per-genre test scores are stored with this model."


def report_context(conn: Connection, row: dict[str, Any], *, out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Everything the template shows for the registry `row` (see :func:`model_row`); draws the PNGs into
    `out_dir`."""
    tm = row.get("test_metrics") or {}
    counts = genre_counts_of(conn, row)
    figures: dict[str, dict[str, str]] = {}
    notes: dict[str, str] = {}

    if counts:
        figures["genre_counts"] = _figure(out_dir, "genre_counts.png", lambda p: plots.plot_genre_counts(
            counts, out=p, title=f"Tracks per genre in {row['dataset_name']}"))
    try:
        matrix, labels = confusion_of(tm)
    except KeyError:
        matrix, labels = None, []
        notes["confusion"] = "This run stores no confusion matrix."
    if matrix is not None:
        figures["confusion"] = _figure(out_dir, "confusion.png",
                                       lambda p: plots.plot_confusion(matrix, labels, out=p))

    from music_classifier.models.report_class import class_view

    mistakes = misclassified(tm.get("predictions") or [])
    available = row.get("dataset_id") is not None and _view_exists(conn, row["dataset_name"])
    class_context = class_view(conn, row, members=member_track_ids(row), available=available,
                               misclassified=mistakes, seed=seed)

    imp = importances_of(row)
    if imp is not None:
        names, values, method = imp
        figures["importances"] = _figure(out_dir, "importances.png", lambda p: plots.plot_importances(
            names, values, out=p, top=TOP_IMPORTANCES,
            title=f"Feature importances, {method}" if method else "Feature importances"))
        groups = importance_groups(row)
        if len(groups) > 1:
            figures["importance_groups"] = _figure(out_dir, "importance_groups.png", lambda p: plots.plot_importances(
                [g["group"] for g in groups], [g["total"] for g in groups], out=p, top=len(groups),
                title="Importance summed per feature set"))
        notes["importances"] = {"impurity": "Impurity (mean decrease in Gini) importances of the fitted forest.",
                                "permutation": "Permutation importances: mean drop in held-out accuracy when a "
                                               "feature is shuffled."}.get(method, "")
    else:
        notes["importances"] = f"This {row['kind']} model stores no feature importances."

    _add_top_tags(conn, mistakes)
    per_genre = tm.get("per_genre") or {}
    genre_order = [g for g in labels if g in per_genre] + [g for g in per_genre if g not in labels]
    if not per_genre:
        notes["per_genre"] = per_genre_absent_note(row)
    snapshot = row.get("dataset_snapshot") or {}
    return {
        "model": row,
        "definition": snapshot.get("definition", {}) if isinstance(snapshot, Mapping) else {},
        "metrics": {k: tm.get(k) for k in ("accuracy", "balanced_accuracy", "macro_f1", "n")},
        "estimate": (row.get("params") or {}).get("estimate"),
        "basis": (row.get("params") or {}).get("model_basis", "held-out split"),
        "per_genre": [{"genre": g, **per_genre[g]} for g in genre_order],
        "genre_counts": counts,
        "n_members": sum(counts.values()),
        "best_params": row.get("best_params") or {},
        "params": shown_params(row.get("params") or {}),
        "cv_candidates": cv_candidates(row.get("params") or {}),
        "level": tm.get("level"),
        "versions": row.get("versions") or {},
        "importance_groups": importance_groups(row),
        "misclassified": mistakes,
        "has_tags": any(p.get("tags") for p in mistakes),
        "n_predictions": len(tm.get("predictions") or []),
        "figures": figures,
        "notes": notes,
        **class_context,
    }


def _add_top_tags(conn: Connection, mistakes: list[dict[str, Any]], k: int = 3) -> None:
    """Each mistake's top MSD tags from its stored musicnn taggram (what the network hears), when stored."""
    from music_classifier.db.tags import stored_top_tags

    ids = [int(p["track_id"]) for p in mistakes if p.get("track_id") is not None]
    tags = stored_top_tags(conn, ids, k=k) if ids else {}
    for p in mistakes:
        p["tags"] = tags.get(int(p["track_id"])) if p.get("track_id") is not None else None


def build_report(conn: Connection, model_id: int, *, out_dir: Path, settings: Any = None, seed: int = 0) -> Path:
    """Write ``out_dir/index.html`` (self-contained) and the PNGs next to it; return the HTML path.

    `settings` is accepted for symmetry with the other model functions; the report needs only the
    stored run and the dataset view.
    """
    out_dir = Path(out_dir)
    row = model_row(conn, model_id)  # an unknown model creates no folder
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out {out_dir}: exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    context = report_context(conn, row, out_dir=out_dir, seed=seed)
    html = _environment().get_template("report.html").render(**context, fmt=_fmt, fmt_value=_fmt_value)
    index = out_dir / "index.html"
    _write_atomic(index, html)
    return index


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{float(value):.{digits}f}"


def _fmt_value(value: Any) -> str:
    """A parameter value as the user would write it (JSON for lists/dicts/None)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)
