"""Label decisions (issue 18, item 2): append-only set/keep/undo, the effective-genre view that dataset create,
genres and the audit read, sheet sync that never undoes a decision and lists conflicts; on both databases."""

from __future__ import annotations

import csv
import io

import pytest
from models_helpers import add_track, fill_separable, sqlite_cli
from sqlalchemy import func, select, text

from music_classifier.db.tables import label_decisions, proposals, track_genres, tracks
from music_classifier.errors import InputError
from music_classifier.ingest.genre_report import genre_counts
from music_classifier.ingest.label_decisions import (
    decisions_csv,
    keep_genre,
    list_decisions,
    set_genre,
    settled_track_ids,
    undo_decision,
)
from music_classifier.ingest.sheet_source import build_table
from music_classifier.ingest.sheet_sync import parse_for_sync, sync_sheet
from music_classifier.models.datasets import DatasetDefinition, create_dataset, get_dataset

HEADER = ["Student", "Song", "Coarse_Genre"]
SHEET = [
    ["Alice", "Radiohead - Creep", "Rock"],
    ["Bob", "Radiohead - Creep", "Rock"],
    ["Bob", "Daft Punk - One More Time", "Electronic"],
    ["Carla", "Miles Davis - So What", "Jazz"],
    ["Dan", "Muddy Waters - Hoochie Coochie Man", "Blues"],
    ["Eve", "Bach - Cello Suite No. 1", "Classical"],
]


def _sync(engine, rows):
    with engine.begin() as conn:
        return sync_sheet(conn, parse_for_sync(conn, build_table([HEADER, *rows], "test sheet")), allow_relabel=True)


def _id(engine, title: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(tracks.c.id).where(tracks.c.title == title)).scalar_one())


def _effective(engine, track_id: int) -> tuple[str, str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT genre, sheet_genre, decision FROM track_effective_genres "
                                "WHERE track_id = :t"), {"t": track_id}).one()
    return tuple(row)


def _sheet_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(tuple(r) for t in (track_genres, proposals) for r in conn.execute(select(t)))


def _decision_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(label_decisions).order_by(label_decisions.c.id))]


# --- the library -----------------------------------------------------------------------------------------

def test_set_keep_undo_append_rows_and_move_the_effective_genre(engine):
    _sync(engine, SHEET)
    creep = _id(engine, "Creep")
    sheet_before = _sheet_rows(engine)
    assert _effective(engine, creep) == ("Rock", "Rock", None)

    with engine.begin() as conn:
        out = set_genre(conn, str(creep), "jazz", decided_by="Ms K", note="brushes")
    assert out.effective_genre == "Jazz" and out.sheet_genre == "Rock"
    assert out.written.action == "set" and out.written.genre_before == "Rock" and out.written.decided_by == "Ms K"
    assert _effective(engine, creep) == ("Jazz", "Rock", "set")
    first = _decision_rows(engine)

    with engine.begin() as conn:
        keep_genre(conn, creep)  # back to the sheet's genre, as a decision of its own
    assert _effective(engine, creep) == ("Rock", "Rock", "keep")
    with engine.begin() as conn:
        out = undo_decision(conn, creep)
    assert out.effective_genre == "Jazz"  # the keep is cancelled: the set before it stands again
    with engine.begin() as conn:
        out = undo_decision(conn, creep)
    assert out.effective_genre == "Rock" and _effective(engine, creep) == ("Rock", "Rock", None)
    with engine.begin() as conn, pytest.raises(InputError, match="no decision to undo"):
        undo_decision(conn, creep)

    rows = _decision_rows(engine)
    assert [r[2] for r in rows] == ["set", "keep", "undo", "undo"]
    assert rows[:1] == first  # append-only: earlier rows are never rewritten
    with engine.connect() as conn:
        statuses = [(d.action, d.status, d.genre) for d in list_decisions(conn)]
    assert statuses == [("set", "undone", "Jazz"), ("keep", "undone", "Rock"), ("undo", "undo", "Rock"),
                        ("undo", "undo", "Jazz")]
    assert _sheet_rows(engine) == sheet_before  # the students' genres and proposals never changed


def test_repeating_a_decision_writes_nothing_and_settled_tracks_are_known(engine):
    _sync(engine, SHEET)
    creep, so_what = _id(engine, "Creep"), _id(engine, "So What")
    with engine.begin() as conn:
        set_genre(conn, creep, "Jazz")
        again = set_genre(conn, creep, "Jazz")
        keep_genre(conn, so_what)
        kept_again = keep_genre(conn, so_what)
        assert again.written is None and "already decided" in again.message
        assert kept_again.written is None and "already settled" in kept_again.message
        assert settled_track_ids(conn) == {creep, so_what}
        assert conn.execute(select(func.count()).select_from(label_decisions)).scalar_one() == 2


@pytest.mark.parametrize(("track", "genre", "message"), [
    ("999", "Jazz", "no track 999"),
    ("Creep", "Jazz", "give a track id"),
    (None, "Jaz", "no genre 'Jaz' (did you mean 'Jazz'?)"),
    (None, "Polka", "no genre 'Polka'"),
])
def test_unknown_track_or_genre_is_an_input_error(engine, track, genre, message):
    _sync(engine, SHEET)
    with engine.begin() as conn, pytest.raises(InputError) as err:
        set_genre(conn, track or _id(engine, "Creep"), genre)
    assert message in str(err.value)
    assert _decision_rows(engine) == []


def test_genre_counts_use_the_effective_genre(engine):
    _sync(engine, SHEET)
    with engine.begin() as conn:
        set_genre(conn, _id(engine, "Creep"), "Jazz")
        counts = {c.genre: c.tracks for c in genre_counts(conn)}
    assert counts == {"Jazz": 2, "Electronic": 1, "Blues": 1, "Classical": 1}


def test_a_genre_merge_carries_the_decisions_along(engine):
    from music_classifier.ingest.genres import add_alias

    _sync(engine, SHEET + [["Fay", "Tommy Johnson - Canned Heat", "Bleus"]])
    with engine.begin() as conn:
        set_genre(conn, _id(engine, "Creep"), "Bleus")
        add_alias(conn, "Bleus", "Blues")  # Bleus is a genre of its own: merged into Blues, then removed
    assert _effective(engine, _id(engine, "Creep")) == ("Blues", "Rock", "set")


# --- sheet sync --------------------------------------------------------------------------------------------

def test_sheet_sync_never_undoes_a_decision_and_lists_the_conflict(engine):
    _sync(engine, SHEET)
    creep, so_what = _id(engine, "Creep"), _id(engine, "So What")
    with engine.begin() as conn:
        set_genre(conn, creep, "Electronic")
        keep_genre(conn, so_what)
    decisions = _decision_rows(engine)
    moved = [[s, song, "Blues" if song.startswith(("Radiohead", "Miles")) else g] for s, song, g in SHEET]
    report = _sync(engine, moved)
    assert _decision_rows(engine) == decisions
    assert _effective(engine, creep) == ("Electronic", "Blues", "set")
    assert _effective(engine, so_what) == ("Jazz", "Blues", "keep")
    assert [(c.track_id, c.sheet_before, c.sheet_now, c.decided) for c in report.decision_conflicts] == [
        (creep, "Rock", "Blues", "Electronic"), (so_what, "Jazz", "Blues", "Jazz")]
    # The sheet moving to the decided genre is agreement, not a conflict; an unchanged sheet lists nothing.
    agreed = [[s, song, "Electronic" if song.startswith("Radiohead") else g] for s, song, g in moved]
    assert [c.track_id for c in _sync(engine, agreed).decision_conflicts] == []
    assert _sync(engine, agreed).decision_conflicts == []


def test_sheet_sync_cli_prints_one_conflict_line_per_track(engine, tmp_path, models_dir, monkeypatch):
    run = sqlite_cli(engine, models_dir, monkeypatch)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("\n".join(",".join(r) for r in [HEADER, *SHEET]) + "\n")
    run("sheet", "sync", "--csv", str(first))
    creep = _id(engine, "Creep")
    run("labels", "set", str(creep), "Electronic", "--by", "Ms K")
    second.write_text("\n".join(",".join(r) for r in [HEADER, *SHEET]).replace("Rock", "Blues") + "\n")
    out = run("sheet", "sync", "--csv", str(second), "--allow-relabel").output
    lines = [line for line in out.splitlines() if "conflict:" in line]
    assert len(lines) == 1 and f"track {creep} (Radiohead - Creep)" in lines[0] and "'Electronic' stands" in lines[0]
    assert _effective(engine, creep) == ("Electronic", "Blues", "set")


# --- datasets -----------------------------------------------------------------------------------------------

def test_dataset_create_takes_the_decided_genre_and_show_lists_it(engine, models_dir, monkeypatch):
    with engine.begin() as conn:
        ids = fill_separable(conn, genres_=["Rock", "Jazz"], per_genre=4)
        removed = add_track(conn, key="gone", genre="Rock", removed=True)
    moved, kept = ids["Rock"][0], ids["Jazz"][1]
    with engine.begin() as conn:
        set_genre(conn, moved, "Jazz", note="sax")
        keep_genre(conn, kept)
        with pytest.raises(InputError, match="was removed"):
            set_genre(conn, removed, "Jazz")
        summary = create_dataset(conn, "class", DatasetDefinition(features="gtzan_csv", top=2, min_per_genre=3))
    assert summary.genre_counts == {"Jazz": 5, "Rock": 3}
    assert [(m.track_id, m.sheet_genre, m.genre, m.action) for m in summary.decided] == [
        (moved, "Rock", "Jazz", "set"), (kept, "Jazz", "Jazz", "keep")]
    with engine.connect() as conn:
        genre = conn.execute(text("SELECT genre FROM dataset_class WHERE track_id = :t"), {"t": moved}).scalar_one()
        assert genre == "Jazz"
        assert len(get_dataset(conn, "class").decided) == 2

    run = sqlite_cli(engine, models_dir, monkeypatch)
    out = run("dataset", "create", "again", "--features", "gtzan_csv", "--top", "2", "--min-per-genre", "3").output
    assert "2 member(s) took a decided genre (1 relabelled, 1 kept" in out
    shown = run("dataset", "show", "again").output
    assert f"track {moved} (artist t0-0 - Rock song 0): sheet Rock -> Jazz (set" in shown
    run("dataset", "drop", "again")


# --- the audit sees settled tracks ---------------------------------------------------------------------------

def test_the_audit_shows_settled_tracks(engine, models_dir, monkeypatch):
    from music_classifier.models.audit import audit_csv, latest_audit, run_audit

    with engine.begin() as conn:
        ids = fill_separable(conn, genres_=["Rock", "Jazz", "Pop"], per_genre=6)
        create_dataset(conn, "class", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=3))
        run_audit(conn, "class", n_splits=3, n_repeats=1)
    settled = ids["Pop"][2]
    with engine.begin() as conn:
        out = keep_genre(conn, settled)
        result = latest_audit(conn)
    assert out.written.audit_id == result.audit_id  # the decision names the audit that listed the track
    assert {r.track_id: r.settled for r in result.rows if r.settled} == {settled: "Pop"}
    rows = list(csv.DictReader(io.StringIO(audit_csv(result))))
    assert {int(r["track_id"]) for r in rows if r["settled"]} == {settled}


# --- the CLI ---------------------------------------------------------------------------------------------------

def test_labels_cli_messages_and_csv(engine, models_dir, monkeypatch):
    _sync(engine, SHEET)
    run = sqlite_cli(engine, models_dir, monkeypatch)
    creep = _id(engine, "Creep")
    out = run("labels", "set", str(creep), "Jaz", code=1).output
    assert out.strip() == ("error: no genre 'Jaz' (did you mean 'Jazz'?); a decision files a track under an "
                           "existing genre")
    assert len(run("labels", "keep", "4242", code=1).output.strip().splitlines()) == 1
    assert "no decision to undo" in run("labels", "undo", str(creep), code=1).output
    out = run("labels", "set", str(creep), "Jazz", "--note", "=HYPERLINK(\"x\")", "--by", "[b]Ms K[/b]").output
    assert f"track {creep} (Radiohead - Creep): Rock -> Jazz (decision" in out
    assert "kept Jazz" in run("labels", "keep", str(_id(engine, "So What"))).output
    assert "undid decision" in run("labels", "undo", str(creep)).output
    listed = run("labels", "list").output.splitlines()
    assert len(listed) == 3 and listed[1].startswith(f"2. track {_id(engine, 'So What')} (Miles Davis - So What): "
                                                     "keep Jazz, standing, by ")
    assert "by [b]Ms K[/b]" in listed[0]  # user text printed as typed, never read as markup
    rows = list(csv.DictReader(io.StringIO(run("labels", "list", "--csv").output)))
    assert [(r["action"], r["status"]) for r in rows] == [("set", "undone"), ("keep", "standing"), ("undo", "undo")]
    assert rows[0]["note"] == "'=HYPERLINK(\"x\")"  # neutralised as `sql --csv` does
    assert rows[0]["decided_by"] == "[b]Ms K[/b]"
    with engine.connect() as conn:
        assert decisions_csv(list_decisions(conn)) == run("labels", "list", "--csv").output


def test_the_view_survives_a_migration_that_drops_and_recreates_views(engine):
    from music_classifier.db.feature_columns import FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST, WIDE_STORES_LATEST
    from music_classifier.db.views import views_dropped

    _sync(engine, SHEET)
    with engine.begin() as conn:
        set_genre(conn, _id(engine, "Creep"), "Jazz")
        with views_dropped(conn, FEATURE_VIEWS_LATEST, SEGMENT_VIEWS_LATEST, wide_stores=WIDE_STORES_LATEST):
            assert "track_effective_genres" not in conn.dialect.get_view_names(conn)
    assert _effective(engine, _id(engine, "Creep")) == ("Jazz", "Rock", "set")


def test_the_report_shows_settled_tracks(engine, tmp_path):
    import json

    from music_classifier.models.audit import run_audit
    from music_classifier.models.report import build_report
    from music_classifier.models.train import TrainOptions, train_model

    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"n_estimators": [10]}))
    with engine.begin() as conn:
        fill_separable(conn, genres_=["Rock", "Jazz", "Pop"], per_genre=6)
        create_dataset(conn, "class", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=3))
        model = train_model(conn, "class", TrainOptions(kind="rf", grid=str(grid), cv=2, test_size=0.5, seed=0),
                            models_path=tmp_path / "models").model_id
        audited = run_audit(conn, "class", n_splits=3, n_repeats=1)
        first = audited.rows[0]
        set_genre(conn, first.track_id, "Pop" if first.sheet_genre != "Pop" else "Rock")
        for r in audited.rows[1:]:
            keep_genre(conn, r.track_id)
    with engine.connect() as conn:
        page = build_report(conn, model, out_dir=tmp_path / "r", settings=None).read_text(encoding="utf-8")
    table = page[page.index('id="label-issues"'):page.index("</table>", page.index('id="label-issues"'))]
    cells = table.count('<td class="settled">')
    assert cells >= 1 and table.count('<td class="settled">—</td>') == 0  # every listed track shows its genre


@pytest.mark.parametrize(("args", "message"), [
    (["set", "99999999999999999999", "Jazz"], "no track 99999999999999999999"),
    (["set", "²", "Jazz"], "give a track id"),
    (["set", "1", "Jazz", "--note", "a\x00b"], "--note contains a NUL character"),
])
def test_odd_input_is_one_line(engine, models_dir, monkeypatch, args, message):
    _sync(engine, SHEET)
    run = sqlite_cli(engine, models_dir, monkeypatch)
    out = run("labels", *args, code=1).output.strip()
    assert len(out.splitlines()) == 1 and message in out
    assert _decision_rows(engine) == []
