"""Genres: validation, normalisation through the alias table, and bulk resolution to ids.

Every source of tracks (sheet, files, playlists, CSV datasets) resolves genre names here, so
aliases apply everywhere. Query functions take a connection; the caller owns the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, insert, select

from music_classifier.db.tables import MAX_GENRE, genre_aliases, genres
from music_classifier.errors import InputError
from music_classifier.ingest.genre_index import NearKeyIndex
from music_classifier.ingest.keys import genre_key

if TYPE_CHECKING:
    from music_classifier.ingest.genre_merge import GenreMerge

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


@dataclass(frozen=True)
class AliasResult:
    """What ``genres alias FROM TO`` did."""

    alias_key: str  # FROM, normalised
    target: str  # TO's display name
    created: bool  # TO was a new genre (``new_genre``)
    merge: GenreMerge | None  # FROM was a genre of its own, merged into TO

    def describe(self, spelling: str) -> str:
        """One line: the alias, and what the merge moved."""
        line = (f"genre alias: {spelling!r} (key {self.alias_key!r}) -> {self.target!r}"
                + (" (new genre)" if self.created else ""))
        return line + (f"; {self.merge.describe()}" if self.merge is not None else "")


def add_alias(conn: Connection, alias: str, target: str, *, new_genre: bool = False) -> AliasResult:
    """Make ``alias`` a spelling of genre ``target``.

    ``target`` (a genre or a spelling of one) must exist, unless ``new_genre``: otherwise InputError,
    naming the existing genre it is probably a typo of (:func:`near_miss`), as ``sheet sync`` does.
    When ``alias`` is a genre of its own, it is merged into the target
    (:func:`~music_classifier.ingest.genre_merge.merge_genre`: tracks, aliases and dataset members
    move, dataset views are rebuilt, the model registry is left as it was) and then removed, so an
    alias added after a sync takes effect without a re-sync. A spelling not yet seen becomes an
    alias for future sources. Checks come before writes; the caller owns the transaction.
    """
    from sqlalchemy import update

    from music_classifier.ingest.genre_merge import merge_genre

    alias_key = genre_key(validate_genre_name(alias))
    target_name = validate_genre_name(target)
    target_id = load_alias_map(conn).get(genre_key(target_name))
    created = target_id is None
    if created and not new_genre:
        miss = near_miss(conn, target_name)
        hint = f" (did you mean {miss.existing!r}?)" if miss is not None else ""
        raise InputError(f"no genre {target_name!r}{hint}; use --new-genre to create it")
    if alias_key == genre_key(target_name) or (
            not created and alias_key == conn.execute(select(genres.c.name).where(genres.c.id == target_id))
            .scalar_one()):
        raise InputError(f"alias {alias!r} is the target genre itself")
    if created:
        target_id = resolve_genres(conn, [target_name]).ids[target_name]
    existing_genre = conn.execute(select(genres.c.id).where(genres.c.name == alias_key)).scalar()
    merge = None
    if existing_genre is not None and existing_genre != target_id:
        merge = merge_genre(conn, existing_genre, target_id)
    current = conn.execute(select(genre_aliases.c.id).where(genre_aliases.c.alias == alias_key)).scalar()
    if current is None:
        conn.execute(insert(genre_aliases).values(alias=alias_key, genre_id=target_id))
    else:
        conn.execute(update(genre_aliases).where(genre_aliases.c.id == current).values(genre_id=target_id))
    display = conn.execute(select(genres.c.display_name).where(genres.c.id == target_id)).scalar_one()
    return AliasResult(alias_key=alias_key, target=display, created=created, merge=merge)


# --------------------------------------------------------------------------- near-miss spellings

# Real genres that sit one edit away from another real genre (funk/punk, trap/rap, pop/bop, raï/rap):
# a new genre spelled exactly like one of these is taken as meant, never as a typo.
DISTINCT_GENRES = frozenset({
    "acid", "afro", "ambient", "bop", "blues", "dance", "disco", "drill", "dub", "emo", "folk", "funk", "garage",
    "grime", "grunge", "house", "indie", "jazz", "metal", "opera", "pop", "punk", "rai", "rap", "rave", "rock",
    "salsa", "samba", "ska", "soul", "swing", "tango", "trance", "trap", "trill", "trip",
})
_SHORT_KEY = 6  # keys shorter than this must share their first letter with the genre they are near


@dataclass(frozen=True)
class NearMiss:
    """A new genre spelling that is probably a typo of an existing genre (or of a commoner spelling)."""

    spelling: str  # as given, e.g. "Bleus"
    existing: str  # display name of the genre it is close to, e.g. "Blues"
    distance: int  # edits between the two normalised keys (a swap of neighbours counts as one)
    # ``existing`` is a commoner spelling of the same batch, not (yet) a stored genre: the alias must create it.
    existing_is_new: bool = False

    @property
    def fix_command(self) -> str:
        """The command that files this spelling under the existing genre (``--new-genre`` when it is not stored:
        ``genres alias`` refuses a target that does not exist)."""
        import shlex

        return (f"music-classifier genres alias {shlex.quote(self.spelling)} {shlex.quote(self.existing)}"
                + (" --new-genre" if self.existing_is_new else ""))

    def as_stored(self, conn: Connection) -> NearMiss:
        """This near miss with ``existing_is_new`` as the database has it now (a sync may have created it since)."""
        from dataclasses import replace

        return replace(self, existing_is_new=genre_key(self.existing) not in load_alias_map(conn))


def max_genre_edits(key: str) -> int:
    """How many edits apart a new genre key may be from a known one and still count as a typo."""
    return 1 if len(key) < 8 else 2


def _closest(key: str, index: NearKeyIndex, displays: list[str], *,
             usable: Callable[[int], bool] | None = None) -> tuple[str, int] | None:
    """The display name of the key nearest to ``key`` within :func:`max_genre_edits`, and the distance.

    ``index`` finds the keys within reach without a pass over all of them (a 60,000-genre sheet stays
    linear); ``usable`` filters candidates by index."""
    best: tuple[int, str] | None = None
    for position, distance in index.within(key, max_genre_edits(key)):
        other = index.keys[position]
        if other == key or (usable is not None and not usable(position)):
            continue
        if min(len(key), len(other)) < _SHORT_KEY and other[:1] != key[:1]:
            continue
        if best is None or (distance, displays[position]) < best:
            best = (distance, displays[position])
    return None if best is None else (best[1], best[0])


def near_misses(conn: Connection, spellings: Iterable[str] | dict[str, int]) -> dict[str, NearMiss]:
    """The new genre spellings among ``spellings`` that are probably typos, each with its fix.

    A spelling is a near miss when its normalised key (case, accents and separators folded) is not
    a known genre or alias, is not itself a well-known genre (:data:`DISTINCT_GENRES`), and is
    within :func:`max_genre_edits` edits (a swap of two neighbours is one edit: ``Bleus``/``Blues``)
    of a known genre or alias, sharing its first letter when short. Given counts (spelling ->
    rows or files), a new spelling is also a near miss of a commoner new spelling of this batch, or
    of a well-known one: a first sync with 12 ``Blues`` rows and one ``Bleus`` row reports ``Bleus``.
    Invalid names are skipped (their own validation reports them). Nothing is written.
    """
    counts = dict(spellings) if isinstance(spellings, dict) else dict.fromkeys(spellings, 1)
    known = load_alias_map(conn)
    displays = {gid: disp for gid, disp in conn.execute(select(genres.c.id, genres.c.display_name))}
    known_keys = list(known)
    known_displays = [displays[known[k]] for k in known_keys]
    key_of = {spelling: _safe_key(spelling) for spelling in counts}
    new: dict[str, tuple[str, int]] = {}  # key -> (first spelling, rows) of each new key
    for spelling, count in counts.items():
        key = key_of[spelling]
        if not key or key in known:
            continue
        first, total = new.get(key, (spelling, 0))
        new[key] = (first, total + count)
    new_keys = list(new)
    new_displays = [display_name(new[k][0]) for k in new_keys]
    new_counts = [new[k][1] for k in new_keys]
    known_index, new_index = NearKeyIndex(known_keys), NearKeyIndex(new_keys)
    found_for: dict[str, tuple[str, int, bool]] = {}
    for key, (_, count) in new.items():
        if key in DISTINCT_GENRES:
            continue
        # A well-known genre counts as the right spelling even when its typo is commoner in the batch.
        found = _closest(key, known_index, known_displays)
        if found is not None:
            found_for[key] = (*found, False)
            continue
        found = _closest(key, new_index, new_displays,
                         usable=lambda i, c=count: new_counts[i] > c or new_keys[i] in DISTINCT_GENRES)
        if found is not None:
            found_for[key] = (*found, True)
    return {spelling: NearMiss(spelling, *found_for[key]) for spelling, key in key_of.items() if key in found_for}


def near_miss(conn: Connection, spelling: str) -> NearMiss | None:
    """:func:`near_misses` for one spelling: the existing genre it is probably a typo of, or None."""
    return near_misses(conn, [spelling]).get(spelling)


def _safe_key(name: str) -> str:
    try:
        return genre_key(validate_genre_name(name))
    except InputError:
        return ""
