"""`audio scan` and byte-identical copies: reported as copies of their original, never registered (issue 16)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from audio_helpers import add_track, write_audio
from sqlalchemy import func, select
from typer.testing import CliRunner

from music_classifier.db.tables import tracks
from music_classifier.ingest.audio_copies import AudioCopy, looks_like_a_copy
from music_classifier.ingest.audio_scan import scan_library

ORIGINAL = "jazz/Nora Vale - Midnight Steps.wav"
COPY = "jazz/Nora Vale - Midnight Steps (1).wav"


@pytest.fixture
def library(tmp_path) -> Path:
    root = tmp_path / "library"
    root.mkdir()
    return root


@pytest.fixture
def midnight(engine, library) -> int:
    """A sheet track, its file, and a byte-identical copy of that file next to it."""
    with engine.begin() as conn:
        tid = add_track(conn, "Nora Vale", "Midnight Steps", genre="Jazz")
    write_audio(library / ORIGINAL, seed=1)
    shutil.copyfile(library / ORIGINAL, library / COPY)
    return tid


def _file_tracks(engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(select(tracks.c.audio_path).where(tracks.c.source == "file")).scalars().all()


def test_copy_of_a_tracks_file_is_reported_as_a_copy_and_not_registered(engine, library, midnight):
    with engine.begin() as conn:
        report = scan_library(conn, root=library, add_unmatched_genre="Jazz")
    assert [m.path for m in report.matched] == [ORIGINAL]
    assert report.added == [] and _file_tracks(engine) == []  # main registered the copy as a new track
    assert report.copies == [AudioCopy(COPY, ORIGINAL, midnight, "Nora Vale", "Midnight Steps",
                                       fix=report.copies[0].fix)]
    assert report.copies[0].text() == f"copy of #{midnight} Nora Vale - Midnight Steps: {COPY}"
    assert report.copies_not_added == [COPY]
    assert COPY not in {u.path for u in report.unmatched}
    assert report.to_dict()["counts"]["copies"] == 1

    with engine.begin() as conn:  # the next scan says the same, and still registers nothing
        again = scan_library(conn, root=library, add_unmatched_genre="Jazz")
    assert [c.path for c in again.copies] == [COPY] and again.added == [] and _file_tracks(engine) == []


def test_copies_among_new_files_register_one_track_and_name_it(engine, library):
    write_audio(library / "blues" / "Old Joe - Rain.wav", seed=3)
    shutil.copyfile(library / "blues" / "Old Joe - Rain.wav", library / "blues" / "Old Joe - Rain (copy).wav")
    (library / "other").mkdir()
    shutil.copyfile(library / "blues" / "Old Joe - Rain.wav", library / "other" / "rain.wav")
    with engine.begin() as conn:
        report = scan_library(conn, root=library, genre_from_folder=True)
    # only the copy in a genre folder would have been registered; both are copies of the one added track
    assert [a.path for a in report.added] == ["blues/Old Joe - Rain.wav"]
    new_id = report.added[0].track_id
    assert [(c.path, c.original, c.track_id) for c in report.copies] == [
        ("blues/Old Joe - Rain (copy).wav", "blues/Old Joe - Rain.wav", new_id),
        ("other/rain.wav", "blues/Old Joe - Rain.wav", new_id)]
    assert _file_tracks(engine) == ["blues/Old Joe - Rain.wav"]

    write_audio(library / "misc" / "a.wav", seed=4)
    shutil.copyfile(library / "misc" / "a.wav", library / "misc" / "a (1).wav")
    with engine.begin() as conn:  # no registering: the copy still names the file it copies
        plain = scan_library(conn, root=library, subdir=library / "misc")
    assert [(c.path, c.original, c.track_id) for c in plain.copies] == [("misc/a (1).wav", "misc/a.wav", None)]
    assert [u.path for u in plain.unmatched] == ["misc/a.wav"] and plain.copies_not_added == []


@pytest.mark.parametrize(("name", "copy"), [
    ("x (1).wav", True), ("x(2).mp3", True), ("x - Copy.wav", True), ("x copy 2.flac", True), ("x (copy).ogg", True),
    ("x_copy.wav", True), ("x.wav", False), ("Copycat.wav", False), ("Track (1999).wav", False), ("Scopy.wav", False)])
def test_copy_names(name, copy):
    assert looks_like_a_copy(f"a/{name}") is copy


def test_copy_of_a_track_whose_file_is_gone_offers_the_link(engine, library, midnight):
    with engine.begin() as conn:
        scan_library(conn, root=library)
    (library / ORIGINAL).rename(library / "jazz" / "track07.wav")  # moved, and its name says nothing
    (library / COPY).unlink()
    with engine.begin() as conn:
        report = scan_library(conn, root=library, add_unmatched_genre="Jazz")
    assert report.added == [] and _file_tracks(engine) == []
    [copy] = report.copies
    assert (copy.path, copy.track_id, copy.original_missing) == ("jazz/track07.wav", midnight, True)
    assert copy.fix == f"music-classifier audio link jazz/track07.wav --track {midnight}"


def _cli(engine, library: Path, *args: str):
    from music_classifier.cli import app

    url = engine.url.render_as_string(hide_password=False)
    return CliRunner().invoke(app, ["--db", url, "--library", str(library), "audio", "scan", *args])


def test_cli_says_copy_of_and_that_add_unmatched_skipped_it(engine, library, midnight):
    result = _cli(engine, library, "--add-unmatched", "--genre", "Jazz")
    assert result.exit_code == 0, result.output
    assert f"copy of #{midnight} Nora Vale - Midnight Steps: {COPY}" in result.output
    assert f"not registered as new tracks: 1 copy of known audio ({COPY})" in result.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 1

    data = json.loads(_cli(engine, library, "--json").output)
    assert data["counts"]["copies"] == 1
    assert [(c["path"], c["original"], c["track_id"]) for c in data["copies"]] == [(COPY, ORIGINAL, midnight)]


def test_two_tracks_already_holding_one_recording_are_reported_and_grouped_in_datasets(engine, library):
    """Two sheet rows whose files are byte-identical (one saved under the other's name): both stay linked, the
    scan says they share audio, and a dataset of them never splits them."""
    from models_helpers import add_features, separable_values

    from music_classifier.models.datasets import DatasetDefinition, create_dataset
    from music_classifier.models.load_data import load_dataset

    rng = np.random.default_rng(0)
    with engine.begin() as conn:
        ids = {g: [add_track(conn, f"Band {g} {j}", f"Song {j}", genre=g) for j in range(3)]
               for g in ("Jazz", "Rock")}
    for gi, g in enumerate(ids):
        for j in range(3):
            write_audio(library / g / f"Band {g} {j} - Song {j}.wav", seed=10 * gi + j)
    shutil.copyfile(library / "Jazz" / "Band Jazz 0 - Song 0.wav", library / "Rock" / "Band Rock 2 - Song 2.wav")
    with engine.begin() as conn:
        report = scan_library(conn, root=library)
        assert len(report.matched) == 6 and report.copies == []
        twins = (ids["Jazz"][0], ids["Rock"][2])
        assert [s.track_ids for s in report.shared_audio] == [twins]
        for gi, tids in enumerate(ids.values()):
            for t in tids:
                add_features(conn, t, "gtzan_csv", separable_values("gtzan_csv", gi, rng))
        create_dataset(conn, "class", DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=2))
        frame = load_dataset(conn, "class")
    group = {int(t): g for t, g in zip(frame.track_ids, frame.groups, strict=True)}
    assert group[twins[0]] == group[twins[1]] and len(set(group.values())) == 5

    result = _cli(engine, library)
    assert f"same audio on tracks #{twins[0]}, #{twins[1]}" in result.output
