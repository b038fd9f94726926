"""The interactive track map: t-SNE of a dataset's features, one point per track, as offline HTML.

Plotly draws it (plotly.js inlined: the page opens from a file with no network, and can be mailed).
One trace per genre, so a click on a legend entry hides that genre; hovering shows artist, title,
student, sheet genre, the out-of-fold predicted genre and its confidence. The only hand-written
JavaScript is the search box hook, which enlarges the points whose title contains the query.

Size: plotly.js is ~4.7 MB of the file; each track adds ~0.2 kB. Above :data:`MAX_MAP_TRACKS` tracks a
seeded random subsample is drawn and the page says so (see BENCHMARKS.md / EVALUATION.md for the
measured sizes).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection

from music_classifier.errors import InputError
from music_classifier.text_safety import escape_controls

MAX_MAP_TRACKS = 3000
MAP_HEIGHT_PX = 560


@dataclass
class MapData:
    """One row per track."""

    xy: np.ndarray  # (n, 2) t-SNE coordinates
    track_ids: np.ndarray
    artists: list[str]
    titles: list[str]
    students: list[str]
    genres: list[str]
    predicted: list[str]
    confidence: np.ndarray
    notes: list[str] = field(default_factory=list)
    prediction_source: str = ""


def track_matrix(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(track ids, X per track, genre, artist, title): segment rows averaged per track."""
    from music_classifier.models.train import track_labels

    uniq, inverse = np.unique(frame.track_ids, return_inverse=True)
    X = np.asarray(frame.X, dtype=float)
    if len(uniq) != len(frame.track_ids):
        sums = np.zeros((len(uniq), X.shape[1]))
        np.add.at(sums, inverse, np.nan_to_num(X))
        X = sums / np.bincount(inverse)[:, None]
    else:
        order = np.argsort(frame.track_ids)
        X = X[order]
    return (uniq, X, track_labels(frame.track_ids, frame.y, uniq), track_labels(frame.track_ids, frame.artists, uniq),
            track_labels(frame.track_ids, frame.titles, uniq))


def dataset_map_data(conn: Connection, dataset: str, *, seed: int = 0, kind: str = "rf",
                     track_ids: set[int] | None = None, max_tracks: int = MAX_MAP_TRACKS,
                     audit: Any = None) -> MapData:
    """Everything the map shows for ``dataset``: t-SNE coordinates, sheet facts, out-of-fold predictions.

    Predictions come from ``audit`` (an :class:`.audit.AuditResult`) or else the dataset's newest stored
    audit when it covers the tracks, else from a fresh out-of-fold run (one 5-fold pass of ``kind``) on
    the mapped tracks.
    """
    from music_classifier.models.audit import latest_audit, students_of
    from music_classifier.models.load_data import load_dataset
    from music_classifier.models.oof import out_of_fold
    from music_classifier.models.plots import tsne_embedding

    frame = load_dataset(conn, dataset)
    tids, X, y, artists, titles = track_matrix(frame)
    notes = []
    keep = np.ones(len(tids), dtype=bool)
    if track_ids is not None:
        keep &= np.isin(tids, sorted(track_ids))
    finite = np.isfinite(X).all(axis=1)
    if (keep & ~finite).any():
        notes.append(f"{int((keep & ~finite).sum())} track(s) with missing feature values left out")
    keep &= finite
    rows, note = subsample(np.flatnonzero(keep), max_tracks, seed)
    notes += [note] if note else []
    if len(rows) < 4:
        raise InputError(f"dataset {dataset!r}: {len(rows)} track(s) with features; a map needs at least 4")
    tids, X, y, artists, titles = tids[rows], X[rows], y[rows], artists[rows], titles[rows]

    stored = audit if audit is not None else latest_audit(conn, dataset)
    by_track = {r.track_id: r for r in stored.rows} if stored else {}
    if stored and all(int(t) in by_track for t in tids):
        predicted = [by_track[int(t)].heard_genre for t in tids]
        confidence = np.array([by_track[int(t)].heard_probability for t in tids])
        which = f"stored audit {stored.audit_id}" if stored.audit_id else "the report's audit"
        source = f"out-of-fold predictions of {which} ({stored.kind}, {stored.n_repeats} x {stored.n_splits}-fold)"
    else:
        sub = _subframe(frame, set(tids.tolist()))
        oof = out_of_fold(sub, kind=kind, n_repeats=1, seed=seed)
        pos = {int(t): i for i, t in enumerate(oof.track_ids)}
        predicted = [str(oof.predicted[pos[int(t)]]) for t in tids]
        confidence = np.array([float(oof.confidence[pos[int(t)]]) for t in tids])
        source = f"out-of-fold predictions ({kind}, one {oof.n_splits}-fold pass)"
    names = students_of(conn, tids.tolist())
    return MapData(xy=tsne_embedding(X, seed=seed), track_ids=tids, artists=[str(a) for a in artists],
                   titles=[str(t) for t in titles], students=[", ".join(names.get(int(t), [])) for t in tids],
                   genres=[str(g) for g in y], predicted=predicted, confidence=confidence, notes=notes,
                   prediction_source=source)


def subsample(rows: np.ndarray, limit: int, seed: int) -> tuple[np.ndarray, str]:
    """At most ``limit`` of ``rows`` (a seeded random draw, kept in order) and the note saying so."""
    if len(rows) <= limit:
        return rows, ""
    pick = np.sort(np.random.default_rng(seed).choice(rows, limit, replace=False))
    return pick, f"{limit} of {len(rows)} tracks drawn at random (seed {seed}) to keep the page small"


def _subframe(frame: Any, keep: set[int]) -> Any:
    from dataclasses import replace

    rows = np.isin(frame.track_ids, sorted(keep))
    return replace(frame, X=frame.X[rows], y=frame.y[rows], track_ids=frame.track_ids[rows],
                   groups=frame.groups[rows], artists=frame.artists[rows], titles=frame.titles[rows],
                   playlists=frame.playlists[rows],
                   segments=frame.segments[rows] if frame.segments is not None else None)


def _pseudo_html(value: str) -> str:
    # Plotly renders hover text as a small HTML subset (<b>, <br>, links): a title is text, never markup;
    # control characters (bidi overrides included) are shown escaped (text_safety).
    return html.escape(escape_controls(value), quote=False)


def map_figure(data: MapData, *, title: str) -> Any:
    """The Plotly figure: one trace per genre (palette colours and markers)."""
    import plotly.graph_objects as go

    from music_classifier.models.palette import genre_colours, genre_markers

    colours, markers = genre_colours(data.genres), genre_markers(data.genres, plotly=True)
    labels = np.asarray(data.genres)
    fig = go.Figure()
    for genre in colours:
        idx = np.flatnonzero(labels == genre)
        custom = [[_pseudo_html(data.artists[i]), _pseudo_html(data.titles[i]), _pseudo_html(data.students[i] or "—"),
                   _pseudo_html(genre), _pseudo_html(data.predicted[i]), round(float(data.confidence[i]), 3),
                   int(data.track_ids[i])] for i in idx]
        fig.add_trace(go.Scatter(
            x=np.round(data.xy[idx, 0], 3), y=np.round(data.xy[idx, 1], 3), mode="markers",
            name=_pseudo_html(f"{genre} ({len(idx)})"),
            marker={"color": colours[genre], "symbol": markers[genre], "size": 9, "opacity": 0.9,
                    "line": {"width": 0.5, "color": "white"}},
            customdata=custom, meta=[data.titles[i].casefold() for i in idx],
            hovertemplate=("<b>%{customdata[1]}</b><br>%{customdata[0]}<br>student: %{customdata[2]}<br>"
                           "sheet genre: %{customdata[3]}<br>heard: %{customdata[4]} (%{customdata[5]:.2f})"
                           "<br>track %{customdata[6]}<extra></extra>")))
    fig.update_layout(
        title={"text": _pseudo_html(title), "font": {"size": 15}}, template="simple_white", height=MAP_HEIGHT_PX,
        margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend={"title": {"text": "genre (click to hide)"},
                                                             "itemsizing": "constant", "font": {"size": 13}},
        xaxis={"visible": False}, yaxis={"visible": False}, hoverlabel={"font": {"size": 13}})
    return fig


SEARCH_HOOK = """<script>
(function () {
  var gd = document.getElementById(%(div)s), box = document.getElementById(%(box)s),
      found = document.getElementById(%(found)s);
  box.addEventListener("input", function () {
    var q = box.value.trim().toLowerCase(), n = 0;
    var sizes = gd.data.map(function (t) { return t.meta.map(function (title) {
      var hit = q && title.indexOf(q) >= 0; if (hit) { n++; } return hit ? 18 : 9; }); });
    var opac = gd.data.map(function (t) { return t.meta.map(function (title) {
      return !q || title.indexOf(q) >= 0 ? 0.95 : 0.2; }); });
    Plotly.restyle(gd, {"marker.size": sizes, "marker.opacity": opac});
    found.textContent = q ? n + " track(s) match" : "";
  });
})();
</script>"""


def map_html_fragment(data: MapData, *, title: str, div_id: str = "track-map", include_plotlyjs: bool = True) -> str:
    """A <div> with the search box, the notes and the figure (plotly.js inlined when asked)."""
    fig = map_figure(data, title=title)
    plot = fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs, div_id=div_id,
                       config={"displaylogo": False, "responsive": True,
                               "modeBarButtonsToRemove": ["select2d", "lasso2d"]})
    notes = [f"{len(data.track_ids)} tracks; t-SNE of standardised features; hover: {data.prediction_source}.",
             *data.notes]
    box, found = f"{div_id}-search", f"{div_id}-found"
    hook = SEARCH_HOOK % {"div": json.dumps(div_id), "box": json.dumps(box), "found": json.dumps(found)}
    return (f'<div class="track-map"><label>Search a title: <input id="{box}" type="search" '
            f'placeholder="title…" autocomplete="off"></label> <span id="{found}" class="note"></span>'
            f'<p class="note">{html.escape(" ".join(notes))}</p>{plot}{hook}</div>')


def write_map_html(data: MapData, out: Path, *, title: str) -> Path:
    """A whole standalone page (every script inlined)."""
    from music_classifier.models.report import _write_atomic

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out {out}: the file name must end in .html")
    if out.is_dir():
        raise InputError(f"--out {out}: is a directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            '<style>body{font:15px/1.45 system-ui,sans-serif;margin:16px 24px;color:#1d2330}'
            '.note{color:#5b6475;font-size:.9em}input{font-size:1em;padding:2px 6px}</style></head><body>'
            f"{map_html_fragment(data, title=title)}</body></html>")
    _write_atomic(out, page)
    return out


def plot_dataset_map(conn: Connection, dataset: str, *, out: Path, seed: int = 0, kind: str = "rf") -> Path:
    """`plot map`: the map of every track of ``dataset`` written to ``out``."""
    if Path(out).suffix.lower() not in (".html", ".htm"):
        raise InputError(f"--out {out}: the file name must end in .html")
    data = dataset_map_data(conn, dataset, seed=seed, kind=kind)
    return write_map_html(data, out, title=f"Tracks of dataset {dataset}")
