"""Ingest: a sheet row's own audio file (issue 8).

Revision ID: 0004_ingest_files
Revises: 0003_models
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0004_ingest_files"
down_revision = "0003_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reserved for issue 8; filled in by the change that needs it.
    pass


def downgrade() -> None:
    pass
