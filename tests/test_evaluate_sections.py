"""benchmarks/evaluate.py writes every section of EVALUATION.md in one run, the small-data tables give the
95% lower bound, the whole-vs-segments table names each protocol, and no written command or argument names
a path of this machine. The sections' computations are replaced by canned figures: these tests check what
is written, not the figures (the real runs need ../shared/data and minutes of extraction)."""

from __future__ import annotations

import numpy as np
from models_helpers import evaluate_module

from music_classifier.models.cv import summarize


def _score(kind: str, folds: list[float], n: int) -> dict:
    """One model's entry of a `compare --json` file, from the project's own summary."""
    est = summarize(folds, n_splits=5, n_repeats=len(folds) // 5, n=n).as_dict()
    return {**est, "kind": kind, "skipped": None, "fold_accuracy": folds, "macro_f1_mean": 0.5}


def _small_data() -> dict:
    folds = [0.6, 0.7, 0.8, 0.65, 0.75] * 5
    cmp = {"n_tracks": 70, "scores": [_score("rf", folds, 70), _score("logreg", [0.7] * 25, 70)],
           "winner": None, "reason": "no winner: logreg leads rf by 0.000 <= 2 SD (0.150)"}
    est = summarize([0.5, 0.9, 0.7, 0.6, 0.8] * 5, n_splits=5, n_repeats=5, n=52).as_dict()
    return {"compare": cmp, "splits": [{"seed": 0, "accuracy": 0.611, "n_test": 18, "estimate": est}],
            "commands": ["music-classifier --db $DB db upgrade"]}


def test_small_data_tables_give_the_lower_bound_and_close_their_commands():
    ev = evaluate_module()
    small = _small_data()
    text = ev.small_data_markdown(small)
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert "95% lower bound (n)" in rows["model"] and "95% lower bound (n)" in rows["seed"]
    rf = small["compare"]["scores"][0]
    assert rf["lower_bound"] < rf["mean"]
    assert f"| {rf['lower_bound']:.3f} (n=70, {rf['lower_bound_method']}) |" in rows["rf"]
    # Every fold scores 0.7: no spread, so the bound is the Wilson one on the 70 tracks.
    assert "(n=70, Wilson)" in rows["logreg"]
    split = small["splits"][0]["estimate"]
    assert f"| {split['lower_bound']:.3f} (n=52, " in rows["0"]
    assert text.count("```") == 2 and text.rstrip().endswith("```")


def _compare_run(means: list[float], repeats: int, splitter: str, rows: int) -> dict:
    folds = [m for m in means for _ in range(5 * repeats)]
    return {"n_rows": rows, "n_tracks": 70, "splitter": splitter, "n_repeats": repeats,
            "scores": [{"mean": float(np.mean(folds)), "macro_f1_mean": 0.7, "fold_accuracy": folds}]}


def test_whole_vs_segments_table_names_each_protocol():
    ev = evaluate_module()
    clips = {protocol: {"whole": [_compare_run([0.75], repeats, "StratifiedKFold", 70)] * 5,
                        "segments": [_compare_run([0.8], repeats, "StratifiedGroupKFold", 373)] * 5}
             for protocol, repeats in (("single", 1), ("repeated", 5))}
    lines = ev._clips_lines(clips)
    table = [line for line in lines if line.startswith("| whole clip") or line.startswith("| 3 s segments")]
    assert len(table) == 4
    assert "| StratifiedKFold(5) |" in table[0] and "`--repeats 1`" in table[0]
    assert "| 5 x StratifiedGroupKFold(5), repeated |" in table[3]
    assert "+0.050 accuracy with one 5-fold CV per seed, +0.050 with the repeated CV" in "\n".join(lines)


def test_portable_never_names_this_machines_paths(tmp_path):
    ev = evaluate_module()
    shared = ev.ROOT.parent / "shared" / "data" / "audio"
    assert ev.portable(f"scan {shared}/blues --json {tmp_path}/x.json", tmp_path) == \
        "scan ../shared/data/audio/blues --json $WORK/x.json"
    assert ev.portable(str(tmp_path / "cache")) == "$WORK/cache"
    assert ev.portable(str(ev.ROOT / "EVALUATION.md")) == "EVALUATION.md"
    assert ev.portable("--processes") == "--processes"


def test_a_full_run_writes_every_section_once_in_order(tmp_path, monkeypatch):
    ev = evaluate_module()
    sections = ev.excerpt_sections()
    assert set(ev.SECTION_FLAGS) == set(sections)  # every section can also be written alone
    headings = [heading for heading, _, _ in sections.values()]
    assert len(set(headings)) == len(headings) == 4
    tables, clips = tmp_path / "tables", tmp_path / "clips"
    tables.mkdir()
    clips.mkdir()
    monkeypatch.setattr(ev, "TABLES", tables)
    monkeypatch.setattr(ev, "CLIPS", clips)
    ran: list[str] = []

    def canned(name):
        def run(work, processes):
            ran.append(name)
            return {"commands": [f"music-classifier --db $DB {name} {work}/x"], "name": name}
        return run

    monkeypatch.setattr(ev, "run_gtzan", lambda work: canned("gtzan")(work, 1))
    monkeypatch.setattr(ev, "run_spotify", lambda work, sample, n: canned("spotify")(work, 1))
    monkeypatch.setattr(ev, "run_clips", canned("clips"))
    header: list[list[str]] = []

    def write_markdown(path, gtzan, spotify, clips_res, argv, seconds):
        header.append(argv)
        path.write_text("# EVALUATION\n\n## Exact commands\n\n" + "\n".join(clips_res["commands"]) + "\n")

    monkeypatch.setattr(ev, "write_markdown", write_markdown)

    def markdown(heading):
        return lambda res: f"{heading}\n\n{res['name']}: {res['commands'][0]}\n"

    canned_sections = {n: (h, canned(n), markdown(h)) for n, (h, _, _) in sections.items()}
    monkeypatch.setattr(ev, "excerpt_sections", lambda: canned_sections)
    out = tmp_path / "EVAL.md"
    for _ in range(2):  # a second run replaces the sections, never appends them again
        ev.main(["--cache", str(tmp_path / "cache"), "--out", str(out), "--processes", "1"])
    text = out.read_text()
    assert ran == ["gtzan", "spotify", "clips", *sections]  # the second run read every figure from the cache
    positions = [text.index(heading + "\n") for heading in ["## Exact commands", *headings]]
    assert positions == sorted(positions)
    assert all(text.count(heading + "\n") == 1 for heading in headings)
    assert str(tmp_path) not in text and "$WORK/x" in text
    assert header[-1] == ["--cache", "$WORK/cache", "--out", "$WORK/EVAL.md", "--processes", "1"]
