"""`spotify import-csv` / `features import-csv --layout gtzan`: layouts, first row per id, aliases,
bad rows, idempotent re-import and the feature views, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from music_classifier.db.feature_columns import GTZAN_V1, SPOTIFY_V1
from music_classifier.db.tables import extractions, features, genres, track_genres, tracks
from music_classifier.errors import InputError
from music_classifier.features.librosa_extractor import params_hash as extractor_params_hash
from music_classifier.ingest.csv_import import import_gtzan_csv, import_spotify_csv, params_hash
from music_classifier.ingest.csv_layouts import detect_layout

TIDY_HEADER = ["track_id", "track_name", "track_artist", "track_popularity", "track_album_id", "track_album_name",
               "track_album_release_date", "playlist_name", "playlist_id", "playlist_genre", "playlist_subgenre",
               *SPOTIFY_V1]
K114_HEADER = ["", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms", "explicit",
               "danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
               "instrumentalness", "liveness", "valence", "tempo", "time_signature", "track_genre"]


def spotify_values(seed: float) -> dict[str, object]:
    """12 feature values; tempo and energy are easy to recognise."""
    return {"danceability": 0.5, "energy": round(0.1 + seed / 100, 4), "key": 5, "loudness": -6.25, "mode": 1,
            "speechiness": 0.04, "acousticness": 0.2, "instrumentalness": 1.5e-05, "liveness": 0.11,
            "valence": 0.6, "tempo": 100 + seed, "duration_ms": 200000 + int(seed)}


def tidy_row(track_id: str, artist: str, title: str, playlist: str, genre: str, subgenre: str, seed: float,
             **overrides: object) -> dict[str, object]:
    row = {"track_id": track_id, "track_name": title, "track_artist": artist, "track_popularity": 50,
           "track_album_id": "alb", "track_album_name": "Album", "track_album_release_date": "2019-01-01",
           "playlist_name": f"Playlist {playlist}", "playlist_id": playlist, "playlist_genre": genre,
           "playlist_subgenre": subgenre, **spotify_values(seed)}
    row.update(overrides)
    return row


def write_csv(path: Path, header: list[str], rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


TIDY_ROWS = [
    tidy_row("1aaaaaaaaaaaaaaaaaaaaa", "Daft Punk", "One More Time", "plEDM", "edm", "electro house", 20),
    tidy_row("2bbbbbbbbbbbbbbbbbbbbb", "Kendrick Lamar", "DNA.", "plRAP", "rap", "gangster rap", 40),
    # The same track again in another playlist and genre: the first row wins.
    tidy_row("1aaaaaaaaaaaaaaaaaaaaa", "Daft Punk", "One More Time", "plPOP", "pop", "dance pop", 99),
    tidy_row("3ccccccccccccccccccccc", "Dua Lipa", "Levitating", "plPOP", "pop", "", 60),
]


def import_spotify(engine, path: Path, **kwargs):  # noqa: ANN001, ANN201
    with engine.begin() as conn:
        return import_spotify_csv(conn, path, **kwargs)


def track_rows(engine) -> dict[str, dict]:  # noqa: ANN001
    with engine.connect() as conn:
        return {r.track_key: r._asdict() for r in conn.execute(select(tracks).where(tracks.c.source == "csv"))}


def genre_ranks(engine, track_key: str) -> dict[int, str]:  # noqa: ANN001
    with engine.connect() as conn:
        return dict(conn.execute(
            select(track_genres.c.rank, genres.c.display_name).join(genres, genres.c.id == track_genres.c.genre_id)
            .join(tracks, tracks.c.id == track_genres.c.track_id).where(tracks.c.track_key == track_key)).all())


def test_tidytuesday_first_row_per_id_aliases_and_view(engine, tmp_path):
    path = write_csv(tmp_path / "spotify_songs.csv", TIDY_HEADER, TIDY_ROWS)
    report = import_spotify(engine, path)
    assert (report.layout, report.extractor) == ("tidytuesday", "spotify")
    assert (report.rows_read, report.tracks_added, report.duplicates_skipped, report.bad_rows) == (4, 3, 1, [])
    assert report.genre_counts == {"Electronic": 1, "Hip-Hop": 1, "Pop": 1}
    assert report.genre_mapping_applied == {"edm": "Electronic", "rap": "Hip-Hop"}

    rows = track_rows(engine)
    daft = rows["1aaaaaaaaaaaaaaaaaaaaa"]
    assert (daft["artist"], daft["title"], daft["song"]) == ("Daft Punk", "One More Time", "Daft Punk - One More Time")
    assert (daft["spotify_id"], daft["spotify_lookup"], daft["playlist_id"]) == (
        "1aaaaaaaaaaaaaaaaaaaaa", "dataset", "plEDM")  # the first row's playlist, not plPOP
    assert genre_ranks(engine, "1aaaaaaaaaaaaaaaaaaaaa") == {0: "Electronic", 1: "Electro House"}
    assert genre_ranks(engine, "2bbbbbbbbbbbbbbbbbbbbb") == {0: "Hip-Hop", 1: "Gangster Rap"}
    assert genre_ranks(engine, "3ccccccccccccccccccccc") == {0: "Pop"}  # blank subgenre: no rank 1

    with engine.connect() as conn:
        ext = conn.execute(select(extractions)).all()
        assert len(ext) == 3
        expected_hash = extractor_params_hash({"source": "csv", "file": "spotify_songs.csv"})
        assert params_hash({"source": "csv", "file": "spotify_songs.csv"}) == expected_hash
        assert {(e.extractor, e.version, e.params_hash, e.status) for e in ext} == {
            ("spotify", "1", expected_hash, "done")}
        per_extraction = conn.execute(select(features.c.extraction_id, func.count()).group_by(
            features.c.extraction_id)).all()
        assert sorted(n for _, n in per_extraction) == [12, 12, 12]
        assert set(conn.execute(select(features.c.name).distinct()).scalars()) == set(SPOTIFY_V1)

        view = conn.execute(text("SELECT * FROM spotify_features WHERE title = 'One More Time'")).mappings().one()
        assert view["coarse_genre"] == "Electronic" and view["source"] == "csv"
        assert view["tempo"] == pytest.approx(120.0) and view["energy"] == pytest.approx(0.3)
        assert view["duration_ms"] == 200020 and view["instrumentalness"] == pytest.approx(1.5e-05)
        by_genre = dict(conn.execute(text(
            "SELECT coarse_genre, AVG(tempo) FROM spotify_features GROUP BY coarse_genre")).all())
        assert by_genre == {"Electronic": pytest.approx(120.0), "Hip-Hop": pytest.approx(140.0),
                            "Pop": pytest.approx(160.0)}


def test_114k_layout_joins_artists_and_maps_track_genre(engine, tmp_path):
    rows = [
        {"": 0, "track_id": "4ddddddddddddddddddddd", "artists": "Calvin Harris;Dua Lipa", "album_name": "A",
         "track_name": "One Kiss", "popularity": 80, "explicit": "False", "time_signature": 4, "track_genre": "edm",
         **spotify_values(5)},
        {"": 1, "track_id": "5eeeeeeeeeeeeeeeeeeeee", "artists": "Nas", "album_name": "B",
         "track_name": "N.Y. State of Mind", "popularity": 70, "explicit": "True", "time_signature": 4,
         "track_genre": "hip-hop", **spotify_values(6)},
    ]
    path = write_csv(tmp_path / "dataset.csv", K114_HEADER, rows)
    report = import_spotify(engine, path, layout="tracks114k")
    assert report.layout == "tracks114k" and report.tracks_added == 2
    stored = track_rows(engine)
    one_kiss = stored["4ddddddddddddddddddddd"]
    assert one_kiss["artist"] == "Calvin Harris, Dua Lipa" and one_kiss["playlist_id"] is None
    assert genre_ranks(engine, "4ddddddddddddddddddddd") == {0: "Electronic"}
    assert genre_ranks(engine, "5eeeeeeeeeeeeeeeeeeeee") == {0: "Hip-Hop"}
    with engine.connect() as conn:
        tempo = conn.execute(text("SELECT tempo FROM spotify_features WHERE title = 'One Kiss'")).scalar_one()
    assert tempo == pytest.approx(105.0)


def test_reimport_is_idempotent_and_updates_only_changes(engine, tmp_path):
    path = write_csv(tmp_path / "spotify_songs.csv", TIDY_HEADER, TIDY_ROWS)
    import_spotify(engine, path)
    with engine.connect() as conn:
        before_features = sorted(conn.execute(select(features)).all())
        before_extractions = sorted(conn.execute(select(extractions.c.id, extractions.c.track_id)).all())
    before_tracks = track_rows(engine)

    again = import_spotify(engine, path)
    assert (again.tracks_added, again.tracks_updated, again.tracks_unchanged) == (0, 0, 3)
    assert track_rows(engine) == before_tracks  # not even updated_at moved
    with engine.connect() as conn:
        assert sorted(conn.execute(select(features)).all()) == before_features
        assert sorted(conn.execute(select(extractions.c.id, extractions.c.track_id)).all()) == before_extractions

    changed = list(TIDY_ROWS)
    changed[1] = tidy_row("2bbbbbbbbbbbbbbbbbbbbb", "Kendrick Lamar", "DNA.", "plRAP", "rap", "gangster rap", 40,
                          energy=0.99)
    changed[3] = tidy_row("3ccccccccccccccccccccc", "Dua Lipa", "Levitating", "plPOP", "edm", "", 60)
    third = import_spotify(engine, write_csv(path, TIDY_HEADER, changed))
    assert (third.tracks_added, third.tracks_updated, third.tracks_unchanged) == (0, 2, 1)
    assert genre_ranks(engine, "3ccccccccccccccccccccc") == {0: "Electronic"}
    with engine.connect() as conn:
        energy = conn.execute(text("SELECT energy FROM spotify_features WHERE title = 'DNA.'")).scalar_one()
        assert energy == pytest.approx(0.99)
        assert conn.execute(select(func.count()).select_from(features)).scalar_one() == 36
        assert conn.execute(select(func.count()).select_from(extractions)).scalar_one() == 3
    assert track_rows(engine)["1aaaaaaaaaaaaaaaaaaaaa"] == before_tracks["1aaaaaaaaaaaaaaaaaaaaa"]


def test_bad_rows_are_reported_with_line_numbers_and_skipped(engine, tmp_path):
    rows = [
        tidy_row("1aaaaaaaaaaaaaaaaaaaaa", "A", "Good", "pl1", "pop", "", 1),  # line 2
        tidy_row("2bbbbbbbbbbbbbbbbbbbbb", "B", "Text energy", "pl1", "pop", "", 2, energy="loud"),  # line 3
        tidy_row("", "C", "No id", "pl1", "pop", "", 3),  # line 4
        tidy_row("4ddddddddddddddddddddd", "D", "No genre", "pl1", " ", "", 4),  # line 5
        tidy_row("5eeeeeeeeeeeeeeeeeeeee", "E", "No tempo", "pl1", "rock", "", 5, tempo=""),  # line 6
        tidy_row("6fffffffffffffffffffff", "F", "Infinite", "pl1", "rock", "", 6, loudness="inf"),  # line 7
        tidy_row("7ggggggggggggggggggggg", "G", "Also good", "pl1", "rock", "", 7),  # line 8
    ]
    path = write_csv(tmp_path / "bad.csv", TIDY_HEADER, rows)

    with pytest.raises(InputError, match=r"--strict: 5 bad row\(s\), first line 3: energy 'loud'.*nothing"):
        import_spotify(engine, path, strict=True)
    assert track_rows(engine) == {}

    report = import_spotify(engine, path)
    assert [(b.line, b.reason) for b in report.bad_rows] == [
        (3, "energy 'loud' is not a finite number"),
        (4, "missing track_id"),
        (5, "blank playlist_genre"),
        (6, "tempo is blank"),
        (7, "loudness 'inf' is not a finite number"),
    ]
    assert report.rows_read == 7 and report.tracks_added == 2
    assert set(track_rows(engine)) == {"1aaaaaaaaaaaaaaaaaaaaa", "7ggggggggggggggggggggg"}


def test_unknown_layout_is_one_line_error_listing_expected_columns(engine, tmp_path):
    odd = tmp_path / "odd.csv"
    odd.write_text("song,genre,bpm\nx,pop,120\n")
    with pytest.raises(InputError) as exc:
        import_spotify(engine, odd)
    message = str(exc.value)
    assert "\n" not in message and "unknown CSV layout" in message
    assert "tidytuesday: track_id, playlist_genre, playlist_id" in message and "track_genre" in message
    with pytest.raises(InputError, match="gtzan: filename, label, mfcc1_mean"):
        detect_layout(["song", "genre"], kind="gtzan")
    gtzan_file = write_gtzan(tmp_path / "features_30_sec.csv", [("blues.00000.wav", "blues", 1.0)])
    with pytest.raises(InputError, match="unknown CSV layout"):
        import_spotify(engine, gtzan_file)  # a GTZAN table is not a Spotify dataset
    partial = tmp_path / "partial.csv"
    partial.write_text("track_id,playlist_genre,playlist_id,track_name\n")
    with pytest.raises(InputError, match="tidytuesday layout but lacks column.*track_artist"):
        import_spotify(engine, partial)
    with pytest.raises(InputError, match="no such file"):
        import_spotify(engine, tmp_path / "missing.csv")


def write_gtzan(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    header = ["filename", "length", *GTZAN_V1, "label"]
    records = []
    for filename, label, base in rows:
        values = {name: base + i / 1000 for i, name in enumerate(GTZAN_V1)}
        records.append({"filename": filename, "length": 661794, **values, "label": label})
    return write_csv(path, header, records)


def test_gtzan_table_is_its_own_extractor(engine, tmp_path):
    path = write_gtzan(tmp_path / "features_30_sec.csv",
                       [("blues.00000.wav", "blues", 1.0), ("hiphop.00007.wav", "hiphop", 2.0),
                        ("classical.00001.wav", "classical", 3.0), ("blues.00000.wav", "rock", 9.0)])
    with engine.begin() as conn:
        report = import_gtzan_csv(conn, path)
    assert (report.layout, report.extractor, report.tracks_added, report.duplicates_skipped) == (
        "gtzan", "gtzan_csv", 3, 1)
    blues = track_rows(engine)["gtzan:blues.00000.wav"]
    assert (blues["artist"], blues["title"], blues["spotify_id"]) == ("GTZAN", "blues.00000.wav", None)
    assert genre_ranks(engine, "gtzan:hiphop.00007.wav") == {0: "Hip-Hop"}
    with engine.connect() as conn:
        assert set(conn.execute(select(extractions.c.extractor).distinct()).scalars()) == {"gtzan_csv"}
        assert conn.execute(select(func.count()).select_from(features)).scalar_one() == 3 * 57
        row = conn.execute(text("SELECT * FROM gtzan_features WHERE title = 'hiphop.00007.wav'")).mappings().one()
        assert row["coarse_genre"] == "Hip-Hop"
        assert row["chroma_stft_mean"] == pytest.approx(2.0)
        assert row["rolloff_mean"] == pytest.approx(2.0 + GTZAN_V1.index("rolloff_mean") / 1000)
        assert row["mfcc20_var"] == pytest.approx(2.056)
        assert conn.execute(text("SELECT COUNT(*) FROM librosa_features")).scalar_one() == 0
    with engine.begin() as conn:
        again = import_gtzan_csv(conn, path)
    assert (again.tracks_added, again.tracks_updated, again.tracks_unchanged) == (0, 0, 3)


def test_cli_exit_codes_and_summary(sqlite_engine, tmp_path):
    from music_classifier.cli import app

    url = str(sqlite_engine.url)
    runner = CliRunner()
    good = write_csv(tmp_path / "good.csv", TIDY_HEADER, TIDY_ROWS)
    result = runner.invoke(app, ["--db", url, "spotify", "import-csv", str(good)])
    assert result.exit_code == 0, result.output
    assert "4 rows read" in result.output and "3 added" in result.output and "1 duplicate" in result.output
    assert "edm -> Electronic" in result.output and "rap -> Hip-Hop" in result.output

    bad = write_csv(tmp_path / "bad.csv", TIDY_HEADER, [
        tidy_row("9zzzzzzzzzzzzzzzzzzzzz", "Z", "Fine", "pl", "rock", "", 1),
        tidy_row("8yyyyyyyyyyyyyyyyyyyyy", "Y", "Broken", "pl", "rock", "", 2, tempo="fast")])
    result = runner.invoke(app, ["--db", url, "spotify", "import-csv", str(bad)])
    assert result.exit_code == 3, result.output
    assert "line 3: tempo 'fast' is not a finite number" in result.output
    assert "9zzzzzzzzzzzzzzzzzzzzz" in track_rows(sqlite_engine)  # the good row was committed

    gtzan = write_gtzan(tmp_path / "features_30_sec.csv", [("jazz.00001.wav", "jazz", 1.0)])
    result = runner.invoke(app, ["--db", url, "features", "import-csv", str(gtzan), "--layout", "gtzan"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["--db", url, "features", "import-csv", str(good), "--layout", "gtzan"])
    assert result.exit_code == 1 and "unknown CSV layout" in result.output


def test_real_tables(engine, shared_data):
    import pandas as pd

    tables = shared_data / "tables"
    gtzan_csv, spotify_csv = tables / "gtzan_features_30_sec.csv", tables / "spotify_songs.csv"
    if not gtzan_csv.is_file() or not spotify_csv.is_file():
        pytest.skip("real feature tables not found")
    with engine.begin() as conn:
        gtzan = import_gtzan_csv(conn, gtzan_csv)
    assert gtzan.tracks_added == 1000 and not gtzan.bad_rows
    assert sorted(gtzan.genre_counts.values()) == [100] * 10

    spotify = import_spotify(engine, spotify_csv)
    unique_ids = pd.read_csv(spotify_csv, usecols=["track_id"], dtype=str)["track_id"].nunique()
    assert spotify.tracks_added == unique_ids and not spotify.bad_rows
    assert set(spotify.genre_counts) == {"Electronic", "Hip-Hop", "Latin", "Pop", "R&B", "Rock"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM spotify_features")).scalar_one() == unique_ids
        per_genre = dict(conn.execute(text(
            "SELECT coarse_genre, COUNT(*) FROM gtzan_features GROUP BY coarse_genre")).all())
        assert len(per_genre) == 10 and set(per_genre.values()) == {100}
        avg = dict(conn.execute(text(
            "SELECT coarse_genre, AVG(tempo) FROM spotify_features GROUP BY coarse_genre")).all())
        assert len(avg) == 6 and all(80 < v < 160 for v in avg.values())


def test_blank_lines_are_dropped_and_line_numbers_stay_those_of_the_file(tmp_path):
    from music_classifier.ingest.csv_import import parse_table
    from music_classifier.ingest.csv_layouts import TIDYTUESDAY

    path = write_csv(tmp_path / "gaps.csv", TIDY_HEADER, [
        TIDY_ROWS[0], tidy_row("9zzzzzzzzzzzzzzzzzzzzz", "Z", "T", "pl", "pop", "", 1, tempo="x")])
    header, first, broken = path.read_text().splitlines()
    path.write_text("\n".join([header, "", first, "", broken]) + "\n\n")
    good, bad = parse_table(path, TIDYTUESDAY)
    assert good["line"].tolist() == [3]
    assert [(b.line, b.reason) for b in bad] == [(5, "tempo 'x' is not a finite number")]
