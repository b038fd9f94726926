"""A dataset's values read from the value tables (models/dataset_values.py) equal its view's rows, both databases."""

from __future__ import annotations

import numpy as np
import pytest
from models_helpers import add_features, add_segments, add_track, separable_values
from sqlalchemy import insert, text

from music_classifier.db.matrix_read import read_keyed_matrix, sort_by_keys
from music_classifier.db.tables import extractions
from music_classifier.db.values import replace_values
from music_classifier.models.datasets import DatasetDefinition, create_dataset
from music_classifier.models.load_data import META_COLUMNS, load_dataset


def _newer(conn, track_id: int, extractor: str, values, segments=None, status: str = "done") -> None:
    """Another extraction of the track (a newer version), with its values."""
    eid = conn.execute(insert(extractions).values(track_id=track_id, extractor=extractor, version="2",
                                                  params_hash="new", status=status)
                       .returning(extractions.c.id)).scalar_one()
    replace_values(conn, extractor, eid, values, segments)


def _view_rows(conn, name: str, names: list[str], segments: bool):
    keys = ["track_id", "segment"] if segments else ["track_id"]
    key_values, X = sort_by_keys(*read_keyed_matrix(conn, f'"dataset_{name}"', keys, names))
    return key_values, X


def _header(conn, name: str) -> list[str]:
    return [c for c in conn.execute(text(f'SELECT * FROM "dataset_{name}" WHERE 1 = 0')).keys()
            if c not in META_COLUMNS]


def test_two_feature_sets_read_from_the_value_tables_equal_the_view(engine):
    rng = np.random.default_rng(1)
    with engine.begin() as conn:
        tids = []
        for gi, genre in enumerate(["Rock", "Jazz", "Pop"]):
            for j in range(6):
                tid = add_track(conn, key=f"{genre}-{j}", genre=genre, source="file", title=f"{genre} {j}")
                add_features(conn, tid, "librosa", separable_values("librosa", gi, rng))
                add_features(conn, tid, "musicnn", separable_values("musicnn", gi, rng))
                tids.append(tid)
        create_dataset(conn, "both", DatasetDefinition(features="librosa,musicnn", top=3, min_per_genre=1))
        # After the dataset was made: a newer extraction wins, a newer failed one does not, a removed track
        # leaves the view, a done extraction without its value row hides its track from the view.
        _newer(conn, tids[0], "librosa", separable_values("librosa", 2, rng))
        _newer(conn, tids[1], "musicnn", separable_values("musicnn", 0, rng), status="failed")
        conn.execute(text("UPDATE tracks SET removed_at = CURRENT_TIMESTAMP WHERE id = :t"), {"t": tids[2]})
        conn.execute(insert(extractions).values(track_id=tids[3], extractor="musicnn", version="2",
                                                params_hash="empty", status="done"))
    with engine.connect() as conn:
        frame = load_dataset(conn, "both")
        names = _header(conn, "both")
        key_values, X = _view_rows(conn, "both", names, False)
        picked = ["musicnn_" + names[90][len("musicnn_"):], "librosa_tempo", names[0], names[-1]]
        part = load_dataset(conn, "both", feature_names=picked)
    assert frame.feature_names == names and len(names) == 83 + 450
    assert frame.track_ids.tolist() == key_values[:, 0].astype(int).tolist()
    assert set(frame.track_ids.tolist()) == set(tids) - {tids[2], tids[3]}
    np.testing.assert_array_equal(frame.X, X)
    np.testing.assert_array_equal(part.X, X[:, [names.index(n) for n in picked]])
    assert frame.y.tolist()[:2] == ["Rock", "Rock"]


@pytest.mark.parametrize("features", ["librosa", "musicnn"])
def test_segments_read_from_the_value_table_equal_the_view(engine, features):
    rng = np.random.default_rng(2)
    with engine.begin() as conn:
        tids = []
        for gi, genre in enumerate(["Rock", "Jazz"]):
            for j in range(5):
                tid = add_track(conn, key=f"s-{genre}-{j}", genre=genre, source="file")
                add_segments(conn, tid, [separable_values(features, gi, rng) for _ in range(3 + j % 2)],
                             extractor=features)
                tids.append(tid)
        create_dataset(conn, "seg", DatasetDefinition(features=features, top=2, min_per_genre=1, segments=True))
        _newer(conn, tids[0], features, {}, [(5 + i, 15.0 + 3 * i, separable_values(features, 1, rng))
                                             for i in range(2)])  # newer: other segment indices
        conn.execute(text("UPDATE tracks SET removed_at = CURRENT_TIMESTAMP WHERE id = :t"), {"t": tids[4]})
    with engine.connect() as conn:
        frame = load_dataset(conn, "seg")
        key_values, X = _view_rows(conn, "seg", _header(conn, "seg"), True)
    assert frame.track_ids.tolist() == key_values[:, 0].astype(int).tolist()
    assert frame.segments.tolist() == key_values[:, 1].astype(int).tolist()
    assert tids[4] not in frame.track_ids and frame.segments[frame.track_ids == tids[0]].tolist() == [5, 6]
    np.testing.assert_array_equal(frame.X, X)


def test_song_keys_equal_song_key_pair_by_pair():
    from music_classifier.models.same_audio import song_key, song_keys

    artists = ["The Beatles", "Beatles", "AC/DC", "", None, "Björk feat. X", "The Beatles"]
    titles = ["Help! (Remastered)", "help", "T.N.T.", "Song", "Song", "Jóga", ""]
    assert song_keys(artists, titles) == [song_key(a, t) for a, t in zip(artists, titles, strict=True)]
    assert song_keys(artists, titles)[0] == song_keys(artists, titles)[1] is not None
