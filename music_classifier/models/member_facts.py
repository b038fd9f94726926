"""A dataset's members as integer codes: one query of numbers, the text only once per distinct value.

A dataset load needs, per member track, its genre, artist, title and playlist (for the frame) and its audio
and song identity (tracks with the same audio or song never straddle a split). Read as Python strings per
row, those facts cost more memory than a narrow dataset's float64 array (~80 MB at 100,000 tracks against
the librosa set's 63 MB) and ~1.8 s of per-row Python. Here one query returns numbers only (read by the
float reader of :mod:`music_classifier.db.matrix_read`, a binary COPY on PostgreSQL): the track id, the
newest ``done`` extraction per feature set, the genre id, whether the track is grouped by song, and for
artist, playlist and audio (sha256) the smallest member track id sharing the value (a code: equal value,
equal code; grouped by the database's hash aggregate, where a window over the text would sort it). Texts are
then read once per distinct artist and playlist, and the titles once per track; the frame's per-row string
arrays point at shared string objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Connection, text

from music_classifier.db.matrix_read import read_float_matrix
from music_classifier.db.tables import FEATURE_ONLY_SOURCES


@dataclass
class MemberFacts:
    """One entry per live member track (with a newest ``done`` extraction of every set asked for),
    track ids ascending."""

    track_ids: np.ndarray  # int64
    extraction_ids: np.ndarray  # int64, (n, sets): the newest done extraction of each feature set asked for
    genre_ids: np.ndarray  # int64
    by_song: np.ndarray  # bool: grouped by song too (not a table imported with its features)
    artist_codes: np.ndarray  # int64: the smallest member track id with the same artist
    playlist_codes: np.ndarray  # int64: likewise for the playlist id; -1 where none
    sha_codes: np.ndarray  # int64: likewise for the audio's sha256; -1 where none


def literal(value: str) -> str:
    """A SQL string literal of a name from the project's frozen lists (refuses anything but [A-Za-z0-9_])."""
    if not value.replace("_", "").isalnum() or not value.isascii():
        raise ValueError(f"invalid name {value!r}")
    return f"'{value}'"


def id_list(conn: Connection, column: str, ids: Sequence[int] | np.ndarray) -> str:
    """``column`` among the integers ``ids``, rendered into SQL (integers only): one array literal on
    PostgreSQL (a 100,000-term IN list costs the parser more), an IN list on SQLite."""
    values = ",".join(str(int(i)) for i in np.asarray(ids, dtype=np.int64).tolist())
    if not values:
        return "1 = 0"
    if conn.dialect.name == "postgresql":
        return f"{column} = ANY(CAST('{{{values}}}' AS integer[]))"
    return f"{column} IN ({values})"


def newest_sql(extractor: str, members: str) -> str:
    """The newest ``done`` extraction of ``extractor`` per track (what the feature views join), for the tracks
    ``members`` (a SQL condition on ``e.track_id``)."""
    return (f"SELECT e.track_id AS track_id, MAX(e.id) AS extraction_id FROM extractions e "
            f"WHERE e.extractor = {literal(extractor)} AND e.status = 'done' AND {members} GROUP BY e.track_id")


def _code_join(alias: str, column: str, dataset_id: int, *, outer: bool) -> str:
    """A join giving ``{alias}.code``: the smallest member track id with the same non-empty ``column`` value
    of ``tracks`` (hashed by the database: no sort of the text)."""
    non_empty = f" AND t2.{column} <> ''" if outer else ""
    return (f"{'LEFT ' if outer else ''}JOIN (SELECT t2.{column} AS v, MIN(t2.id) AS code FROM dataset_members m2 "
            f"JOIN tracks t2 ON t2.id = m2.track_id WHERE m2.dataset_id = {dataset_id}{non_empty} "
            f"GROUP BY t2.{column}) {alias} ON {alias}.v = t.{column}")


def read_member_facts(conn: Connection, dataset_id: int, extractors: Sequence[str], *,
                      expected_rows: int | None = None) -> MemberFacts:
    """The live members of dataset ``dataset_id`` that have a newest ``done`` extraction of every one of
    ``extractors`` (all live members when none are given), as numbers: one query. ``expected_rows``: the
    member count when known (the rows then go straight into one array)."""
    dataset_id = int(dataset_id)
    members = f"e.track_id IN (SELECT track_id FROM dataset_members WHERE dataset_id = {dataset_id})"
    joins = " ".join(f"JOIN ({newest_sql(x, members)}) n{i} ON n{i}.track_id = m.track_id"
                     for i, x in enumerate(extractors))
    newest = "".join(f", n{i}.extraction_id AS e{i}" for i in range(len(extractors)))
    feature_only = ", ".join(literal(s) for s in FEATURE_ONLY_SOURCES)
    codes = " ".join([_code_join("a", "artist", dataset_id, outer=False),
                      _code_join("p", "playlist_id", dataset_id, outer=True),
                      _code_join("s", "file_sha256", dataset_id, outer=True)])
    source = (f"(SELECT m.track_id AS track_id{newest}, m.genre_id AS genre_id, "
              f"CASE WHEN t.source IN ({feature_only}) THEN 0 ELSE 1 END AS by_song, a.code AS artist_code, "
              f"COALESCE(p.code, -1) AS playlist_code, COALESCE(s.code, -1) AS sha_code "
              f"FROM dataset_members m JOIN tracks t ON t.id = m.track_id {joins} {codes} "
              f"WHERE m.dataset_id = {dataset_id} AND t.removed_at IS NULL) AS k")
    names = ["track_id", *(f"e{i}" for i in range(len(extractors))), "genre_id", "by_song", "artist_code",
             "playlist_code", "sha_code"]
    # Ids are exact in float64 below 2**53; the float reader turns the rows into one array in C.
    values = read_float_matrix(conn, source, names, order_by=["track_id"], expected_rows=expected_rows)
    k = len(extractors)

    def column(j: int | slice) -> np.ndarray:  # each a compact int64 copy: the float rows are dropped at once
        return np.ascontiguousarray(values[:, j], dtype=np.int64)

    return MemberFacts(track_ids=column(0), extraction_ids=column(slice(1, 1 + k)), genre_ids=column(1 + k),
                       by_song=values[:, 2 + k] != 0, artist_codes=column(3 + k), playlist_codes=column(4 + k),
                       sha_codes=column(5 + k))


def shared_strings(codes: np.ndarray, texts: dict[int, str]) -> np.ndarray:
    """Object array with ``texts[code]`` per entry; entries of one code share one string object."""
    uniq, inverse = np.unique(codes, return_inverse=True)
    return np.array([texts.get(int(u)) for u in uniq.tolist()], dtype=object)[inverse.ravel()]


def read_texts(conn: Connection, facts: MemberFacts) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """({genre id: display name}, {artist code: artist}, {playlist code: playlist id}): one row per
    distinct value (the code is a member track's id)."""
    genres = {int(i): str(n) for i, n in conn.execute(text("SELECT id, display_name FROM genres")).all()}
    artist_ids = np.unique(facts.artist_codes)
    playlist_ids = np.unique(facts.playlist_codes[facts.playlist_codes >= 0])
    artists: dict[int, str] = {}
    playlists: dict[int, str] = {}
    wanted = np.union1d(artist_ids, playlist_ids)
    for start in range(0, len(wanted), 50_000):
        part = wanted[start:start + 50_000]
        for tid, artist, playlist in conn.execute(text(
                f"SELECT id, artist, playlist_id FROM tracks WHERE {id_list(conn, 'id', part)}")).all():
            artists[int(tid)] = artist
            if playlist:
                playlists[int(tid)] = playlist
    return genres, artists, playlists


def read_titles(conn: Connection, dataset_id: int, track_ids: np.ndarray) -> np.ndarray:
    """Object array of the titles of ``track_ids`` (member ids, ascending), fetched in batches so that
    only one batch of rows is held besides the titles themselves."""
    titles = np.full(len(track_ids), None, dtype=object)
    dbapi = conn.connection.dbapi_connection
    # PostgreSQL: a server-side cursor (inside the connection's transaction), so the client holds one batch
    # of rows, not the whole result.
    named = conn.dialect.name == "postgresql" and not getattr(dbapi, "autocommit", True)
    cursor = dbapi.cursor("music_classifier_titles") if named else dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("SELECT m.track_id, t.title FROM dataset_members m JOIN tracks t ON t.id = m.track_id "
                       f"WHERE m.dataset_id = {int(dataset_id)} AND t.removed_at IS NULL ORDER BY m.track_id")
        while batch := cursor.fetchmany(5_000):
            ids, values = zip(*batch, strict=True)
            at = np.searchsorted(track_ids, np.array(ids, dtype=np.int64))
            at = np.minimum(at, max(len(track_ids) - 1, 0))
            found = track_ids[at] == np.array(ids, dtype=np.int64) if len(track_ids) else np.zeros(len(ids), bool)
            titles[at[found]] = np.array(values + (None,), dtype=object)[:-1][found]
    finally:
        cursor.close()
    return titles
