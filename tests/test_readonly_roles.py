"""PostgreSQL `sql`: the role cannot be escaped (issue 10 items 1 and 2).

The code-execution probe is reproduced as an attack: `COPY ... TO PROGRAM` through a URL whose query
string names the superuser, through a privileged MUSIC_CLASSIFIER_READONLY_URL, and through a role of
the read-only role's name that already held more rights. Each must be refused and the shell command
must not run (no file appears in a directory the server could write).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert
from test_sql_readonly import _invoke, _pg_engine, _seed, _url, class_role, drop_role
from typer.testing import CliRunner

from music_classifier.db.readonly import run_readonly_query
from music_classifier.db.readonly_roles import MAX_IDENTIFIER, readonly_role_name
from music_classifier.db.tables import students
from music_classifier.errors import ConfigError, InputError

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_db(pg_schema_url):
    """A migrated schema with three tracks, and its class role from `db grant-readonly` (dropped afterwards)."""
    engine = _pg_engine(pg_schema_url)
    yield _seed(engine)
    drop_role(engine, class_role(engine))
    engine.dispose()


@pytest.fixture
def server_dir():
    """A directory the PostgreSQL server process could write into, were it asked to."""
    path = Path(tempfile.mkdtemp(prefix="mc_probe_", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _one_line_error(result, starts: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {starts}"), result.output
    return lines[0]


def _sql_cli(database_url: str, query: str, **env: str | None):
    from music_classifier.cli import app

    env = {"MUSIC_CLASSIFIER_READONLY_ROLE": None, "MUSIC_CLASSIFIER_READONLY_URL": None, **env}
    return CliRunner().invoke(app, ["--db", database_url, "sql", query], env=env)


def test_user_in_the_url_query_string_cannot_pick_the_role(pg_db, server_dir):
    pwned = server_dir / "pwned.txt"
    copy = f"COPY (SELECT 1) TO PROGRAM 'id > {pwned}'"
    for attack_url in (_url(pg_db) + "&user=postgres", _url(pg_db) + "&dbname=postgres&user=postgres"):
        with pytest.raises(InputError, match="^query refused: must be superuser or have privileges of the "
                                             "pg_execute_server_program role"):
            run_readonly_query(attack_url, copy)
        with pytest.raises(InputError, match="^query refused: permission denied"):
            run_readonly_query(attack_url, "SELECT pg_read_file('/etc/hostname')")
        assert run_readonly_query(attack_url, "SELECT current_user, current_schema()").rows == [
            (class_role(pg_db), pg_db.url.query["options"].split("=")[-1])]
        _one_line_error(_sql_cli(attack_url, copy), "query refused: must be superuser")
    # options=-c role=postgres: the role is not a member of postgres, so the server refuses the connection
    with pytest.raises(ConfigError, match="^cannot connect as read-only role"):
        run_readonly_query(_url(pg_db).replace("options=", "options=-crole%3Dpostgres%20"), copy)
    assert not pwned.exists()


def test_a_privileged_readonly_url_is_refused_before_the_query_runs(pg_db, server_dir):
    pwned = server_dir / "pwned.txt"
    copy = f"COPY (SELECT 1) TO PROGRAM 'id > {pwned}'"
    superuser_url = pg_db.url.set(query={}).render_as_string(hide_password=False)
    with pytest.raises(ConfigError, match=r"^refusing to query as 'postgres': it is not read-only \(superuser"):
        run_readonly_query(_url(pg_db), copy, readonly_url=superuser_url)
    line = _one_line_error(_sql_cli(_url(pg_db), copy, MUSIC_CLASSIFIER_READONLY_URL=superuser_url),
                           "refusing to query as 'postgres'")
    assert "pg_execute_server_program" in line
    assert not pwned.exists()


def test_a_squatted_role_name_is_neither_reused_nor_queried_as(pg_schema_url, server_dir):
    """A role of the class role's name, made before `db grant-readonly` with more rights, is refused."""
    engine = _pg_engine(pg_schema_url)
    role = class_role(engine)
    pwned = server_dir / "pwned.txt"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE ROLE "{role}" LOGIN')
            conn.exec_driver_sql(f'GRANT pg_execute_server_program TO "{role}"')
        _one_line_error(_invoke(engine, "db", "grant-readonly"), f"role '{role}' already exists and is not this class")
        with engine.connect() as conn:  # nothing was granted
            assert not conn.exec_driver_sql("SELECT has_schema_privilege(%(r)s, current_schema(), 'USAGE')",
                                            {"r": role}).scalar()
        with pytest.raises(ConfigError, match="it is not read-only .*member of pg_execute_server_program"):
            run_readonly_query(_url(engine), f"COPY (SELECT 1) TO PROGRAM 'id > {pwned}'")
        assert not pwned.exists()
    finally:
        drop_role(engine, role)
        engine.dispose()


@pytest.mark.parametrize(("grant", "problem"), [
    ("GRANT INSERT ON tracks TO {role}", r"may write mc_\w+\.tracks"),
    ("GRANT pg_read_server_files TO {role}", "member of pg_read_server_files"),
    ("GRANT postgres TO {role}", r"superuser \(itself or a role it may SET ROLE to\)"),
])
def test_a_class_role_given_more_rights_later_is_refused(pg_db, grant, problem):
    role = class_role(pg_db)
    with pg_db.begin() as conn:
        conn.exec_driver_sql(grant.format(role=f'"{role}"'))
    with pytest.raises(ConfigError, match=f"^refusing to query as '{role}': it is not read-only .*{problem}"):
        run_readonly_query(_url(pg_db), "SELECT pg_read_file('/etc/hostname')")
    line = _one_line_error(_invoke(pg_db, "db", "grant-readonly"), f"role '{role}' is not read-only")
    assert "nothing was granted" in line


def test_each_class_schema_gets_its_own_role(pg_db):
    """Class A's `sql` cannot read class B's students, and a role made for A is never reused for B."""
    schema_b = f"mc_b_{uuid.uuid4().hex[:10]}"
    with pg_db.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema_b}"')
    url_b = pg_db.url.update_query_dict({"options": f"-csearch_path={schema_b}"}).render_as_string(
        hide_password=False)
    engine_b = _pg_engine(url_b)
    try:
        _seed(engine_b)
        with engine_b.begin() as conn:
            conn.execute(insert(students).values(name="Bea from class B"))
        role_a, role_b = class_role(pg_db), class_role(engine_b)
        assert role_a != role_b
        assert run_readonly_query(url_b, "SELECT name FROM students").rows == [("Bea from class B",)]
        with pytest.raises(InputError, match="^query refused: permission denied for schema"):
            run_readonly_query(_url(pg_db), f'SELECT name FROM "{schema_b}".students')
        # Reusing A's role for B by name is refused, and nothing is granted.
        line = _one_line_error(_invoke(engine_b, "db", "grant-readonly", "--role", role_a),
                               f"role '{role_a}' already exists and is not this class's read-only role")
        assert pg_db.url.query["options"].split("=")[-1] in line
        with pytest.raises(InputError, match="^query refused: permission denied for schema"):
            run_readonly_query(_url(pg_db), f'SELECT name FROM "{schema_b}".students')
    finally:
        drop_role(engine_b, class_role(engine_b))
        with pg_db.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema_b}" CASCADE')
        engine_b.dispose()


def test_role_names_are_short_distinct_and_valid():
    long_db, long_schema = "class_" + "d" * 57, "s" * 63
    names = {readonly_role_name(long_db, long_schema), readonly_role_name(long_db, long_schema[:-1]),
             readonly_role_name("Class", "a"), readonly_role_name("class", "a"), readonly_role_name("music", "lab-2")}
    assert len(names) == 5
    assert all(len(n) <= MAX_IDENTIFIER and n.startswith("mc_ro_") for n in names)
    assert readonly_role_name("music", "lab-2") == readonly_role_name("music", "lab-2")
