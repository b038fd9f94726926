"""Models: datasets and their members, the model registry, predictions.

Revision ID: 0003_models
Revises: 0002_features
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_models"
down_revision = "0002_features"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer),
        sa.Column("name", sa.String(41), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),  # features, segments, top, min/max per genre, sources, seed
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", name=op.f("uq_datasets_name")),
    )
    op.create_table(
        "dataset_members",
        sa.Column("dataset_id", sa.Integer, nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("genre_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("dataset_id", "track_id", name=op.f("pk_dataset_members")),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE",
                                name=op.f("fk_dataset_members_dataset_id_datasets")),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="CASCADE",
                                name=op.f("fk_dataset_members_track_id_tracks")),
        sa.ForeignKeyConstraint(["genre_id"], ["genres.id"], ondelete="RESTRICT",
                                name=op.f("fk_dataset_members_genre_id_genres")),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer),
        # The dataset may be dropped later; the snapshot keeps what the model was trained on.
        sa.Column("dataset_id", sa.Integer, nullable=True),
        sa.Column("dataset_name", sa.String(41), nullable=False),
        sa.Column("dataset_snapshot", sa.JSON, nullable=False),  # definition + member track ids and genres
        sa.Column("kind", sa.String(20), nullable=False),  # rf | logreg | svm | hgb | knn
        sa.Column("params", sa.JSON, nullable=False),  # training options (cv, test size, grouping, seed, grid)
        sa.Column("best_params", sa.JSON, nullable=True),
        sa.Column("cv_score", sa.Float, nullable=True),
        sa.Column("test_metrics", sa.JSON, nullable=True),
        sa.Column("feature_names", sa.JSON, nullable=False),
        sa.Column("feature_importances", sa.JSON, nullable=True),
        sa.Column("versions", sa.JSON, nullable=False),  # python, sklearn, numpy, ... at training time
        sa.Column("file_path", sa.String(1024), nullable=True),
        sa.Column("file_sha256", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="SET NULL",
                                name=op.f("fk_models_dataset_id_datasets")),
    )
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("track_id", sa.Integer, nullable=True),
        sa.Column("file_path", sa.String(1024), nullable=True),
        sa.Column("genre", sa.String(64), nullable=False),
        sa.Column("probabilities", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], ondelete="CASCADE",
                                name=op.f("fk_predictions_model_id_models")),
        sa.ForeignKeyConstraint(["track_id"], ["tracks.id"], ondelete="SET NULL",
                                name=op.f("fk_predictions_track_id_tracks")),
    )


def downgrade() -> None:
    conn = op.get_bind()
    for (name,) in conn.execute(sa.text("SELECT name FROM datasets")):
        op.execute(f'DROP VIEW IF EXISTS "dataset_{name}"')
    op.drop_table("predictions")
    op.drop_table("models")
    op.drop_table("dataset_members")
    op.drop_table("datasets")
