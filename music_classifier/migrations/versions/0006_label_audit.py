"""Audit: label issues and per-student views (issue 12).

Revision ID: 0006_label_audit
Revises: 0005_musicnn
Create Date: 2026-11-26
"""

from __future__ import annotations

revision = "0006_label_audit"
down_revision = "0005_musicnn"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reserved for issue 12; filled in by the change that needs it.
    pass


def downgrade() -> None:
    pass
