"""Shared fixtures: the same tests run on SQLite and on PostgreSQL.

PostgreSQL tests each get a schema of their own (``mc_<pid>_<n>``, dropped afterwards) in the
database at ``TEST_POSTGRES_URL`` (default 127.0.0.1:5432/test), so parallel runs never collide.
Under ``CI=1`` a missing PostgreSQL or Redis fails the test; on a bare laptop it skips with a reason.
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

# One thread per math library in every test process and the workers it starts. The suite runs one pytest-xdist
# worker per core; OpenMP teams (HistGradientBoosting, BLAS) sized to every core in each of them spin-wait on one
# another: one HGB training test took 17 s with them and 3.5 s without on 2 busy cores. Set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

from music_classifier.db import migrate  # noqa: E402
from music_classifier.db.engine import make_engine  # noqa: E402

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")
_schema_counter = itertools.count()


def unavailable(what: str, why: str) -> None:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is required under CI=1 but unavailable: {why}")
    pytest.skip(f"{what} unavailable: {why}")


def _postgres_admin_engine():
    engine = make_engine(POSTGRES_URL, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        engine.dispose()
        unavailable("PostgreSQL", str(exc).splitlines()[0])
    return engine


def postgres_schema_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema_url():
    """A URL whose search_path is a fresh, empty schema; dropped after the test."""
    admin = _postgres_admin_engine()
    schema = f"mc_{os.getpid()}_{next(_schema_counter)}_{uuid.uuid4().hex[:6]}"
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    yield postgres_schema_url(schema)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    admin.dispose()


@pytest.fixture(autouse=True)
def models_dir(tmp_path, monkeypatch) -> Path:
    """The models directory is the test's own: models stored under tmp_path load (the loader refuses
    files outside MUSIC_CLASSIFIER_MODELS_DIR), and nothing is written to the working directory."""
    monkeypatch.setenv("MUSIC_CLASSIFIER_MODELS_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """An empty database of each kind (no schema yet)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def engine(db_url):
    """An engine on a fresh database migrated to head."""
    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def redis_url() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        unavailable("Redis", str(exc).splitlines()[0])
    return REDIS_URL


@pytest.fixture(scope="session")
def warm_numba() -> None:
    """The librosa extractor's numba kernels compiled into NUMBA_CACHE_DIR once per session, before any test
    starts a worker or a pool: on a cold cache on a busy machine the first compile takes a minute, which
    must not land inside a test waiting for a subprocess (children inherit NUMBA_CACHE_DIR and only load)."""
    from music_classifier.features.numba_cache import warm_numba_cache

    warm_numba_cache()


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def musicnn_checkpoint() -> Path:
    """The installed musicnn package's MSD_musicnn folder (``pip install --no-deps musicnn==0.1.0``)."""
    from music_classifier.features.musicnn.errors import MusicnnError
    from music_classifier.features.musicnn.weights import checkpoint_dir

    try:
        return checkpoint_dir()
    except MusicnnError as exc:
        unavailable("the musicnn package", str(exc))
