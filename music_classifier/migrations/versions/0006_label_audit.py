"""Audit: label audits, their per-track rows (label_issues), per-student views (issue 12).

Revision ID: 0006_label_audit
Revises: 0005_musicnn
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from music_classifier.db.views import AUDIT_VIEWS

revision = "0006_label_audit"
down_revision = "0005_musicnn"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_audits",
        sa.Column("id", sa.Integer),
        sa.Column("dataset_id", sa.Integer, nullable=True),  # the dataset may be dropped later
        sa.Column("dataset_name", sa.String(41), nullable=False),
        sa.Column("model_kind", sa.String(20), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),  # folds, repeats, seed, classifier parameters, method
        sa.Column("n_tracks", sa.Integer, nullable=False),
        sa.Column("n_flagged", sa.Integer, nullable=False),
        sa.Column("accuracy", sa.Float, nullable=True),  # out-of-fold accuracy against the sheet labels
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_audits")),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="SET NULL",
                                name=op.f("fk_label_audits_dataset_id_datasets")),
    )
    op.create_table(
        "label_issues",
        sa.Column("audit_id", sa.Integer, nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("rank", sa.Integer, nullable=False),  # 1 = the label the audio disputes most
        sa.Column("sheet_genre", sa.String(64), nullable=False),
        sa.Column("heard_genre", sa.String(64), nullable=False),  # out-of-fold argmax
        sa.Column("sheet_probability", sa.Float, nullable=False),  # out-of-fold P(sheet genre)
        sa.Column("heard_probability", sa.Float, nullable=False),  # out-of-fold P(heard genre)
        sa.Column("dispute_score", sa.Float, nullable=False),  # 1 - sheet_probability
        sa.Column("flagged", sa.Boolean, nullable=False),  # an off-diagonal entry of the confident joint
        sa.PrimaryKeyConstraint("audit_id", "track_id", name=op.f("pk_label_issues")),
        sa.ForeignKeyConstraint(["audit_id"], ["label_audits.id"], ondelete="CASCADE",
                                name=op.f("fk_label_issues_audit_id_label_audits")),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE",
                                name=op.f("fk_label_issues_track_id_tracks")),
    )
    op.create_index(op.f("ix_label_issues_track_id"), "label_issues", ["track_id"])
    for sql in AUDIT_VIEWS.values():
        op.execute(sql)


def downgrade() -> None:
    for name in AUDIT_VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index(op.f("ix_label_issues_track_id"), table_name="label_issues")
    op.drop_table("label_issues")
    op.drop_table("label_audits")
