"""A throwaway schema in the test PostgreSQL for the benchmarks that need a database of their own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Schema(NamedTuple):
    name: str
    url: str  # the database's URL with its search_path set to the schema


def schema_url(url: str, schema: str) -> str:
    """``url`` with its search_path set to ``schema`` (what the app's engine then reads and writes)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def scratch_schema(prefix: str, url: str = POSTGRES_URL) -> Iterator[Schema]:
    """A fresh, empty schema ``<prefix>_<pid>_<random>`` in the database at ``url``, dropped (CASCADE) on the
    way out, whatever happened inside: a failed run leaves nothing behind."""
    from music_classifier.db.engine import make_engine

    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        yield Schema(name, schema_url(url, name))
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()
