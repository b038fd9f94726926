"""SQL tables (SQLAlchemy Core). The migrations are the source of truth for the schema; these
definitions mirror them for queries. One MetaData naming convention gives every constraint the
same name on SQLite and PostgreSQL, which batch migrations need to find them again.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    column,
    func,
    table,
)

from music_classifier.db.feature_columns import WIDE_STORES_LATEST

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

TRACK_SOURCES = ("sheet", "file", "spotify_playlist", "csv")
FEATURE_ONLY_SOURCES = ("csv",)  # tracks imported with their features (features import-csv): no audio by design
AUDIO_ORIGINS = ("sheet", "link")  # tracks.audio_origin: a person chose the path (NULL: the scan found it)
MAX_TEXT = 300  # artist, title, student name: longer values are rejected as bad rows
MAX_GENRE = 64

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


students = Table(
    "students",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(MAX_TEXT), nullable=False),
    UniqueConstraint("name"),
)

tracks = Table(
    "tracks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source", String(20), nullable=False),
    # Identity within a source: normalised "artist\x1ftitle" for sheet and file tracks, the Spotify id
    # for playlist and CSV tracks. Re-syncs upsert on (source, track_key), which makes them idempotent.
    Column("track_key", String(700), nullable=False),
    Column("artist", String(MAX_TEXT), nullable=False),
    Column("title", String(MAX_TEXT), nullable=False),
    Column("song", String(700), nullable=False),
    Column("audio_path", String(1024), nullable=True),  # relative to the library root, POSIX separators
    Column("file_sha256", String(64), nullable=True),
    # Who chose audio_path when a person did: 'sheet' (the sheet's file column) or 'link' (`audio link`);
    # NULL when the scan found it. The scan never moves such a path nor gives its file to another track.
    Column("audio_origin", String(10), nullable=True),
    Column("duration_s", Float, nullable=True),
    Column("sample_rate", Integer, nullable=True),
    Column("channels", SmallInteger, nullable=True),
    Column("spotify_id", String(64), nullable=True),
    Column("spotify_match_score", Float, nullable=True),  # 0..1, how well search/dataset matched artist+title
    Column("spotify_lookup", String(20), nullable=True),  # found | not_found | dataset
    Column("playlist_id", String(64), nullable=True),  # the playlist a track came from (playlist-grouped CV)
    Column("removed_at", DateTime(timezone=True), nullable=True),
    *_timestamps(),
    UniqueConstraint("source", "track_key"),
    UniqueConstraint("audio_path"),
    CheckConstraint("source IN ('sheet', 'file', 'spotify_playlist', 'csv')", name="source"),
    CheckConstraint("audio_origin IN ('sheet', 'link')", name="audio_origin"),
)

proposals = Table(
    "proposals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("student_id", Integer, ForeignKey("students.id", ondelete="CASCADE"), nullable=False),
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False),
    Column("sheet_row", Integer, nullable=False),
    UniqueConstraint("student_id", "track_id"),
)

genres = Table(
    "genres",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(MAX_GENRE), nullable=False),  # normalised key, e.g. "hiphop"
    Column("display_name", String(MAX_GENRE), nullable=False),  # e.g. "Hip-Hop"
    UniqueConstraint("name"),
)

genre_aliases = Table(
    "genre_aliases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alias", String(MAX_GENRE), nullable=False),  # normalised spelling, e.g. "indirock"
    Column("genre_id", Integer, ForeignKey("genres.id", ondelete="CASCADE"), nullable=False),
    UniqueConstraint("alias"),
)

track_genres = Table(
    "track_genres",
    metadata,
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    Column("rank", SmallInteger, primary_key=True),  # 0 = coarse genre, 1..3 = subgenres
    Column("genre_id", Integer, ForeignKey("genres.id", ondelete="RESTRICT"), nullable=False),
    CheckConstraint("rank BETWEEN 0 AND 3", name="rank"),
)



EXTRACTION_STATUSES = ("queued", "running", "done", "failed", "stale")

extractions = Table(
    "extractions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False),
    Column("extractor", String(40), nullable=False),  # librosa | spotify | gtzan_csv
    Column("version", String(20), nullable=False),
    Column("params_hash", String(32), nullable=False),  # whole track and --excerpt 30 are different params
    Column("params", JSON, nullable=True),
    Column("status", String(10), nullable=False, server_default="queued"),
    Column("error", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("worker", String(200), nullable=True),
    Column("rq_job_id", String(64), nullable=True),
    Column("queued_at", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("seconds", Float, nullable=True),
    UniqueConstraint("track_id", "extractor", "version", "params_hash"),
    CheckConstraint("status IN ('queued', 'running', 'done', 'failed', 'stale')", name="status"),
)

# Feature values (since migration 0009): one wide table per extractor, one Float column per declared
# feature name (db/feature_columns.py WIDE_STORES_LATEST), and one per extractor with segments, one row per
# (extraction, segment). The long shape `features` / `segment_features` (extraction, name, value) is a
# view over them for SQL users (db/views.py long_view_sql); write through db/values.py.


def _wide_values(name: str, columns: list[str], *, segments: bool) -> Table:
    """One row per extraction (per segment): one Float column per feature (see feature_columns.WideStore)."""
    key = [Column("extraction_id", Integer, ForeignKey("extractions.id", ondelete="CASCADE"), primary_key=True)]
    if segments:
        key += [Column("segment", Integer, primary_key=True), Column("start_s", Float, nullable=False)]
    return Table(name, metadata, *key, *(Column(c, Float, nullable=True) for c in columns))


#: extractor -> (per-track table, per-segment table or None): every extractor's values.
wide_values: dict[str, tuple[Table, Table | None]] = {
    extractor: (_wide_values(store.table, store.columns, segments=False),
                _wide_values(store.segment_table, store.columns, segments=True) if store.segment_table else None)
    for extractor, store in WIDE_STORES_LATEST.items()
}
musicnn_values, musicnn_segment_values = wide_values["musicnn"]
librosa_values, librosa_segment_values = wide_values["librosa"]

# The long views over them (for queries only: not part of the metadata, so nothing takes them for tables).
features = table("features", column("extraction_id", Integer), column("name", String), column("value", Float))
segment_features = table("segment_features", column("extraction_id", Integer), column("segment", Integer),
                         column("start_s", Float), column("name", String), column("value", Float))

service_state = Table(
    "service_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(41), nullable=False),
    Column("definition", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("name"),
)

dataset_members = Table(
    "dataset_members",
    metadata,
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    Column("genre_id", Integer, ForeignKey("genres.id", ondelete="RESTRICT"), nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True),
    Column("dataset_name", String(41), nullable=False),
    Column("dataset_snapshot", JSON, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("params", JSON, nullable=False),
    Column("best_params", JSON, nullable=True),
    Column("cv_score", Float, nullable=True),
    Column("test_metrics", JSON, nullable=True),
    Column("feature_names", JSON, nullable=False),
    Column("feature_importances", JSON, nullable=True),
    Column("versions", JSON, nullable=False),
    Column("file_path", String(1024), nullable=True),
    Column("file_sha256", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="SET NULL"), nullable=True),
    Column("file_path", String(1024), nullable=True),
    Column("genre", String(64), nullable=False),
    Column("probabilities", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The label audit (migration 0006): one row per audit run, one row per audited track. Views
# student_summary and student_genres (db/views.py AUDIT_VIEWS) read the newest audit.
label_audits = Table(
    "label_audits",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True),
    Column("dataset_name", String(41), nullable=False),
    Column("model_kind", String(20), nullable=False),
    Column("params", JSON, nullable=False),
    Column("n_tracks", Integer, nullable=False),
    Column("n_flagged", Integer, nullable=False),
    Column("accuracy", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

label_issues = Table(
    "label_issues",
    metadata,
    Column("audit_id", Integer, ForeignKey("label_audits.id", ondelete="CASCADE"), primary_key=True),
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("rank", Integer, nullable=False),
    Column("sheet_genre", String(MAX_GENRE), nullable=False),
    Column("heard_genre", String(MAX_GENRE), nullable=False),
    Column("sheet_probability", Float, nullable=False),
    Column("heard_probability", Float, nullable=False),
    Column("dispute_score", Float, nullable=False),
    Column("flagged", Boolean, nullable=False),
)

# Label decisions (migration 0007): append-only. A teacher's 'set' (another genre) or 'keep' (the sheet's
# genre confirmed) per track; an 'undo' row cancels the decision it names (undoes_id). The view
# track_effective_genres (db/views.py DECISION_VIEWS) gives each live track its latest standing decision's
# genre, else the sheet's coarse genre. The sheet's own rows (track_genres, proposals) are never changed.
DECISION_ACTIONS = ("set", "keep", "undo")

label_decisions = Table(
    "label_decisions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("action", String(10), nullable=False),
    Column("genre_before_id", Integer, ForeignKey("genres.id", ondelete="RESTRICT"), nullable=True),
    Column("genre_id", Integer, ForeignKey("genres.id", ondelete="RESTRICT"), nullable=True),  # NULL for undo
    Column("undoes_id", Integer, ForeignKey("label_decisions.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("decided_by", String(MAX_TEXT), nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("audit_id", Integer, ForeignKey("label_audits.id", ondelete="SET NULL"), nullable=True),
    Column("note", Text, nullable=True),
    CheckConstraint("action IN ('set', 'keep', 'undo')", name="action"),
)

# Members of a dataset whose genre came from a label decision when the dataset was created.
dataset_member_decisions = Table(
    "dataset_member_decisions",
    metadata,
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    Column("track_id", Integer, ForeignKey("tracks.id", ondelete="CASCADE"), primary_key=True),
    Column("decision_id", Integer, ForeignKey("label_decisions.id", ondelete="CASCADE"), nullable=False),
)

# The view track_effective_genres (db/views.py DECISION_VIEWS), for queries: not part of the metadata, so
# nothing takes it for a table.
track_effective_genres = table(
    "track_effective_genres",
    column("track_id", Integer), column("genre_id", Integer), column("genre", String),
    column("sheet_genre_id", Integer), column("sheet_genre", String), column("decided_genre_id", Integer),
    column("decision_id", Integer), column("decision", String),
)
