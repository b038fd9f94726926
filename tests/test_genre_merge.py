"""`genres alias FROM TO` when FROM is a genre that datasets, models and proposals reference: a merge, or a
one-line refusal naming the dataset, on SQLite and PostgreSQL; and a TO that does not exist is refused."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from models_helpers import add_track, fill_separable, genre_id, sqlite_cli
from sqlalchemy import func, insert, select, text
from test_genre_spelling import SHEET, _sync
from typer.testing import CliRunner

from music_classifier.db.tables import (
    dataset_members,
    datasets,
    genre_aliases,
    genres,
    models,
    proposals,
    students,
    track_genres,
)
from music_classifier.errors import InputError
from music_classifier.ingest.genres import add_alias, resolve_genres
from music_classifier.models.datasets import (
    HASH_MODULUS,
    HASH_MULTIPLIER,
    DatasetDefinition,
    create_dataset,
    drop_dataset,
    get_dataset,
    member_snapshot,
    seed_offset,
)


def _state(engine) -> dict[str, list[tuple]]:
    """Every row a merge could touch, and each dataset view's (track, genre) rows."""
    with engine.connect() as conn:
        out = {t.name: sorted((tuple(r) for r in conn.execute(select(t))), key=repr)
               for t in (genres, genre_aliases, track_genres, dataset_members, datasets, models, proposals)}
        for (name,) in conn.execute(select(datasets.c.name)):
            out[name] = sorted(tuple(r) for r in conn.execute(text(f'SELECT track_id, genre FROM "dataset_{name}"')))
    return out


def _propose(conn, track_ids: list[int]) -> None:
    student = conn.execute(insert(students).values(name="Ana").returning(students.c.id)).scalar_one()
    conn.execute(insert(proposals), [{"student_id": student, "track_id": t, "sheet_row": i + 2}
                                     for i, t in enumerate(track_ids)])


def _register_model(conn, dataset: str) -> int:
    """A registry row as `train` stores it: the dataset's id and a snapshot of its members' genre names."""
    d = get_dataset(conn, dataset, count_live=False)
    return conn.execute(insert(models).values(
        dataset_id=d.id, dataset_name=d.name, kind="logreg", params={}, feature_names=["x"], versions={},
        dataset_snapshot={"definition": d.definition, "members": member_snapshot(conn, d.id)},
    ).returning(models.c.id)).scalar_one()


def _pair(engine) -> None:
    """A dataset whose only genres are Reggae and Jazz."""
    with engine.begin() as conn:
        create_dataset(conn, "pair", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=6,
                                                       sources=["csv"]))
        conn.execute(text("DELETE FROM dataset_members WHERE dataset_id = (SELECT id FROM datasets "
                          "WHERE name = 'pair') AND genre_id = :blues"), {"blues": genre_id(conn, "Blues")})


@pytest.fixture
def classroom(engine):
    """Reggae, Jazz, Blues (6 tracks each, features), a dataset of all three capped at 8, one of Reggae and Blues,
    proposals for three Reggae tracks, and a model trained on the first dataset."""
    with engine.begin() as conn:
        ids = fill_separable(conn, genres_=["Reggae", "Jazz", "Blues"], per_genre=6)
        _propose(conn, ids["Reggae"][:3])
        create_dataset(conn, "three", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=2,
                                                        max_per_genre=8, sources=["csv"], seed=5))
        create_dataset(conn, "reggae_blues", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=6,
                                                               sources=["csv"]))
        conn.execute(text("DELETE FROM dataset_members WHERE dataset_id = (SELECT id FROM datasets "
                          "WHERE name = 'reggae_blues') AND genre_id = :jazz"), {"jazz": genre_id(conn, "Jazz")})
        _register_model(conn, "three")
    engine.ids = ids  # type: ignore[attr-defined]
    return engine


def test_alias_merges_a_genre_that_datasets_models_and_proposals_reference(classroom):
    ids = classroom.ids
    with classroom.connect() as conn:
        snapshot_before = conn.execute(select(models.c.dataset_snapshot)).scalar_one()
    with classroom.begin() as conn:
        result = add_alias(conn, "Reggae", "Jazz")
    merge = result.merge
    assert merge is not None and (merge.source, merge.target) == ("Reggae", "Jazz")
    assert (merge.tracks, merge.proposals, merge.models) == (6, 3, 1)
    assert [(d.name, d.moved, d.joined, d.left_out, d.genres_after) for d in merge.datasets] == [
        ("reggae_blues", 6, False, 0, 2), ("three", 6, True, 4, 2)]
    line = result.describe("Reggae")
    assert "\n" not in line
    assert line.startswith("genre alias: 'Reggae' (key 'reggae') -> 'Jazz'; merged genre 'Reggae' into 'Jazz': "
                           "6 tracks, 3 proposals, 2 datasets (reggae_blues: 6 Reggae members now Jazz; three: Reggae "
                           "joined Jazz (now 2 genres), capped at --max-per-genre 8: 4 members left out; views "
                           "rebuilt); 1 model trained on them keeps the genres recorded when it was trained")

    with classroom.connect() as conn:
        jazz = genre_id(conn, "Jazz")
        assert conn.execute(select(genres.c.id).where(genres.c.name == "reggae")).scalar() is None
        assert conn.execute(select(genre_aliases.c.genre_id).where(genre_aliases.c.alias == "reggae")).scalar() == jazz
        coarse = dict(conn.execute(select(track_genres.c.track_id, track_genres.c.genre_id)
                                   .where(track_genres.c.rank == 0)).all())
        assert {coarse[t] for t in ids["Reggae"] + ids["Jazz"]} == {jazz}
        # "three": one Jazz class of 8, the 8 of the 12 that come first in the dataset's own sampling order.
        view = dict(conn.execute(text('SELECT track_id, genre FROM "dataset_three"')).all())
        offset = seed_offset(5)
        order = sorted(ids["Reggae"] + ids["Jazz"], key=lambda t: ((t * HASH_MULTIPLIER + offset) % HASH_MODULUS, t))
        assert {t for t, g in view.items() if g == "Jazz"} == set(order[:8])
        assert sorted(set(view.values())) == ["Blues", "Jazz"]
        assert get_dataset(conn, "three").genre_counts == {"Jazz": 8, "Blues": 6}
        assert get_dataset(conn, "reggae_blues").genre_counts == {"Blues": 6, "Jazz": 6}
        # The registry keeps what the model was trained on: Reggae stays Reggae there.
        assert conn.execute(select(models.c.dataset_snapshot)).scalar_one() == snapshot_before
        assert {g for _, g in snapshot_before["members"]} == {"Reggae", "Jazz", "Blues"}
        # A later source spelling it Reggae lands in Jazz.
        assert resolve_genres(conn, ["REGGAE"], create=False).ids["REGGAE"] == jazz


def test_a_dataset_left_with_one_genre_is_refused_by_name_and_nothing_is_written(classroom):
    _pair(classroom)
    before = _state(classroom)
    with pytest.raises(InputError) as refused:
        with classroom.begin() as conn:
            add_alias(conn, "Reggae", "Jazz")
    assert str(refused.value) == (
        "dataset 'pair' has only the genres 'Reggae' and 'Jazz': merging them would leave it one genre; drop it "
        "first (music-classifier dataset drop pair) and create it again after the merge; nothing was changed")
    assert _state(classroom) == before


def test_merging_a_genre_in_no_dataset_moves_its_subgenre_rows(engine):
    """A genre only some tracks carry as a subgenre, in no dataset: the rows move, nothing else is claimed."""
    with engine.begin() as conn:
        add_track(conn, key="a", genre="Rock", subgenre="Roots Reggae")
        resolve_genres(conn, ["Reggae"])
        result = add_alias(conn, "Roots Reggae", "Reggae")
    assert result.merge is not None
    assert result.merge.describe() == "merged genre 'Roots Reggae' into 'Reggae': 1 track, 0 proposals, no dataset"
    with engine.connect() as conn:
        assert conn.execute(select(track_genres.c.genre_id).where(track_genres.c.rank == 1)).scalar_one() == \
            genre_id(conn, "Reggae")


def test_an_alias_to_a_genre_that_does_not_exist_is_refused_unless_new_genre(classroom):
    before = _state(classroom)
    for target, message in (
            ("Jazzz", "no genre 'Jazzz' (did you mean 'Jazz'?); use --new-genre to create it"),
            ("Dub Techno", "no genre 'Dub Techno'; use --new-genre to create it")):
        with pytest.raises(InputError) as refused:
            with classroom.begin() as conn:
                add_alias(conn, "Nonexistent", target)
        assert str(refused.value) == message
    assert _state(classroom) == before
    # A spelling not yet seen may name an existing genre (or a spelling of one): it waits for future sources.
    with classroom.begin() as conn:
        result = add_alias(conn, "Jazz Standards", "jazz")
        assert (result.merge, result.created, result.target) == (None, False, "Jazz")
        assert resolve_genres(conn, ["jazz_standards"], create=False).ids["jazz_standards"] == genre_id(conn, "Jazz")
    # --new-genre creates the target, near miss or not.
    with classroom.begin() as conn:
        created = add_alias(conn, "Blues", "Bluez", new_genre=True)
    assert created.created and created.target == "Bluez" and created.merge is not None
    with classroom.connect() as conn:
        assert get_dataset(conn, "three").genre_counts["Bluez"] == 6
        assert conn.execute(select(func.count()).select_from(genres).where(genres.c.name == "blues")).scalar() == 0


def _invoke(engine, *args: str):
    from music_classifier.cli import app

    return CliRunner().invoke(app, ["--db", engine.url.render_as_string(hide_password=False), "genres", "alias",
                                    *args], terminal_width=80)


def test_cli_says_what_moved_or_why_not_in_one_line_as_the_readme_shows(classroom):
    shown = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    before = _state(classroom)
    typo = _invoke(classroom, "Nonexistent", "Jazzz")
    assert (typo.exit_code, typo.stdout) == (1, "")
    assert typo.stderr.splitlines() == ["error: no genre 'Jazzz' (did you mean 'Jazz'?); use --new-genre to create it"]
    assert _state(classroom) == before

    _pair(classroom)
    before = _state(classroom)
    refused = _invoke(classroom, "Reggae", "Jazz")
    assert (refused.exit_code, refused.stdout) == (1, "")
    assert refused.stderr.splitlines() == [
        "error: dataset 'pair' has only the genres 'Reggae' and 'Jazz': merging them would leave it one genre; drop "
        "it first (music-classifier dataset drop pair) and create it again after the merge; nothing was changed"]
    assert _state(classroom) == before
    with classroom.begin() as conn:
        drop_dataset(conn, "pair")

    merged = _invoke(classroom, "Reggae", "Jazz")
    assert merged.exit_code == 0, merged.output
    assert merged.stderr == ""
    lines = merged.stdout.splitlines()
    assert len(lines) == 1 and "merged genre 'Reggae' into 'Jazz': 6 tracks, 3 proposals, 2 datasets" in lines[0]
    for line in (*typo.stderr.splitlines(), *refused.stderr.splitlines(), lines[0]):
        assert line in shown, f"README does not show: {line}"


def test_a_trained_model_keeps_its_genres_and_still_evaluates_after_the_merge(sqlite_engine, tmp_path, monkeypatch):
    """Through `train`: the registry row is the one training writes; evaluate on the merged dataset still runs."""
    cli = sqlite_cli(sqlite_engine, tmp_path / "models", monkeypatch)
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"rf": {"n_estimators": [10]}}))
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz", "Reggae"], per_genre=8)
    cli("dataset", "create", "pl", "--features", "gtzan_csv", "--top", "3", "--min-per-genre", "5", "--source", "csv")
    cli("train", "pl", "--grid", str(grid), "--cv", "2")
    with sqlite_engine.connect() as conn:
        snapshot = conn.execute(select(models.c.dataset_snapshot)).scalar_one()

    out = cli("genres", "alias", "Reggae", "Jazz").stdout
    assert "pl: Reggae joined Jazz (now 2 genres); view rebuilt); 1 model trained on it keeps" in out
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(models.c.dataset_snapshot)).scalar_one() == snapshot
    assert "Reggae" in cli("models", "show", "1").stdout
    evaluated = cli("evaluate", "1", "--on", "pl").stdout
    assert "genres dropped (the model's, absent from the dataset): Reggae" in evaluated


def test_the_fix_a_typo_report_prints_works_as_printed(engine, tmp_path):
    """`genres alias` now refuses a TO that is not stored, so a near miss of a spelling that is only commoner in the
    same sheet (Bleus next to two Blues rows, first sync) prints its fix with --new-genre while nothing is written
    (--strict, --dry-run), and without it once the sync has created Blues."""
    from music_classifier.cli import app

    refused = _sync(engine, tmp_path, SHEET, "--strict")
    assert refused.exit_code == 1
    assert "run: music-classifier genres alias Bleus Blues --new-genre (and 1 more" in refused.stderr
    preview = _sync(engine, tmp_path, SHEET, "--dry-run")
    assert "run: music-classifier genres alias Bleus Blues --new-genre" in preview.stderr

    synced = _sync(engine, tmp_path, SHEET)
    fixes = [line.split("run: ")[1] for line in synced.stderr.splitlines() if line.startswith("warning:")]
    assert fixes == ["music-classifier genres alias Bleus Blues", "music-classifier genres alias Metall Metal"]
    url = engine.url.render_as_string(hide_password=False)
    for fix in fixes:
        result = CliRunner().invoke(app, ["--db", url, *shlex.split(fix)[1:]])
        assert result.exit_code == 0, result.output
