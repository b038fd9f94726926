"""Tracks holding the same audio (same sha256) or naming the same song never fall on both sides of a split:
datasets, training's CV and held-out split, and the audit's out-of-fold folds all group them (issue 16)."""

from __future__ import annotations

import numpy as np
import pytest
from models_helpers import fill_separable, join_groups
from sqlalchemy import update

from music_classifier.db.tables import tracks
from music_classifier.models.datasets import DatasetDefinition, create_dataset
from music_classifier.models.load_data import load_dataset
from music_classifier.models.oof import out_of_fold, repeated_splits
from music_classifier.models.registry import get_model_row
from music_classifier.models.splits import holdout_split
from music_classifier.models.train import TrainOptions, estimation_splits, train_model

GENRES = ["Rock", "Jazz", "Pop"]
SHA = "ab" * 32


@pytest.fixture
def twins(engine):
    """18 tracks, 6 a genre; a byte-identical pair in Rock (as registered before scans knew copies), the
    same audio under Rock and Jazz, and one song named twice (sheet and playlist) in Pop."""
    with engine.begin() as conn:
        ids = fill_separable(conn, genres_=GENRES, per_genre=6, prefix="tw")
        pairs = {"copy": (ids["Rock"][0], ids["Rock"][4]), "cross": (ids["Rock"][2], ids["Jazz"][3]),
                 "song": (ids["Pop"][1], ids["Pop"][5])}
        for i, (a, b) in enumerate((pairs["copy"], pairs["cross"])):
            conn.execute(update(tracks).where(tracks.c.id.in_([a, b])).values(file_sha256=f"{i}" + SHA[1:]))
        a, b = pairs["song"]
        conn.execute(update(tracks).where(tracks.c.id == a).values(artist="The Nora Vale", title="Midnight Steps",
                                                                  source="sheet"))
        conn.execute(update(tracks).where(tracks.c.id == b).values(artist="Nora Vale", title="Midnight steps!",
                                                                  source="spotify_playlist"))
        # the same song twice in a table imported with its features (csv) is the table's business: not joined
        for t in (ids["Jazz"][0], ids["Pop"][0]):
            conn.execute(update(tracks).where(tracks.c.id == t).values(artist="Table Artist", title="Table Song"))
        create_dataset(conn, "tw", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=2))
    return pairs


def _rows(frame, pair):
    return [np.flatnonzero(frame.track_ids == t) for t in pair]


def _never_straddle(frame, pairs, splits) -> None:
    for train, test in splits:
        train, test = set(train.tolist()), set(test.tolist())
        for name, pair in pairs.items():
            a, b = _rows(frame, pair)
            sides = {"train" if r in train else "test" if r in test else "out" for r in [*a, *b]}
            assert len(sides) == 1, f"{name} pair {pair} split across {sides}"


@pytest.mark.parametrize("group_by", [None, "artist"])
def test_same_audio_and_same_song_stay_on_one_side_of_every_split(engine, twins, group_by):
    with engine.connect() as conn:
        frame = load_dataset(conn, "tw", group_by=group_by)

    # train: repeated CV (small data) and the held-out split, over several seeds
    for seed in range(4):
        splits, protocol, _, _ = estimation_splits(frame.y, frame.groups, cv=5, repeats=5, seed=seed)
        _never_straddle(frame, twins, splits)
        assert "Group" in protocol
        train, test = holdout_split(frame.y, frame.groups, test_size=0.25, seed=seed)
        _never_straddle(frame, twins, [(train, test)])
        # the audit's out-of-fold folds
        _, oof_splits = repeated_splits(frame.y, frame.groups, n_splits=5, n_repeats=5, seed=seed)
        _never_straddle(frame, twins, oof_splits)
    for a, b in twins.values():
        assert frame.groups[frame.track_ids == a][0] == frame.groups[frame.track_ids == b][0]
    assert frame.joined == 3


def test_train_keeps_twins_on_one_side_of_its_held_out_split_and_says_so(engine, twins, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text('{"C": [1.0]}')
    notes = []
    for seed in range(6):
        with engine.begin() as conn:
            result = train_model(conn, "tw", TrainOptions(kind="logreg", grid=grid, test_size=0.34, cv=2, repeats=2,
                                                          seed=seed, n_jobs=1), models_path=tmp_path / "models")
            trained = set(get_model_row(conn, result.model_id)["params"]["train_track_ids"])
        for name, (a, b) in twins.items():
            assert (a in trained) == (b in trained), f"{name} pair split by seed {seed}"
        notes.append(result.extra["adaptations"])
    assert all(any(n.startswith("3 split group(s) joined") for n in seed_notes) for seed_notes in notes)


def test_audit_out_of_fold_runs_on_joined_groups(engine, twins):
    with engine.connect() as conn:
        frame = load_dataset(conn, "tw")
    oof = out_of_fold(frame, kind="logreg", n_splits=3, n_repeats=2, seed=0)
    assert sorted(oof.track_ids.tolist()) == sorted(set(frame.track_ids.tolist()))
    assert oof.accuracy > 0.8  # separable data: grouping changes which rows are held out, not the signal


def test_join_groups_joins_every_group_sharing_a_link_and_keeps_the_rest():
    groups = np.array([10, 11, 12, 13, 14, 15])
    audio = [None, "x", None, "x", None, None]
    song = ["s", None, "s", "t", "u", "u"]
    joined, absorbed = join_groups(groups, [audio, song])
    assert joined.tolist() == [10, 11, 10, 11, 14, 14] and absorbed == 3
    chained, _ = join_groups(groups, [["a", "a", "b", "b", "c", "c"], [None, "k", "k", None, None, "k"]])
    assert chained.tolist() == [10] * 6  # joined through a chain of links
    same, none = join_groups(groups, [[None] * 6])
    assert same is groups and none == 0
