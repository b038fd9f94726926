"""Merging one genre into another (``genres alias FROM TO`` when FROM is a genre of its own).

Rows that name the merged genre by id move to the target: track genres and aliases, and the
members of every dataset (``dataset_members.genre_id`` restricts deletion of the genre, so a merge
that left them would fail on the foreign key). A dataset in which both genres were classes gets one
class where it had two, capped again at its ``max_per_genre`` in its own sampling order (the order
``dataset create`` uses), and its view is rebuilt. The model registry is not touched: a model's
snapshot records genre names, so models keep the genres they were trained on.

Everything is checked before anything is written, and the caller owns the transaction, so a refusal
or a failure leaves the database as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, select, text, update

from music_classifier.db.tables import (
    dataset_members,
    datasets,
    genre_aliases,
    genres,
    label_decisions,
    models,
    proposals,
    track_genres,
)
from music_classifier.errors import InputError


@dataclass(frozen=True)
class DatasetMerge:
    """What a merge did to one dataset."""

    name: str
    moved: int  # members relabelled from the merged genre to the target
    joined: bool  # the target was a class of the dataset too: two classes became one
    cap: int | None  # the dataset's max_per_genre
    left_out: int  # members of the joined class beyond ``cap``, removed from the dataset
    genres_after: int  # classes of the dataset after the merge

    def describe(self, source: str, target: str) -> str:
        if self.joined:
            what = f"{source} joined {target} (now {_count(self.genres_after, 'genre')})"
        else:
            what = f"{_count(self.moved, source + ' member')} now {target}"
        if self.left_out:
            what += f", capped at --max-per-genre {self.cap}: {_count(self.left_out, 'member')} left out"
        return f"{self.name}: {what}"


@dataclass(frozen=True)
class GenreMerge:
    """What merging genre ``source`` into ``target`` moved (display names)."""

    source: str
    target: str
    tracks: int  # tracks filed under the merged genre (coarse genre or subgenre)
    proposals: int  # the proposals of those tracks
    datasets: list[DatasetMerge] = field(default_factory=list)
    models: int = 0  # registered models trained on those datasets; their snapshots are kept as they were

    def describe(self) -> str:
        """One line: what moved."""
        parts = [_count(self.tracks, "track"), _count(self.proposals, "proposal")]
        if self.datasets:
            each = "; ".join(d.describe(self.source, self.target) for d in self.datasets)
            parts.append(f"{_count(len(self.datasets), 'dataset')} ({each}; "
                         f"{'view' if len(self.datasets) == 1 else 'views'} rebuilt)")
        else:
            parts.append("no dataset")
        line = f"merged genre {self.source!r} into {self.target!r}: {', '.join(parts)}"
        if self.models:
            one = self.models == 1
            line += (f"; {_count(self.models, 'model')} trained on {'it' if len(self.datasets) == 1 else 'them'} "
                     f"keep{'s' if one else ''} the genres recorded when {'it was' if one else 'they were'} trained")
        return line


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass
class _DatasetPlan:
    id: int
    name: str
    definition: dict[str, Any]
    members: list[tuple[int, int]]  # (track_id, genre_id)


def merge_genre(conn: Connection, source_id: int, target_id: int) -> GenreMerge:
    """Move everything filed under genre ``source_id`` to ``target_id`` and delete the source genre.

    Raises InputError, before writing anything, when a dataset has only these two genres (it would
    be left with one: a classifier needs two); the message names the dataset and its fix.
    """
    if source_id == target_id:
        raise ValueError("a genre cannot be merged into itself")
    names = dict(conn.execute(select(genres.c.id, genres.c.display_name)
                              .where(genres.c.id.in_([source_id, target_id]))).all())
    source, target = str(names[source_id]), str(names[target_id])
    plans = _datasets_with(conn, source_id)
    _refuse_one_genre_datasets(plans, source_id, target_id, source, target)

    moved_tracks = select(track_genres.c.track_id).where(track_genres.c.genre_id == source_id).distinct()
    n_tracks = conn.execute(select(func.count()).select_from(moved_tracks.subquery())).scalar_one()
    n_proposals = conn.execute(select(func.count()).select_from(proposals)
                               .where(proposals.c.track_id.in_(moved_tracks))).scalar_one()
    n_models = conn.execute(select(func.count()).select_from(models)
                            .where(models.c.dataset_id.in_([p.id for p in plans]))).scalar_one() if plans else 0

    done = [_merge_dataset(conn, plan, source_id, target_id) for plan in plans]
    conn.execute(update(track_genres).where(track_genres.c.genre_id == source_id).values(genre_id=target_id))
    # Label decisions name genres too (append-only, but a merge renames a genre, it decides nothing).
    for col in (label_decisions.c.genre_id, label_decisions.c.genre_before_id):
        conn.execute(update(label_decisions).where(col == source_id).values({col.name: target_id}))
    conn.execute(update(genre_aliases).where(genre_aliases.c.genre_id == source_id).values(genre_id=target_id))
    conn.execute(delete(genres).where(genres.c.id == source_id))
    return GenreMerge(source=source, target=target, tracks=int(n_tracks), proposals=int(n_proposals),
                      datasets=done, models=int(n_models))


def _datasets_with(conn: Connection, genre_id: int) -> list[_DatasetPlan]:
    """Every dataset with a member filed under ``genre_id``, by name, with all its members."""
    ids = select(dataset_members.c.dataset_id).where(dataset_members.c.genre_id == genre_id).distinct()
    rows = conn.execute(select(datasets.c.id, datasets.c.name, datasets.c.definition)
                        .where(datasets.c.id.in_(ids)).order_by(datasets.c.name)).all()
    plans = []
    for ds_id, name, definition in rows:
        members = conn.execute(select(dataset_members.c.track_id, dataset_members.c.genre_id)
                               .where(dataset_members.c.dataset_id == ds_id)).all()
        plans.append(_DatasetPlan(id=int(ds_id), name=str(name),
                                  definition=definition if isinstance(definition, dict) else json.loads(definition),
                                  members=[(int(t), int(g)) for t, g in members]))
    return plans


def _refuse_one_genre_datasets(plans: list[_DatasetPlan], source_id: int, target_id: int,
                               source: str, target: str) -> None:
    single = [p for p in plans if {g for _, g in p.members} == {source_id, target_id}]
    if not single:
        return
    first = single[0].name
    more = f" (and {len(single) - 1} more dataset(s) like it)" if len(single) > 1 else ""
    raise InputError(f"dataset {first!r} has only the genres {source!r} and {target!r}: merging them would leave it "
                     f"one genre{more}; drop it first (music-classifier dataset drop {first}) and create it again "
                     "after the merge; nothing was changed")


def _merge_dataset(conn: Connection, plan: _DatasetPlan, source_id: int, target_id: int) -> DatasetMerge:
    from music_classifier.db.views import dataset_view_name, dataset_view_sql
    from music_classifier.models.datasets import HASH_MODULUS, HASH_MULTIPLIER, seed_offset, view_columns

    classes = {g for _, g in plan.members}
    joined = target_id in classes
    moved = sum(1 for _, g in plan.members if g == source_id)
    cap = plan.definition.get("max_per_genre")
    left_out: list[int] = []
    merged = [t for t, g in plan.members if g in (source_id, target_id)]
    if joined and cap is not None and len(merged) > int(cap):
        # The order select_members samples a genre in: the joined class is capped as `dataset create` caps one.
        offset = seed_offset(int(plan.definition.get("seed") or 0))
        merged.sort(key=lambda t: ((t * HASH_MULTIPLIER + offset) % HASH_MODULUS, t))
        left_out = merged[int(cap):]
    conn.execute(update(dataset_members).where((dataset_members.c.dataset_id == plan.id)
                                               & (dataset_members.c.genre_id == source_id)).values(genre_id=target_id))
    if left_out:
        # One row per statement (executemany): a big CSV dataset may leave out more ids than SQLite binds at once.
        conn.execute(delete(dataset_members).where((dataset_members.c.dataset_id == plan.id)
                                                   & (dataset_members.c.track_id == bindparam("b_track"))),
                     [{"b_track": t} for t in left_out])
    view = dataset_view_name(plan.name)
    conn.execute(text(f'DROP VIEW IF EXISTS "{view}"'))
    conn.execute(text(dataset_view_sql(plan.name, plan.id, plan.definition["features"],
                                       bool(plan.definition.get("segments")), view_columns())))
    return DatasetMerge(name=plan.name, moved=moved, joined=joined, cap=None if cap is None else int(cap),
                        left_out=len(left_out), genres_after=len(classes - {source_id} | {target_id}))
