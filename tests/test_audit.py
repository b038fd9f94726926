"""Label audit: confident learning finds flipped labels; stored rows join the sheet; CSV; per-student views."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from models_helpers import COLUMNS, add_features, add_track, fill_separable, genre_id, separable_values
from sqlalchemy import insert, select, text, update
from typer.testing import CliRunner

from music_classifier.db.tables import label_audits, label_issues, proposals, students, track_genres
from music_classifier.errors import InputError
from music_classifier.models import confident
from music_classifier.models.audit import audit_csv, latest_audit, run_audit
from music_classifier.models.datasets import DatasetDefinition, create_dataset

GENRES = ["Rock", "Blues", "Jazz", "Metal", "Pop", "Reggae"]
PER_GENRE = 8


# --- the confident-learning method on hand-made probabilities -----------------------------------------

def test_thresholds_and_confident_joint_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9],  # the third "0" is confidently a 1
                      [0.2, 0.8], [0.25, 0.75], [0.4, 0.6]])
    t = confident.per_class_thresholds(labels, proba)
    np.testing.assert_allclose(t, [(0.9 + 0.8 + 0.1) / 3, (0.8 + 0.75 + 0.6) / 3])
    # Example 5 (p1 = 0.6 < t1 = 0.717, p0 = 0.4 < t0 = 0.6) is not counted at all.
    np.testing.assert_array_equal(confident.confident_joint(labels, proba), [[2, 1], [0, 2]])
    assert confident.find_label_issues(labels, proba).tolist() == [False, False, True, False, False, False]
    np.testing.assert_allclose(confident.self_confidence(labels, proba), [0.9, 0.8, 0.1, 0.8, 0.75, 0.6])
    assert confident.rank_label_issues(labels, proba)[0] == 2


def test_ranking_by_normalized_margin_weighs_the_competing_genre():
    labels = np.array([0, 1, 2, 0, 1, 2])
    proba = np.array([[0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8],
                      [0.5, 0.3, 0.2], [0.1, 0.5, 0.4], [0.05, 0.05, 0.9]])
    np.testing.assert_allclose(confident.normalized_margin(labels, proba), [0.25, 0.85, 0.85, 0.6, 0.55, 0.925])
    order = confident.rank_label_issues(labels, proba).tolist()
    # 0 is labelled 0 but confidently 1, the lowest margin; 3 and 4 both give their label 0.5, but 4's
    # competing genre is stronger (0.4 against 0.3); equal rows by index.
    assert order == [0, 4, 3, 1, 2, 5]
    assert confident.find_label_issues(labels, proba).sum() == 1


def test_ranking_is_by_score_alone_not_flagged_first():
    """Issue 18.1: a track whose sheet genre gets 0.017 but that no other genre's threshold claims (not
    flagged) must still come before a flagged track whose label keeps more, and the score must never rise
    down the list."""
    labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    proba = np.array([[0.90, 0.05, 0.05], [0.80, 0.10, 0.10], [0.017, 0.49, 0.493],
                      [0.30, 0.60, 0.10], [0.35, 0.55, 0.10], [0.30, 0.60, 0.10],
                      [0.05, 0.05, 0.90], [0.10, 0.10, 0.80], [0.05, 0.60, 0.35]])
    flagged = confident.find_label_issues(labels, proba)
    assert flagged.tolist() == [False] * 8 + [True]  # 0.60 reaches class 1's threshold 0.583; 0.49 does not
    order = confident.rank_label_issues(labels, proba).tolist()
    assert order[:3] == [2, 8, 4]
    quality = confident.normalized_margin(labels, proba)[order]
    assert (np.diff(quality) >= 0).all()


def test_bad_shapes_are_input_errors():
    with pytest.raises(InputError):
        confident.find_label_issues(np.array([0, 1]), np.ones((3, 2)) / 2)
    with pytest.raises(InputError):
        confident.find_label_issues(np.array([0, 5]), np.ones((2, 2)) / 2)


# --- the audit on a separable generated class set with flipped labels ---------------------------------

def seed_class(conn, *, flips: dict[int, str] | None = None, per_genre: int = PER_GENRE) -> dict[str, list[int]]:
    """Separable gtzan_csv features, students proposing the tracks, and some sheet labels flipped
    (track index in the flattened list -> wrong genre) BEFORE the dataset is created."""
    rng = np.random.default_rng(0)
    cols = COLUMNS["gtzan_csv"]
    flat = []
    for gi, genre in enumerate(GENRES):  # genre i sits at +6 on the features j % 8 == i: disjoint clusters
        centre = np.array([6.0 if j % 8 == gi else 0.0 for j in range(len(cols))])
        for j in range(per_genre):
            tid = add_track(conn, key=f"{genre}-{j}", genre=genre, artist=f"artist {gi}-{j}", title=f"{genre} song {j}")
            add_features(conn, tid, "gtzan_csv", dict(zip(cols, centre + rng.normal(0, 1.0, len(cols)), strict=True)))
            flat.append(tid)
    names = ["ana", "ben", "=cmd|' /C calc'!A0"]
    sid = [int(conn.execute(insert(students).values(name=n).returning(students.c.id)).scalar_one()) for n in names]
    conn.execute(insert(proposals), [{"student_id": sid[i % 3], "track_id": t, "sheet_row": i + 2}
                                     for i, t in enumerate(flat)])
    for index, wrong in (flips or {}).items():
        conn.execute(update(track_genres).where(track_genres.c.track_id == flat[index], track_genres.c.rank == 0)
                     .values(genre_id=genre_id(conn, wrong)))
    create_dataset(conn, "class", DatasetDefinition(features="gtzan_csv", top=len(GENRES), min_per_genre=3))
    return {"flat": flat}


FLIPS = {1: "Metal", 13: "Rock", 30: "Jazz"}  # a Rock, a Blues and a Pop track relabelled


def test_flipped_labels_are_ranked_first_and_stored(engine):
    with engine.begin() as conn:
        flat = seed_class(conn, flips=FLIPS)["flat"]
        result = run_audit(conn, "class", kind="rf", n_splits=4, n_repeats=2, seed=0)
    flipped = {flat[i] for i in FLIPS}
    top = [r.track_id for r in result.rows[:len(FLIPS)]]
    assert set(top) == flipped
    assert all(r.flagged for r in result.rows[:len(FLIPS)])
    heard = {r.track_id: r.heard_genre for r in result.rows}
    true_genre = {flat[i]: GENRES[i // PER_GENRE] for i in FLIPS}
    assert {t: heard[t] for t in flipped} == true_genre  # the model hears the genre before the flip
    assert result.rows[0].dispute_score > 0.5
    assert len(result.rows) == len(flat)
    assert [r.rank for r in result.rows] == list(range(1, len(flat) + 1))

    with engine.connect() as conn:
        run = conn.execute(select(label_audits)).mappings().one()
        assert run["n_tracks"] == len(flat) and run["n_flagged"] == len(result.flagged)
        assert run["params"]["n_repeats"] == 2 and run["params"]["classifier"]["n_estimators"] == 300
        # SQL joins the stored audit to the sheet: who proposed the most disputed tracks.
        joined = conn.execute(text(
            "SELECT li.rank, s.name AS student, t.title FROM label_issues li JOIN tracks t ON t.id = li.track_id "
            "JOIN proposals p ON p.track_id = t.id JOIN students s ON s.id = p.student_id "
            "WHERE li.flagged ORDER BY li.rank")).all()
        assert {r.title for r in joined[:3]} == {f"{GENRES[i // PER_GENRE]} song {i % PER_GENRE}" for i in FLIPS}
        again = latest_audit(conn, "class")
    assert [(r.track_id, r.heard_genre, r.flagged) for r in again.rows] == \
        [(r.track_id, r.heard_genre, r.flagged) for r in result.rows]
    assert again.rows[0].students == result.rows[0].students != []


def test_clean_labels_flag_nothing_much_and_a_flip_tops_the_list_with_segments_free_data(sqlite_engine):
    with sqlite_engine.begin() as conn:
        seed_class(conn)
        result = run_audit(conn, "class", n_splits=4, n_repeats=1, store=False)
    assert result.audit_id is None
    assert result.accuracy == 1.0
    assert result.flagged == []
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(label_issues)).first() is None


def test_student_views_on_both_databases(engine):
    with engine.begin() as conn:
        flat = seed_class(conn, flips=FLIPS)["flat"]
        result = run_audit(conn, "class", n_splits=4, n_repeats=1, seed=0)
        rows = conn.execute(text("SELECT * FROM student_summary ORDER BY student")).mappings().all()
        by_genre = conn.execute(text("SELECT student, genre, proposals, agreed FROM student_genres "
                                     "ORDER BY student, genre")).mappings().all()
    heard = {r.track_id: r.heard_genre == r.sheet_genre for r in result.rows}
    names = sorted(["ana", "ben", "=cmd|' /C calc'!A0"])
    index_of = {"ana": 0, "ben": 1, "=cmd|' /C calc'!A0": 2}
    assert [r["student"] for r in rows] == names
    for r in rows:
        mine = [t for i, t in enumerate(flat) if i % 3 == index_of[r["student"]]]
        assert r["proposals"] == len(mine) and r["audited"] == len(mine)
        assert r["agreed"] == sum(heard[t] for t in mine)
        assert float(r["agreement"]) == pytest.approx(sum(heard[t] for t in mine) / len(mine))
        conf = {x.track_id: x.heard_probability for x in result.rows}
        assert float(r["mean_confidence"]) == pytest.approx(np.mean([conf[t] for t in mine]))
        assert r["flagged"] == sum(1 for x in result.rows if x.flagged and x.track_id in mine)
    assert sum(r["proposals"] for r in by_genre) == len(flat)
    assert {r["genre"] for r in by_genre} == set(GENRES)


def test_audit_needs_two_tracks_per_genre(sqlite_engine):
    with sqlite_engine.begin() as conn:
        fill_separable(conn, genres_=GENRES[:2], per_genre=4)
        tid = add_track(conn, key="lonely", genre="Jazz")
        add_features(conn, tid, "gtzan_csv", separable_values("gtzan_csv", 2, np.random.default_rng(0)))
        create_dataset(conn, "tiny", DatasetDefinition(features="gtzan_csv", top=3, min_per_genre=1))
        with pytest.raises(InputError, match="'Jazz' has only 1 track"):
            run_audit(conn, "tiny")


# --- CLI ---------------------------------------------------------------------------------------------

def test_audit_command_prints_table_and_csv_with_formulas_neutralised(sqlite_engine):
    from music_classifier.cli import app

    with sqlite_engine.begin() as conn:
        flat = seed_class(conn, flips=FLIPS)["flat"]
    db = ["--db", str(sqlite_engine.url)]
    res = CliRunner().invoke(app, [*db, "audit", "class", "--repeats", "1", "--cv", "4"])
    assert res.exit_code == 0, res.output
    assert "3 of 48 tracks flagged" in res.output
    assert "Metal -> Rock" in res.output  # the flipped Rock song 1, sheet genre -> heard genre
    assert "│ 3* " in res.output and "│ 4* " not in res.output
    assert "45 tracks heard as their sheet genre are not listed" in res.output  # not shown as disputes
    # The table fits an 80-column terminal (long cells wrap inside their column).
    assert max(len(line) for line in res.output.splitlines()) <= 80

    res = CliRunner().invoke(app, [*db, "audit", "class", "--repeats", "1", "--cv", "4", "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(rows[0]) == ["rank", "track_id", "artist", "title", "student", "sheet_genre", "heard_genre",
                             "score", "flagged", "settled"]
    assert len(rows) == len(flat)
    assert {int(r["track_id"]) for r in rows[:3]} == {flat[i] for i in FLIPS}
    assert all(not r["student"].startswith("=") for r in rows)
    assert any(r["student"] == "'=cmd|' /C calc'!A0" for r in rows)
    assert float(rows[0]["score"]) >= float(rows[-1]["score"])
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(label_audits.c.id)).all() != []


def test_audit_with_nothing_flagged_says_so_and_lists_no_undisputed_rows(sqlite_engine):
    """Issue 16.7c: a clean audit listed 20 rows like 'Rock -> Rock 0.02' under 'Most disputed labels first'."""
    from music_classifier.cli import app

    with sqlite_engine.begin() as conn:
        seed_class(conn)
        assert run_audit(conn, "class", n_splits=4, n_repeats=1, store=False).disputed == []
    res = CliRunner().invoke(app, ["--db", str(sqlite_engine.url), "audit", "class", "--repeats", "1", "--cv", "4"])
    assert res.exit_code == 0, res.output
    assert "0 of 48 tracks flagged" in res.output and "nothing flagged" in res.output
    assert "Most disputed labels first" not in res.output
    assert not any(f"{g} -> {g}" in res.output for g in GENRES)


@pytest.mark.parametrize("args, message", [
    (["audit", "nosuch"], "dataset 'nosuch' not found"),
    (["audit", "class", "--model", "tree"], "--model 'tree'"),
    (["audit", "class", "--repeats", "0"], "--repeats 0"),
])
def test_audit_command_errors_are_one_line(sqlite_engine, args, message):
    from music_classifier.cli import app

    with sqlite_engine.begin() as conn:
        seed_class(conn)
    res = CliRunner().invoke(app, ["--db", str(sqlite_engine.url), *args])
    assert res.exit_code == 1
    assert message in res.output and len(res.output.strip().splitlines()) == 1
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(label_audits.c.id)).first() is None


def test_csv_of_a_result_only_flagged(sqlite_engine):
    with sqlite_engine.begin() as conn:
        seed_class(conn, flips=FLIPS)
        result = run_audit(conn, "class", n_splits=4, n_repeats=1, store=False)
    lines = audit_csv(result, only_flagged=True).strip().splitlines()
    assert len(lines) == 1 + len(result.flagged)


def test_a_flagged_track_is_heard_as_its_confident_genre_even_when_not_the_most_probable():
    from music_classifier.models.audit import audit_rows
    from music_classifier.models.oof import OutOfFold

    # Track 4 is labelled A: P(A) = 0.55 is its largest, but A's threshold (mean 0.725) is not reached while
    # B's (mean 0.4) is: confidently B. Confident learning flags it, and "heard" must then say B.
    proba = np.array([[0.9, 0.1], [0.75, 0.25], [0.7, 0.3], [0.55, 0.45], [0.6, 0.4], [0.6, 0.4]])
    oof = OutOfFold(track_ids=np.arange(1, 7), labels=np.array(["A", "A", "A", "A", "B", "B"]), classes=["A", "B"],
                    proba=proba, artists=np.array(["x"] * 6), titles=np.array([f"t{i}" for i in range(6)]),
                    n_splits=2, n_repeats=1)
    rows = {r.track_id: r for r in audit_rows(oof, {})}
    assert rows[4].flagged and rows[4].heard_genre == "B" and rows[4].heard_probability == pytest.approx(0.45)
    assert rows[4].rank == 3  # the flag does not move it: tracks 5 and 6 have the lower P(sheet genre), 0.4
    assert [r.track_id for r in sorted(rows.values(), key=lambda r: r.rank)] == [5, 6, 4, 3, 2, 1]
    assert not rows[5].flagged and rows[5].heard_genre == "A"  # labelled B, argmax A, below A's threshold


def test_the_report_lists_the_top_scores_flagged_or_not(sqlite_engine):
    """Issue 18.1: the report's audit table is the audit's order (by score), not only the flagged tracks."""
    from music_classifier.models.report_class import AUDIT_ROWS, class_view

    with sqlite_engine.begin() as conn:
        seed_class(conn, flips=FLIPS)
        stored = run_audit(conn, "class", n_splits=4, n_repeats=1, seed=0)
    with sqlite_engine.connect() as conn:
        view = class_view(conn, {"dataset_name": "class"}, members=None, available=True, misclassified=[])
    shown = view["audit_rows"]
    assert [r.track_id for r in shown] == [r.track_id for r in stored.rows[:AUDIT_ROWS]]
    assert [r.dispute_score for r in shown] == sorted((r.dispute_score for r in shown), reverse=True)
    assert sum(r.flagged for r in shown) == len(FLIPS) < len(shown)  # unflagged rows follow, in score order
    assert f"{AUDIT_ROWS} highest scores are shown, {len(FLIPS)} of them flagged" in view["class_notes"]["audit"]
