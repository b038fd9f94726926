"""Prefix indexes for the tracks page's short searches (issue 18), PostgreSQL only.

A search of one or two characters holds no trigram, so the trigram indexes of migration 0008 cannot
serve it, and a "contains" search for such a text reads every track. The tracks page therefore matches
a text of 1-2 characters at the start of the artist or of the title (``db/browse.py``:
``lower(artist) LIKE lower('ab%')``), which these two B-tree indexes serve as a range scan. They hold
exactly the expressions the search compares; ``text_pattern_ops`` because a database whose collation is
not ``C`` cannot use a default B-tree for ``LIKE 'ab%'`` (its order is not the characters' order).

SQLite gets none: its search compares a Python function (``str.lower``) no index holds, and its
libraries are small.

Revision ID: 0010_short_search
Revises: 0009_wide_features
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0010_short_search"
down_revision = "0009_wide_features"
branch_labels = None
depends_on = None

#: index name -> the expression it holds; db/browse.py's short search compares exactly these.
PREFIX_INDEXES = {"ix_tracks_artist_prefix": "lower(artist)", "ix_tracks_title_prefix": "lower(title)"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, expression in PREFIX_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON tracks ({expression} text_pattern_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in PREFIX_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
