"""The model page's interactive map: the report's t-SNE track map (:mod:`music_classifier.models.track_map`)
as Plotly figure JSON, which the page's ``static/map.js`` draws and makes playable (a click plays the point's
track; ``customdata[6]`` of every point is its track id).

The map is of the tracks the model was built on (its recorded members, as in the report), with at most
:data:`~music_classifier.models.track_map.MAX_MAP_TRACKS` drawn (a seeded subsample, noted on the page).
t-SNE takes seconds to a minute (BENCHMARKS.md), so the page fetches the figure after it has shown, and
:class:`MapCache` computes each one once per :class:`MapKey` (the dataset, its newest stored audit, whose
out-of-fold predictions the hover text shows, and the model's members): a new audit or a re-created dataset
gives a new map; page views, concurrent first requests and models retrained on the same tracks share one.
The cache lives in the server's memory (nothing is written); re-extracted features are read at the next
server start.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from music_classifier.web.compressed import Asset, make_asset

#: Maps kept in memory per server (each is ~0.2 kB per track: 3,000 tracks ~ 0.6 MB, ~0.1 MB gzipped).
MAP_CACHE_ENTRIES = 8
MAP_SEED = 0
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


@dataclass(frozen=True)
class MapKey:
    """What a model's map depends on besides the feature values: its dataset (by name and current id, so a
    re-created dataset is another), the dataset's newest audit (the hover's predictions) and the model's
    members (a digest). Models retrained on the same dataset share one map."""

    dataset: str
    dataset_id: int | None
    audit_id: int | None
    members: str


def map_source(conn: Connection, model_id: int) -> tuple[MapKey, set[int] | None]:
    """The key of ``model_id``'s map and the member track ids it shows (None: every track of the dataset).
    InputError when the model does not exist."""
    from music_classifier.db.tables import datasets, label_audits
    from music_classifier.models.report import member_track_ids, model_row

    row = model_row(conn, model_id)
    name = row["dataset_name"]
    members = member_track_ids(row)
    dataset_id = conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()
    audit_id = conn.execute(select(func.max(label_audits.c.id)).where(label_audits.c.dataset_name == name)).scalar()
    digest = hashlib.sha256(",".join(map(str, sorted(members))).encode()).hexdigest() if members is not None else ""
    return MapKey(name, dataset_id, audit_id, digest), members


def dataset_map(conn: Connection, dataset: str, *, members: set[int] | None,
                seed: int = MAP_SEED) -> dict[str, Any]:
    """The map of ``dataset``'s tracks (only ``members`` when given: a model's recorded tracks):
    ``{"figure": {data, layout}, "config", "notes", "n_tracks"}``.

    The figure is :func:`~music_classifier.models.track_map.map_figure` of
    :func:`~music_classifier.models.track_map.dataset_map_data`; every text in it is escaped there (Plotly
    shows hover text as a small HTML subset). InputError (one line) when the dataset is gone or fewer than 4
    of the tracks have features.
    """
    from music_classifier.models.track_map import dataset_map_data, map_figure

    data = dataset_map_data(conn, dataset, seed=seed, track_ids=members)
    figure = json.loads(map_figure(data, title=f"Tracks of {dataset}").to_json())
    for trace in figure["data"]:
        # Plotly draws <b> as a style attribute, which the page's CSP (style-src 'self') refuses.
        trace["hovertemplate"] = trace["hovertemplate"].replace("<b>", "").replace("</b>", "")
    notes = [f"{len(data.track_ids)} tracks; t-SNE of standardised features; colour: the dataset's genre; "
             f"hover: {data.prediction_source}. Click a point to play its track.", *data.notes]
    return {"n_tracks": len(data.track_ids), "figure": figure, "config": PLOTLY_CONFIG, "notes": notes}


def _answer(payload: dict[str, Any], status: int = 200) -> Asset:
    """The JSON the route sends (also gzipped), or a one-line error as {"error": ...}."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return make_asset(body, "application/json", status=status)


class MapCache:
    """Maps by :func:`map_key`, least recently used dropped beyond ``entries``; one computation per key even
    when several requests ask at once (the others wait for it). Errors are kept too (a dataset too small for a
    map stays so until its key changes)."""

    def __init__(self, engine: Engine, *, entries: int = MAP_CACHE_ENTRIES, seed: int = MAP_SEED) -> None:
        self.engine = engine
        self.entries = entries
        self.seed = seed
        self._done: OrderedDict[MapKey, Asset] = OrderedDict()
        self._locks: dict[MapKey, threading.Lock] = {}
        self._guard = threading.Lock()
        self.computed = 0  # how many maps were computed (the tests count them)

    def get(self, model_id: int) -> Asset:
        """The model's map; InputError when the model does not exist (the route answers 404)."""
        with self.engine.connect() as conn:
            key, members = map_source(conn, model_id)
        with self._guard:
            if key in self._done:
                self._done.move_to_end(key)
                return self._done[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._done:
                    return self._done[key]
            answer = self._compute(key, members)
            with self._guard:
                self._done[key] = answer
                self._locks.pop(key, None)
                while len(self._done) > self.entries:
                    self._done.popitem(last=False)
            return answer

    def _compute(self, key: MapKey, members: set[int] | None) -> Asset:
        from music_classifier.errors import MusicClassifierError

        self.computed += 1
        try:
            with self.engine.connect() as conn:
                return _answer(dataset_map(conn, key.dataset, members=members, seed=self.seed))
        except MusicClassifierError as exc:
            return _answer({"error": f"No map: {exc}"}, status=409)
