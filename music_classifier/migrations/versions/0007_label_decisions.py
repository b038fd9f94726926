"""Label decisions: the append-only table label_decisions, the members of a dataset that took a decided
genre, and the view track_effective_genres (issue 18, item 2).

Only new tables and a new view: nothing existing is altered, so no batch table rebuild is needed.

Revision ID: 0007_label_decisions
Revises: 0006_label_audit
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from music_classifier.db.views import DECISION_VIEWS

revision = "0007_label_decisions"
down_revision = "0006_label_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_decisions",
        sa.Column("id", sa.Integer),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("action", sa.String(10), nullable=False),  # set | keep | undo
        sa.Column("genre_before_id", sa.Integer, nullable=True),  # the sheet's coarse genre when decided
        sa.Column("genre_id", sa.Integer, nullable=True),  # the genre decided (NULL for undo)
        sa.Column("undoes_id", sa.Integer, nullable=True),  # the decision an undo row cancels
        sa.Column("decided_by", sa.String(300), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("audit_id", sa.Integer, nullable=True),  # the label audit the decision came from
        sa.Column("note", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_decisions")),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE",
                                name=op.f("fk_label_decisions_track_id_tracks")),
        sa.ForeignKeyConstraint(["genre_before_id"], ["genres.id"], ondelete="RESTRICT",
                                name=op.f("fk_label_decisions_genre_before_id_genres")),
        sa.ForeignKeyConstraint(["genre_id"], ["genres.id"], ondelete="RESTRICT",
                                name=op.f("fk_label_decisions_genre_id_genres")),
        sa.ForeignKeyConstraint(["undoes_id"], ["label_decisions.id"], ondelete="CASCADE",
                                name=op.f("fk_label_decisions_undoes_id_label_decisions")),
        sa.ForeignKeyConstraint(["audit_id"], ["label_audits.id"], ondelete="SET NULL",
                                name=op.f("fk_label_decisions_audit_id_label_audits")),
        sa.CheckConstraint("action IN ('set', 'keep', 'undo')", name=op.f("ck_label_decisions_action")),
    )
    op.create_index(op.f("ix_label_decisions_track_id"), "label_decisions", ["track_id"])
    op.create_index(op.f("ix_label_decisions_undoes_id"), "label_decisions", ["undoes_id"])
    op.create_table(
        "dataset_member_decisions",
        sa.Column("dataset_id", sa.Integer, nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("decision_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "track_id", name=op.f("pk_dataset_member_decisions")),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE",
                                name=op.f("fk_dataset_member_decisions_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE",
                                name=op.f("fk_dataset_member_decisions_track_id_tracks")),
        sa.ForeignKeyConstraint(["decision_id"], ["label_decisions.id"], ondelete="CASCADE",
                                name=op.f("fk_dataset_member_decisions_decision_id_label_decisions")),
    )
    for sql in DECISION_VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in DECISION_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("dataset_member_decisions")
    op.drop_index(op.f("ix_label_decisions_undoes_id"), table_name="label_decisions")
    op.drop_index(op.f("ix_label_decisions_track_id"), table_name="label_decisions")
    op.drop_table("label_decisions")
