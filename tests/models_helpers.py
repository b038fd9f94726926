"""Test helpers for the models tests: tracks, genres, extractions and features inserted with Core.

Features are generated with a known separable structure: each genre has its own centre, far apart
compared with the noise, so a correct pipeline scores (near) perfectly and a broken one does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, insert, select

from music_classifier.db.feature_columns import GTZAN_V1, LIBROSA_V1, MUSICNN_V1, SPOTIFY_V1
from music_classifier.db.tables import extractions, genres, track_genres, tracks
from music_classifier.db.values import replace_values
from music_classifier.ingest.keys import normalise_artist, normalise_title
from music_classifier.models.same_audio import join_group_codes

COLUMNS = {"gtzan_csv": GTZAN_V1, "spotify": SPOTIFY_V1, "librosa": LIBROSA_V1, "musicnn": MUSICNN_V1}


def genre_id(conn: Connection, display: str) -> int:
    key = display.lower().replace("-", "").replace(" ", "")
    gid = conn.execute(select(genres.c.id).where(genres.c.name == key)).scalar()
    if gid is None:
        gid = conn.execute(insert(genres).values(name=key, display_name=display).returning(genres.c.id)).scalar_one()
    return int(gid)


def add_track(conn: Connection, *, key: str, genre: str | None, source: str = "csv", artist: str = "A",
              title: str | None = None, subgenre: str | None = None, playlist: str | None = None,
              track_id: int | None = None, removed: bool = False) -> int:
    values = {"source": source, "track_key": key, "artist": artist, "title": title or key, "song": key,
              "playlist_id": playlist}
    if track_id is not None:
        values["id"] = track_id
    if removed:
        from datetime import UTC, datetime
        values["removed_at"] = datetime.now(UTC)
    tid = int(conn.execute(insert(tracks).values(**values).returning(tracks.c.id)).scalar_one())
    if genre:
        conn.execute(insert(track_genres).values(track_id=tid, rank=0, genre_id=genre_id(conn, genre)))
    if subgenre:
        conn.execute(insert(track_genres).values(track_id=tid, rank=1, genre_id=genre_id(conn, subgenre)))
    return tid


def add_features(conn: Connection, track_id: int, extractor: str, values: dict[str, float],
                 status: str = "done") -> int:
    eid = int(conn.execute(insert(extractions).values(
        track_id=track_id, extractor=extractor, version="1", params_hash="p", status=status,
    ).returning(extractions.c.id)).scalar_one())
    replace_values(conn, extractor, eid, values, None)
    return eid


def add_segments(conn: Connection, track_id: int, segments: list[dict[str, float]], extractor: str = "librosa",
                 first_segment: int = 0) -> int:
    eid = int(conn.execute(insert(extractions).values(
        track_id=track_id, extractor=extractor, version="1", params_hash="seg", status="done",
    ).returning(extractions.c.id)).scalar_one())
    indices = range(first_segment, first_segment + len(segments))
    replace_values(conn, extractor, eid, {}, [(i, 3.0 * i, seg) for i, seg in zip(indices, segments, strict=True)])
    return eid


def separable_values(extractor: str, genre_index: int, rng: np.random.Generator) -> dict[str, float]:
    cols = COLUMNS[extractor]
    # Genre i sits at +6 on every feature j with j % 5 == i (features j % 5 == 4 carry only noise):
    # disjoint clusters, and a known set of informative features.
    centre = np.array([6.0 if j % 5 == genre_index % 5 else 0.0 for j in range(len(cols))])
    return {c: float(v) for c, v in zip(cols, centre + rng.normal(0, 1.0, len(cols)), strict=True)}


def fill_separable(conn: Connection, *, genres_: list[str], per_genre: int, extractor: str = "gtzan_csv",
                   source: str = "csv", seed: int = 0, prefix: str = "t", playlists: int = 0,
                   artists_per_genre: int = 0) -> dict[str, list[int]]:
    """``per_genre`` tracks per genre with separable features; returns genre -> track ids."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {}
    for gi, genre in enumerate(genres_):
        for j in range(per_genre):
            playlist = f"pl-{genre}-{j % playlists}" if playlists else None
            artist = f"artist-{genre}-{j % artists_per_genre}" if artists_per_genre else f"artist {prefix}{gi}-{j}"
            tid = add_track(conn, key=f"{prefix}-{genre}-{j}", genre=genre, source=source, artist=artist,
                            title=f"{genre} song {j}", playlist=playlist)
            add_features(conn, tid, extractor, separable_values(extractor, gi, rng))
            out.setdefault(genre, []).append(tid)
    return out


def fill_segments(conn: Connection, *, genres_: list[str], per_genre: int, n_segments: int = 4,
                  seed: int = 0) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {}
    for gi, genre in enumerate(genres_):
        for j in range(per_genre):
            tid = add_track(conn, key=f"seg-{genre}-{j}", genre=genre, source="file", title=f"{genre} clip {j}")
            add_segments(conn, tid, [separable_values("librosa", gi, rng) for _ in range(n_segments)])
            out.setdefault(genre, []).append(tid)
    return out


def evaluate_module():
    """benchmarks/evaluate.py as a module (the benchmarks folder is not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "evaluate.py"
    spec = importlib.util.spec_from_file_location("mc_benchmark_evaluate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def sqlite_cli(engine, models_dir, monkeypatch):
    """A runner of the CLI on ``engine``'s database: ``run(*args, code=0)`` asserts the exit code and returns
    the click Result; ``run.url`` is the database URL."""
    from typer.testing import CliRunner

    from music_classifier.cli import app

    monkeypatch.setenv("MUSIC_CLASSIFIER_MODELS_DIR", str(models_dir))
    url = engine.url.render_as_string(hide_password=False)

    def run(*args: str, code: int = 0):
        result = CliRunner().invoke(app, ["--db", url, *args])
        assert result.exit_code == code, result.output
        return result

    run.url = url
    return run


# Reference forms of the grouping, by value (the library works on integer codes): what the tests compare it with.

def song_keys(artists: Sequence[Any], titles: Sequence[Any]) -> list[str | None]:
    """:func:`song_key` of each (artist, title) pair; each distinct artist normalised once (a library has
    many tracks per artist: at 100,000 tracks the normalising is most of a dataset load's Python work)."""
    artist_keys: dict[Any, str] = {}
    out: list[str | None] = []
    for artist, title in zip(artists, titles, strict=True):
        a = artist_keys.get(artist)
        if a is None:
            a = artist_keys[artist] = normalise_artist(str(artist or ""))
        t = normalise_title(str(title or "")) if a else ""
        out.append(f"{a}\x1f{t}" if a and t else None)
    return out


def join_groups(groups: np.ndarray, links: Sequence[Sequence[Any]]) -> tuple[np.ndarray, int]:
    """:func:`join_group_codes` with link values of any hashable kind (None where a row has none)."""
    coded = []
    for values in links:
        column = np.empty(len(values), dtype=object)
        column[:] = list(values)
        coded.append(pd.factorize(column, use_na_sentinel=True)[0].astype(np.int64))
    return join_group_codes(groups, coded)
