"""Genres: validation, normalisation through the alias table, and bulk resolution to ids.

Every source of tracks (sheet, files, playlists, CSV datasets) resolves genre names here, so
aliases apply everywhere. Query functions take a connection; the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from music_classifier.db.tables import MAX_GENRE, genre_aliases, genres
from music_classifier.errors import InputError
from music_classifier.ingest.keys import genre_key

_ALLOWED = re.compile(r"^[0-9A-Za-z\u00C0-\u024F &'\-_/.+]+$")


def validate_genre_name(name: str) -> str:
    """Return the stripped name, or raise InputError saying what is wrong with it."""
    stripped = " ".join(name.split())
    if not stripped:
        raise InputError("blank genre")
    if len(stripped) > MAX_GENRE:
        raise InputError(f"genre {stripped[:20]!r}… is longer than {MAX_GENRE} characters")
    if not _ALLOWED.match(stripped):
        raise InputError(f"genre {stripped!r} has characters outside letters, digits, space and &'-_/.+")
    if not genre_key(stripped):
        raise InputError(f"genre {stripped!r} has no letters or digits")
    return stripped


def display_name(name: str) -> str:
    """A readable display name for a new genre: "hip_hop" -> "Hip Hop", "R&B" stays."""
    cleaned = " ".join(name.replace("_", " ").split())
    return cleaned if any(c.isupper() for c in cleaned) else cleaned.title()


@dataclass(frozen=True)
class GenreResolution:
    ids: dict[str, int]  # input spelling -> genre id
    applied: dict[str, str]  # input spelling -> display name, where an alias or normalisation changed it
    created: list[str]  # display names of genres created by this call


def load_alias_map(conn: Connection) -> dict[str, int]:
    """Normalised spelling -> genre id, for genre names and aliases alike."""
    mapping = {name: gid for gid, name in conn.execute(select(genres.c.id, genres.c.name))}
    mapping.update({alias: gid for alias, gid in conn.execute(select(genre_aliases.c.alias, genre_aliases.c.genre_id))})
    return mapping


def resolve_genres(conn: Connection, names: Iterable[str], *, create: bool = True) -> GenreResolution:
    """Map genre spellings to genre ids, applying aliases; create unknown genres when ``create``."""
    mapping = load_alias_map(conn)
    displays = {gid: disp for gid, disp in conn.execute(select(genres.c.id, genres.c.display_name))}
    ids: dict[str, int] = {}
    applied: dict[str, str] = {}
    created: list[str] = []
    for raw in dict.fromkeys(names):
        name = validate_genre_name(raw)
        key = genre_key(name)
        gid = mapping.get(key)
        if gid is None:
            if not create:
                raise InputError(f"unknown genre {name!r}")
            disp = display_name(name)
            gid = conn.execute(insert(genres).values(name=key, display_name=disp).returning(genres.c.id)).scalar_one()
            mapping[key] = gid
            displays[gid] = disp
            created.append(disp)
        ids[raw] = gid
        if displays[gid] != raw:
            applied[raw] = displays[gid]
    return GenreResolution(ids=ids, applied=applied, created=created)


def add_alias(conn: Connection, alias: str, target: str) -> tuple[str, str]:
    """Make ``alias`` a spelling of ``target`` (created if new). Returns (alias key, target display name).

    Tracks already filed under the alias's own genre are moved to the target, and that genre,
    now empty, is removed, so an alias added after a sync takes effect without a re-sync.
    """
    from sqlalchemy import delete, update

    from music_classifier.db.tables import track_genres

    alias_key = genre_key(validate_genre_name(alias))
    target_res = resolve_genres(conn, [target])
    target_id = target_res.ids[target]
    if alias_key == conn.execute(select(genres.c.name).where(genres.c.id == target_id)).scalar_one():
        raise InputError(f"alias {alias!r} is the target genre itself")
    existing_genre = conn.execute(select(genres.c.id).where(genres.c.name == alias_key)).scalar()
    if existing_genre is not None and existing_genre != target_id:
        conn.execute(update(track_genres).where(track_genres.c.genre_id == existing_genre).values(genre_id=target_id))
        conn.execute(update(genre_aliases).where(genre_aliases.c.genre_id == existing_genre)
                     .values(genre_id=target_id))
        conn.execute(delete(genres).where(genres.c.id == existing_genre))
    current = conn.execute(select(genre_aliases.c.id).where(genre_aliases.c.alias == alias_key)).scalar()
    if current is None:
        conn.execute(insert(genre_aliases).values(alias=alias_key, genre_id=target_id))
    else:
        conn.execute(update(genre_aliases).where(genre_aliases.c.id == current).values(genre_id=target_id))
    display = conn.execute(select(genres.c.display_name).where(genres.c.id == target_id)).scalar_one()
    return alias_key, display
