"""Features: the musicnn extractor's tables and views (issue 11).

Revision ID: 0005_musicnn
Revises: 0004_ingest_files
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0005_musicnn"
down_revision = "0004_ingest_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reserved for issue 11; filled in by the change that needs it.
    pass


def downgrade() -> None:
    pass
