"""Refreshing a dataset's members to the tracks' effective genres (label decisions taken since creation).

``dataset create`` fixes each member's genre (``dataset_members.genre_id``) from ``track_effective_genres``
at that moment, and the dataset view, ``train`` and a model's data snapshot read that stored genre. A
decision taken afterwards (``labels set``/``undo``, the page) therefore reaches training only through a
refresh, which compares every member's stored genre with its effective genre now:

* **moved**: the effective genre is another of the dataset's genres -> the member takes it;
* **left**: the effective genre is not one of the dataset's genres -> the member leaves the dataset (a
  dataset's genres are its model's classes; a refresh never adds one);
* **unchanged**: the same genre, or no effective genre to compare with (a removed track, which the
  dataset's view already leaves out and ``dataset show`` counts as lost).

The definition recorded at creation (``datasets.definition``: top, min/max per genre, sources, seed) still
holds. The genres ``--top`` chose stay the dataset's genres (they are not ranked again: a relabelled track
can make another genre bigger, but the model's classes do not change under it). A genre that a move takes
above ``--max-per-genre`` is capped again in ``dataset create``'s sample order (the seed's hash order, as
``genres merge`` caps a joined genre), the members beyond the cap leaving. A refresh that would shrink a
genre below ``--min-per-genre`` (a genre emptied included, so the set of genres never changes and a dataset
is never left with one) is refused with one line naming the dataset, and nothing is written. A refresh
never adds a track: a track relabelled into one of the dataset's genres from outside it joins when the
dataset is created again.

Every function takes a connection; the caller owns the transaction. :func:`refresh_dataset` writes with
compare-and-set statements (each member row must still hold the genre the plan read) after locking the
dataset's row on PostgreSQL (SQLite serialises writers), so a concurrent change makes it fail with one
line and the caller's transaction rolls back: nothing half-written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, replace

from sqlalchemy import Connection, Engine, bindparam, delete, func, select, text, update

from music_classifier.db.tables import dataset_members, datasets, genres
from music_classifier.errors import InputError
from music_classifier.models.datasets import HASH_MODULUS, HASH_MULTIPLIER, seed_offset, validate_name


class DatasetChanged(InputError):
    """A member row no longer held the genre the refresh read: another writer changed the dataset."""


@dataclass(frozen=True)
class MemberChange:
    """One member a refresh moves to another genre or takes out of the dataset."""

    track_id: int
    song: str  # "artist - title"
    genre_before: str  # the member's stored genre
    genre_after: str | None  # None: the member leaves the dataset
    effective_genre: str  # the track's effective genre now
    decision_id: int | None  # the standing decision behind the effective genre (None: the sheet's genre)
    why: str = ""  # for a member that leaves: why
    # Genre ids (display names need not be unique): what the member row holds now, and will hold.
    genre_before_id: int = 0
    genre_after_id: int | None = None

    def text(self) -> str:
        by = f"decision {self.decision_id}" if self.decision_id is not None else "the sheet's genre"
        why = f", {self.why}" if self.why else ""
        return f"track {self.track_id} ({self.song}): {self.genre_before} -> {self.effective_genre}{why} ({by})"


@dataclass
class DatasetRefresh:
    """What refreshing a dataset changes (``applied``: written, else a plan or a dry run)."""

    name: str
    moved: list[MemberChange] = field(default_factory=list)
    left: list[MemberChange] = field(default_factory=list)
    unchanged: int = 0
    counts_before: dict[str, int] = field(default_factory=dict)  # genre display name -> members
    counts_after: dict[str, int] = field(default_factory=dict)
    min_per_genre: int = 1
    applied: bool = False

    @property
    def changed(self) -> int:
        return len(self.moved) + len(self.left)

    @property
    def refusal(self) -> str | None:
        """Why this refresh must not be written (a genre it shrinks below the dataset's minimum), else None."""
        low = {g: n for g, n in self.counts_after.items()
               if n < self.min_per_genre and n < self.counts_before.get(g, 0)}
        if not low:
            return None
        genres_text = ", ".join(f"{g} with {n}" for g, n in low.items())
        return (f"dataset {self.name!r}: refreshing it would leave {genres_text} member(s), below its "
                f"--min-per-genre {self.min_per_genre}; nothing changed (undo a decision: music-classifier labels "
                f"undo TRACK, or create the dataset again: music-classifier dataset drop {self.name})")

    def text(self) -> str:
        """One line: ``dataset class: 1 moved, 1 left, 22 unchanged`` (``would move`` … for a plan)."""
        verb = "" if self.applied else "would be "
        return (f"dataset {self.name}: {len(self.moved)} {verb}moved, {len(self.left)} {verb}left, "
                f"{self.unchanged} unchanged")

    def summary(self) -> str:
        """One line for the Retrain job's page: the counts, and the genres whose size changed."""
        counts = self.counts_text()
        return f"refreshed to the label decisions: {self.text()}" + (f" ({counts})" if counts else "")

    def counts_text(self) -> str:
        """The genres whose member count changes: ``Rock 8 -> 7, Jazz 8 -> 9``."""
        return ", ".join(f"{g} {n} -> {self.counts_after.get(g, 0)}" for g, n in self.counts_before.items()
                         if self.counts_after.get(g, 0) != n)


def _dataset_row(conn: Connection, name: str, *, lock: bool):  # noqa: ANN202
    stmt = select(datasets.c.id, datasets.c.name, datasets.c.definition).where(datasets.c.name == name)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise InputError(f"dataset {name!r} not found (see: music-classifier dataset list)")
    return row


def plan_refresh(conn: Connection, name: str, *, lock: bool = False) -> tuple[int, DatasetRefresh]:
    """(dataset id, what a refresh of ``name`` would change), nothing written. ``lock``: hold the dataset's
    row (PostgreSQL ``FOR UPDATE``) until the caller's transaction ends."""
    row = _dataset_row(conn, validate_name(name), lock=lock)
    ds = int(row.id)
    definition = row.definition if isinstance(row.definition, dict) else json.loads(row.definition)
    names = {int(g): str(n) for g, n in conn.execute(select(genres.c.id, genres.c.display_name))}
    before = {int(g): int(n) for g, n in conn.execute(
        select(dataset_members.c.genre_id, func.count()).where(dataset_members.c.dataset_id == ds)
        .group_by(dataset_members.c.genre_id))}
    # Only the members whose effective genre differs come back (a removed track, or one with no genre at
    # all, has no row in the view: it keeps its stored genre). Counting the rest in SQL keeps a large
    # dataset's plan from carrying every member's title through Python.
    differing = conn.execute(text(
        "SELECT m.track_id, m.genre_id, eg.genre_id, eg.decision_id, t.artist, t.title FROM dataset_members m "
        "JOIN track_effective_genres eg ON eg.track_id = m.track_id JOIN tracks t ON t.id = m.track_id "
        "WHERE m.dataset_id = :ds AND eg.genre_id <> m.genre_id ORDER BY m.track_id"), {"ds": ds}).all()
    after = dict(before)  # genre id -> members after the moves
    plan = DatasetRefresh(name=str(row.name), min_per_genre=int(definition.get("min_per_genre") or 1))
    moved: dict[int, MemberChange] = {}
    for track_id, member_genre, effective, decision_id, artist, title in differing:
        member_genre, effective = int(member_genre), int(effective)
        change = MemberChange(track_id=int(track_id), song=f"{artist} - {title}", genre_before=names[member_genre],
                              genre_after=names[effective] if effective in before else None,
                              genre_before_id=member_genre, genre_after_id=effective if effective in before else None,
                              effective_genre=names[effective],
                              decision_id=None if decision_id is None else int(decision_id))
        after[member_genre] -= 1
        if effective in before:
            moved[change.track_id] = change
            after[effective] += 1
        else:
            plan.left.append(replace(change, why="not a genre of the dataset"))
    cap = definition.get("max_per_genre")
    for gid in [g for g, n in after.items() if cap is not None and n > int(cap)]:
        plan.left += _past_the_cap(conn, ds, gid, int(cap), int(definition.get("seed") or 0), moved,
                                   {int(r[0]) for r in differing}, names)
        after[gid] = int(cap)
    plan.moved = [moved[t] for t in sorted(moved)]
    plan.left.sort(key=lambda c: c.track_id)
    plan.unchanged = sum(before.values()) - plan.changed
    order = sorted(before, key=lambda g: (-before[g], names[g]))  # as dataset show orders them
    plan.counts_before = {names[g]: before[g] for g in order}
    plan.counts_after = {names[g]: after[g] for g in order}
    return ds, plan


def _past_the_cap(conn: Connection, dataset_id: int, genre_id: int, cap: int, seed: int,
                  moved: dict[int, MemberChange], differing: set[int], names: dict[int, str]) -> list[MemberChange]:
    """The members of ``genre_id`` after the moves (``moved`` in; ``differing``, every member whose genre
    changes, out) beyond ``cap`` in
    ``dataset create``'s sample order; they leave, moved or not (a moved one is taken out of ``moved``)."""
    stayed = [int(t) for t, in conn.execute(select(dataset_members.c.track_id).where(
        dataset_members.c.dataset_id == dataset_id, dataset_members.c.genre_id == genre_id))
              if int(t) not in differing]  # a stored member that differs is moving out, or leaving
    ids = stayed + [t for t, c in moved.items() if c.genre_after_id == genre_id]
    offset = seed_offset(seed)
    ids.sort(key=lambda t: ((t * HASH_MULTIPLIER + offset) % HASH_MODULUS, t))
    out = []
    for t in ids[cap:]:
        base = moved.pop(t, None) or MemberChange(track_id=t, song=_song(conn, t), genre_before=names[genre_id],
                                                  genre_after=None, effective_genre=names[genre_id],
                                                  genre_before_id=genre_id,
                                                  decision_id=None)
        out.append(replace(base, genre_after=None, genre_after_id=None,
                           why=f"past --max-per-genre {cap} in the dataset's sample order"))
    return out


def _song(conn: Connection, track_id: int) -> str:
    row = conn.execute(text("SELECT artist, title FROM tracks WHERE id = :t"), {"t": track_id}).one()
    return f"{row[0]} - {row[1]}"


def refresh_dataset(conn: Connection, name: str, *, dry_run: bool = False) -> DatasetRefresh:
    """Move ``name``'s members to their effective genres now (see the module's rules), in the caller's
    transaction; ``dry_run``: only say what would change. InputError (one line, naming the dataset) when
    the refresh would leave a genre below the dataset's ``--min-per-genre`` (dry run included), or when
    another writer changed a member meanwhile (:class:`DatasetChanged`); then nothing is written."""
    dataset_id, plan = plan_refresh(conn, name, lock=not dry_run)
    if plan.refusal:
        raise InputError(plan.refusal)
    if dry_run:
        return plan
    by_pair: dict[tuple[int, int], list[int]] = defaultdict(list)
    for c in plan.moved:
        by_pair[(c.genre_before_id, int(c.genre_after_id))].append(c.track_id)
    leaving: dict[int, list[int]] = defaultdict(list)
    for c in plan.left:
        leaving[c.genre_before_id].append(c.track_id)
    # Compare-and-set: each statement names the genre its rows must still hold, and must touch every row it
    # names. In chunks: both drivers cap the values one statement binds (SQLite 32,766, psycopg 65,535).
    for before, track_ids in leaving.items():
        for part in _chunks(track_ids):
            _expect(conn.execute(delete(dataset_members).where(*_rows(dataset_id, before)), {"tracks": part}),
                    part, plan.name)
    for (before, after), track_ids in by_pair.items():
        for part in _chunks(track_ids):
            _expect(conn.execute(update(dataset_members).where(*_rows(dataset_id, before)).values(genre_id=after),
                                 {"tracks": part}), part, plan.name)
    # dataset show's "members that took a decided genre": recomputed for every live member (a removed member
    # keeps the row it had, as it keeps its stored genre); rows of members that left go.
    conn.execute(text("DELETE FROM dataset_member_decisions WHERE dataset_id = :ds AND (track_id IN "
                      "(SELECT id FROM tracks WHERE removed_at IS NULL) OR track_id NOT IN "
                      "(SELECT track_id FROM dataset_members WHERE dataset_id = :ds))"), {"ds": dataset_id})
    conn.execute(text("INSERT INTO dataset_member_decisions (dataset_id, track_id, decision_id) "
                      "SELECT m.dataset_id, m.track_id, eg.decision_id FROM dataset_members m "
                      "JOIN track_effective_genres eg ON eg.track_id = m.track_id "
                      "WHERE m.dataset_id = :ds AND eg.decision_id IS NOT NULL AND eg.genre_id = m.genre_id"),
                 {"ds": dataset_id})
    plan.applied = True
    return plan


def _chunks(ids: list[int], size: int = 5000) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _rows(dataset_id: int, genre_id: int) -> tuple:
    return (dataset_members.c.dataset_id == dataset_id, dataset_members.c.genre_id == genre_id,
            dataset_members.c.track_id.in_(bindparam("tracks", expanding=True)))


def _expect(result, track_ids: list[int], name: str) -> None:  # noqa: ANN001
    if result.rowcount != len(track_ids):
        raise DatasetChanged(f"dataset {name!r} changed while it was being refreshed; nothing changed "
                             f"(run it again: music-classifier dataset refresh {name})")


def refresh_committed(engine: Engine, name: str) -> DatasetRefresh:
    """:func:`refresh_dataset` in a transaction of its own, committed before the caller trains (the Retrain
    button, the RQ task ``train_final``): on SQLite a write held through a long grid search would lock the
    page's decisions out meanwhile. A refused refresh raises its one-line InputError: nothing is trained."""
    with engine.begin() as conn:
        return refresh_dataset(conn, name)


def pending_refresh(conn: Connection, name: str) -> DatasetRefresh | None:
    """What a refresh of ``name`` would change, or None when its members already have their effective
    genres: ``train`` and ``compare`` warn with it that a dataset is stale."""
    _, plan = plan_refresh(conn, name)
    return plan if plan.changed else None
