"""Stored MSD tags: each track's musicnn taggram (mean tag probabilities) read back from ``musicnn_features``."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, bindparam, inspect, text

from music_classifier.db.feature_columns import MSD_TAG_COLUMNS_V1

TAGS_VIEW = "musicnn_features"


def tag_display_names() -> dict[str, str]:
    """Column -> the tag as the network names it (``tag_hip_hop`` -> ``Hip-Hop``)."""
    from music_classifier.features.musicnn.names import MUSICNN_TAGS, TAG_FEATURES

    return dict(zip(TAG_FEATURES, MUSICNN_TAGS, strict=True))


def stored_taggrams(conn: Connection, track_ids: list[int]) -> dict[int, dict[str, float]]:
    """``{track id: {tag: probability}}`` for the tracks that have a stored musicnn extraction (the
    newest, as the view keeps it); tracks without one are absent. Empty before the view exists."""
    if not track_ids or TAGS_VIEW not in inspect(conn).get_view_names():
        return {}
    columns = ", ".join(f'"{c}"' for c in MSD_TAG_COLUMNS_V1)
    stmt = text(f'SELECT track_id, {columns} FROM "{TAGS_VIEW}" WHERE track_id IN :ids').bindparams(
        bindparam("ids", expanding=True))
    rows = [row for start in range(0, len(track_ids), 5000)  # bounded IN lists
            for row in conn.execute(stmt, {"ids": [int(t) for t in track_ids[start:start + 5000]]}).mappings()]
    names = tag_display_names() if rows else {}
    return {int(row["track_id"]): {names[c]: float(row[c]) for c in MSD_TAG_COLUMNS_V1 if row[c] is not None}
            for row in rows}


def top_of(taggram: dict[str, float], k: int) -> list[tuple[str, float]]:
    """The ``k`` most likely tags, ties by name."""
    return sorted(taggram.items(), key=lambda kv: (-kv[1], kv[0]))[:k]


def stored_top_tags(conn: Connection, track_ids: list[int], *, k: int = 10) -> dict[int, list[tuple[str, float]]]:
    """``{track id: [(tag, probability), ...]}``, the ``k`` most likely tags of each stored taggram."""
    return {t: top_of(g, k) for t, g in stored_taggrams(conn, track_ids).items()}


class TrackTags(NamedTuple):
    track_id: int
    artist: str
    title: str
    extraction_id: int
    tags: list[tuple[str, float]]  # (tag, probability), most likely first


def track_top_tags(conn: Connection, track_id: int, *, k: int = 10) -> TrackTags:
    """The ``k`` most likely tags of a track's stored musicnn taggram (its newest musicnn extraction).

    InputError when the track does not exist or has no finished musicnn extraction.
    """
    from music_classifier.errors import InputError

    check_k(k)
    track = conn.execute(text("SELECT artist, title FROM tracks WHERE id = :t AND removed_at IS NULL"),
                         {"t": int(track_id)}).first()
    if track is None:
        raise InputError(f"track {track_id} not found (list them: music-classifier sql \"SELECT id, artist, title "
                         "FROM tracks\")")
    taggram = stored_taggrams(conn, [int(track_id)]).get(int(track_id))
    if not taggram:
        raise InputError(f"track {track_id} has no stored musicnn tags: run `music-classifier features compute "
                         "--extractor musicnn` first (the track needs an audio file)")
    eid = conn.execute(text(f'SELECT extraction_id FROM "{TAGS_VIEW}" WHERE track_id = :t'), {"t": int(track_id)})
    return TrackTags(int(track_id), str(track.artist), str(track.title), int(eid.scalar_one()), top_of(taggram, k))


def check_k(k: int) -> None:
    from music_classifier.errors import InputError

    if not 1 <= int(k) <= len(MSD_TAG_COLUMNS_V1):
        raise InputError(f"--k {k}: must be from 1 to {len(MSD_TAG_COLUMNS_V1)}")
