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
    from models_helpers import song_keys

    from music_classifier.models.same_audio import song_key

    artists = ["The Beatles", "Beatles", "AC/DC", "", None, "Björk feat. X", "The Beatles"]
    titles = ["Help! (Remastered)", "help", "T.N.T.", "Song", "Song", "Jóga", ""]
    assert song_keys(artists, titles) == [song_key(a, t) for a, t in zip(artists, titles, strict=True)]
    assert song_keys(artists, titles)[0] == song_keys(artists, titles)[1] is not None


def test_song_codes_group_exactly_as_song_keys():
    from models_helpers import song_keys

    from music_classifier.models.same_audio import song_codes

    artists = np.array(["The Beatles", "Beatles", "AC/DC", "", "Björk feat. X", "The Beatles", "björk", "Beatles"],
                       dtype=object)
    titles = np.array(["Help! (Remastered)", "help", "T.N.T.", "Song", "Jóga", "", "Joga", "Yesterday"], dtype=object)
    wanted = np.array([True, True, True, True, True, True, True, False])
    codes = song_codes(artists, titles, wanted)
    keys = [k if w else None for k, w in zip(song_keys(artists.tolist(), titles.tolist()), wanted, strict=True)]
    for i in range(len(keys)):
        shared = keys[i] is not None and sum(k == keys[i] for k in keys) > 1
        assert (codes[i] >= 0) == shared  # a code where another entry has the same song, -1 elsewhere
        for j in range(len(keys)):
            if codes[i] >= 0 and codes[j] >= 0:
                assert (codes[i] == codes[j]) == (keys[i] == keys[j])
    assert codes[0] == codes[1] >= 0 and codes[4] == codes[6] >= 0 and codes[2] == -1
    rng = np.random.default_rng(1)  # many entries, few shared songs
    artists = np.array([f"Artist {k}" for k in rng.integers(0, 50, 2000)], dtype=object)
    titles = np.array([f"Title {k} (Live)" if k % 3 else f"title {k}" for k in rng.integers(0, 3000, 2000)],
                      dtype=object)
    codes = song_codes(artists, titles, np.ones(2000, dtype=bool))
    keys = song_keys(artists.tolist(), titles.tolist())
    expected = {k for k in keys if keys.count(k) > 1}
    assert {keys[i] for i in np.flatnonzero(codes >= 0)} == expected
    assert len(set(codes[codes >= 0].tolist())) == len(expected)


def test_normalise_titles_equal_normalise_title_one_by_one():
    from music_classifier.ingest.keys import normalise_title, normalise_titles

    titles = ["", " ", "Song (Remastered 2011)", "Song - 2011 Remaster", "Song feat. X", "Song (ft. Y)", "A & B",
              "__x__", "x_-y", "  lead  ", "Beyoncé", "Ça va (feat. Zaz)", "Line\nbreak feat. x", "tab\there",
              "Title [Mono Version]", "(feat", "defeat me", "x\r", "日本語 feat. x", "x-remaster", "a\x1cb"]
    rng = np.random.default_rng(0)
    parts = list("abX ()[]-_&.\t\x0b0123") + ["feat", "ft.", "featuring", "remaster", " - ", "live", "é", "\n"]
    titles += ["".join(rng.choice(parts, size=rng.integers(0, 10))) for _ in range(3000)]
    assert normalise_titles(titles) == [normalise_title(t) for t in titles]


def _reference_join(groups, links):
    """The union-find join_groups replaced: pair by pair, the smaller root kept."""
    labels, parent, absorbed = groups.tolist(), {}, 0

    def root(label):
        while parent.get(label, label) != label:
            label = parent[label]
        return label

    for values in links:
        first = {}
        for label, value in zip(labels, values, strict=True):
            if value is None:
                continue
            a, b = root(label), root(first.setdefault(value, label))
            if a != b:
                parent[max(a, b)] = min(a, b)
                absorbed += 1
    return [root(label) for label in labels], absorbed


@pytest.mark.parametrize("seed", range(5))
def test_join_groups_equal_the_pairwise_union_find(seed):
    from models_helpers import join_groups

    rng = np.random.default_rng(seed)
    n = 300
    for groups in (rng.integers(0, 120, n), np.array([f"g{k}" for k in rng.integers(0, 120, n)])):
        links = [[None if v < 0 else f"x{v}" for v in rng.integers(-200, 60, n).tolist()],
                 [None if v < 0 else int(v) for v in rng.integers(-300, 40, n).tolist()]]
        joined, absorbed = join_groups(groups, links)
        expected, expected_absorbed = _reference_join(groups, links)
        assert joined.tolist() == expected and absorbed == expected_absorbed and joined.dtype == groups.dtype


def test_member_facts_equal_the_rows_read_one_by_one(engine):
    """Genre, artist, title, playlist and the same-audio / same-song groups of a load equal a plain read."""
    rng = np.random.default_rng(3)
    # Titles a text COPY escapes or a CSV reader might take for something else; two pairs name one song.
    odd_titles = ["Song 0", "tab\there", "line\nbreak", "back\\slash \\N", "NA", "", "  spaced  ", '"quoted',
                  "#comment", "Song 0", "1979", "tab\there"]
    with engine.begin() as conn:
        tids = []
        for j in range(12):
            genre = ["Rock", "Jazz", "Pop"][j % 3]
            tid = add_track(conn, key=f"m-{j}", genre=genre, source="csv" if j == 11 else "file",
                            artist=["The Band", "band", "Solo", "Other"][j % 4], title=odd_titles[j],
                            playlist=None if j % 2 else f"pl{j % 4}")
            add_features(conn, tid, "librosa", separable_values("librosa", j % 3, rng))
            tids.append(tid)
        conn.execute(text("UPDATE tracks SET file_sha256 = 'abc' WHERE id IN (:a, :b)"), {"a": tids[2], "b": tids[9]})
        create_dataset(conn, "facts", DatasetDefinition(features="librosa", top=3, min_per_genre=1))
        conn.execute(text("UPDATE tracks SET removed_at = CURRENT_TIMESTAMP WHERE id = :t"), {"t": tids[5]})
    with engine.connect() as conn:
        frame = load_dataset(conn, "facts")
        rows = conn.execute(text("SELECT d.track_id, d.genre, t.artist, t.title, t.playlist_id, t.file_sha256, "
                                 "t.source FROM dataset_facts d JOIN tracks t ON t.id = d.track_id "
                                 "ORDER BY d.track_id")).all()
        by_artist = load_dataset(conn, "facts", group_by="artist")
        by_playlist = load_dataset(conn, "facts", group_by="playlist")
    assert frame.track_ids.tolist() == [r[0] for r in rows] and tids[5] not in frame.track_ids
    assert frame.y.tolist() == [r[1] for r in rows] and frame.y.dtype == object
    assert frame.artists.tolist() == [r[2] for r in rows] and frame.titles.tolist() == [r[3] for r in rows]
    assert frame.playlists.tolist() == [r[4] or f"track:{r[0]}" for r in rows]
    from models_helpers import join_groups, song_keys

    songs = [k if r[6] != "csv" else None for k, r in zip(song_keys([r[2] for r in rows], [r[3] for r in rows]),
                                                          rows, strict=True)]
    links = [[r[5] or None for r in rows], songs]
    expected, joined = join_groups(np.array([r[0] for r in rows]), links)
    assert frame.groups.tolist() == expected.tolist() and frame.joined == joined > 0
    folded = np.asarray([r[2].strip().casefold() for r in rows])
    assert by_artist.groups.tolist() == join_groups(folded, links)[0].tolist()
    assert by_playlist.groups.tolist() == join_groups(np.array([r[4] or f"track:{r[0]}" for r in rows], dtype=object),
                                                      links)[0].tolist()


@pytest.mark.parametrize("features,segments", [("librosa,musicnn", False), ("librosa", True), ("musicnn", False)])
def test_track_features_from_the_value_tables_equal_the_view_read(engine, features, segments):
    from music_classifier.models.dataset_values import read_track_values
    from music_classifier.models.load_data import feature_sources, load_track_features, view_track_features

    rng = np.random.default_rng(4)
    sets = features.split(",")
    with engine.begin() as conn:
        tids = []
        for j in range(8):
            tid = add_track(conn, key=f"p-{j}", genre="Rock", source="file")
            for s in sets:
                if segments:
                    add_segments(conn, tid, [separable_values(s, j % 2, rng) for _ in range(2 + j % 2)], extractor=s)
                else:
                    add_features(conn, tid, s, separable_values(s, j % 2, rng))
            tids.append(tid)
        seg = [(7, 21.0, separable_values(sets[0], 1, rng))] if segments else None
        _newer(conn, tids[0], sets[0], {} if segments else separable_values(sets[0], 1, rng), seg)
        _newer(conn, tids[1], sets[-1], separable_values(sets[-1], 0, rng), status="failed")
        conn.execute(text("UPDATE tracks SET removed_at = CURRENT_TIMESTAMP WHERE id = :t"), {"t": tids[2]})
        conn.execute(insert(extractions).values(track_id=tids[3], extractor=sets[-1], version="2",
                                                params_hash="empty", status="done"))
    definition = {"features": features, "segments": segments}
    names = list(feature_sources(definition))
    picked = [names[-1], names[0], names[len(names) // 2]]
    asked = [*tids[:6], 999_999]
    with engine.connect() as conn:
        for wanted in (names, picked):
            assert read_track_values(conn, definition, wanted, asked) is not None  # the value tables are read
            X, found, segs = load_track_features(conn, definition, wanted, asked)
            X_view, found_view, segs_view = view_track_features(conn, definition, wanted, asked)
            assert found.tolist() == found_view.tolist()
            # newer done (0) and newer failed (1) extractions read as the views read them; a removed track (2),
            # a newest extraction without values (3), a track not asked (6, 7) or unknown: absent.
            assert set(found.tolist()) == {tids[0], tids[1], tids[4], tids[5]}
            np.testing.assert_array_equal(X, X_view)
            assert (segs is None and segs_view is None) or segs.tolist() == segs_view.tolist()
            assert X.shape == (len(found), len(wanted))
        if segments:
            assert segs[found == tids[0]].tolist() == [7]


def test_segment_rows_take_their_own_tracks_facts(engine):
    """Three members, three segment rows, yet not one row per member: each row's title is its own track's."""
    rng = np.random.default_rng(5)
    with engine.begin() as conn:
        tids = []
        for j, n_segments in enumerate([2, 1, 1]):
            tid = add_track(conn, key=f"r-{j}", genre="Rock", source="file", title=f"Title {j}", artist=f"Artist {j}")
            add_segments(conn, tid, [separable_values("librosa", 0, rng) for _ in range(n_segments)])
            tids.append(tid)
        create_dataset(conn, "rows", DatasetDefinition(features="librosa", top=1, min_per_genre=1, segments=True))
        _newer(conn, tids[2], "librosa", {}, [])  # its newest extraction has no segments: no rows
    with engine.connect() as conn:
        frame = load_dataset(conn, "rows")
        view = conn.execute(text('SELECT track_id, title, artist FROM "dataset_rows" ORDER BY track_id, segment')).all()
    assert frame.track_ids.tolist() == [tids[0], tids[0], tids[1]] == [r[0] for r in view]
    assert frame.titles.tolist() == [r[1] for r in view] and frame.artists.tolist() == [r[2] for r in view]
