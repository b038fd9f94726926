"""The report's view of the class's music: the interactive map, the label audit, the per-student table
and the nearest neighbours of misclassified tracks.

These read the dataset's CURRENT features (like the t-SNE map before them), restricted to the
model's recorded members. The audit is the dataset's newest stored one (``music-classifier audit``)
when it covers those members; otherwise one is computed for the report and not stored (small
datasets only: above :data:`MAX_REPORT_AUDIT_TRACKS` members the report says how to run it).
Anything that cannot be computed leaves a note; the rest of the report stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from music_classifier.errors import InputError

MAX_REPORT_AUDIT_TRACKS = 3000
REPORT_AUDIT_REPEATS = 2
AUDIT_ROWS = 15
NEIGHBOURS = 3


def _audit_for_report(conn: Connection, dataset: str, members: set[int] | None, seed: int) -> tuple[Any, str]:
    from music_classifier.models.audit import latest_audit, run_audit

    stored = latest_audit(conn, dataset)
    if stored is not None and (members is None or members <= {r.track_id for r in stored.rows}):
        rows = [r for r in stored.rows if members is None or r.track_id in members]
        stored.rows = [replace(r, rank=i) for i, r in enumerate(rows, start=1)]
        return stored, f"Stored audit {stored.audit_id} of dataset {dataset} ({str(stored.created_at)[:16]}): "
    n = len(members) if members is not None else None
    if n is not None and n > MAX_REPORT_AUDIT_TRACKS:
        return None, (f"No stored audit of dataset {dataset}; with {n} tracks it is not computed for the report: "
                      f"run music-classifier audit {dataset} first.")
    result = run_audit(conn, dataset, kind="rf", n_repeats=REPORT_AUDIT_REPEATS, seed=seed, store=False)
    if members is not None:
        rows = [r for r in result.rows if r.track_id in members]
        result.rows = [replace(r, rank=i) for i, r in enumerate(rows, start=1)]
    return result, (f"Computed for this report and not stored (music-classifier audit {dataset} stores one, "
                    "joinable in SQL as label_issues): ")


def _feature_set(definition: Mapping[str, Any]) -> str:
    # A segment dataset's sets have per-track values too (the same extractions store both).
    return str(definition.get("features") or "librosa")


def class_view(conn: Connection, row: Mapping[str, Any], *, members: set[int] | None, available: bool,
               misclassified: Sequence[Mapping[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Template values: ``track_map`` (HTML fragment or ""), ``audit``, ``audit_rows``, ``students``,
    ``neighbours`` (track id -> list), and ``class_notes`` (section -> text)."""
    from markupsafe import Markup

    from music_classifier.models.audit import student_rows
    from music_classifier.models.similar import neighbours_of
    from music_classifier.models.track_map import dataset_map_data, map_html_fragment

    dataset = row["dataset_name"]
    out: dict[str, Any] = {"track_map": "", "audit": None, "audit_rows": [], "students": [], "neighbours": {},
                           "class_notes": {}}
    notes = out["class_notes"]
    if not available:
        gone = (f"Dataset {dataset!r} is no longer stored, so its feature values are unavailable; every other "
                "figure comes from the stored run.")
        notes.update(map=gone, audit=gone, students=gone)
        return out

    audit = None
    try:
        audit, source = _audit_for_report(conn, dataset, members, seed)
    except InputError as exc:
        source = ""
        notes["audit"] = notes["students"] = f"No label audit: {exc}"
    if audit is not None:
        out["audit"] = audit
        # The order of `music-classifier audit`: by score alone, highest first; the flag is a column.
        out["audit_rows"] = audit.rows[:AUDIT_ROWS]
        out["students"] = student_rows(audit)
        shown_flagged = sum(r.flagged for r in out["audit_rows"])
        notes["audit"] = (f"{source}{audit.kind}, {audit.n_repeats} x {audit.n_splits}-fold out-of-fold "
                          f"probabilities; confident learning flags {len(audit.flagged)} of {len(audit.rows)} tracks "
                          f"(out-of-fold accuracy against the sheet {audit.accuracy:.3f}). The "
                          f"{len(out['audit_rows'])} highest scores are shown, {shown_flagged} of them flagged.")

    try:
        data = dataset_map_data(conn, dataset, seed=seed, track_ids=members, audit=audit)
        out["track_map"] = Markup(map_html_fragment(data, title=f"Tracks of {dataset}"))  # noqa: S704 - escaped there
    except InputError as exc:
        notes["map"] = f"No map: {exc}"

    if misclassified and members:
        try:
            out["neighbours"] = neighbours_of(conn, [int(p["track_id"]) for p in misclassified], within=members,
                                              features=_feature_set((row.get("dataset_snapshot") or {})
                                                                    .get("definition") or {}), k=NEIGHBOURS)
        except InputError as exc:
            notes["neighbours"] = f"Nearest tracks unavailable: {exc}"
    return out
