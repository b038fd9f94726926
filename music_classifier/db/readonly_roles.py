"""PostgreSQL read-only roles: one per database and schema, verified before every use.

Roles are cluster-wide, so a single read-only role granted in every class's schema lets class A
read class B's students. Each (database, schema) therefore gets its own role, named by
:func:`readonly_role_name`, and marked with a role comment naming its database and schema
(role comments are cluster-wide too, so the mark is visible from every database).
:func:`ensure_readonly_role` refuses a role that exists without this class's mark, holds more than
SELECT, or can read tables outside its schema. :func:`privilege_problems` is the check both the
grant and every `sql` session run: not superuser (nor CREATEROLE, CREATEDB, REPLICATION,
BYPASSRLS), not a member of the roles that reach the server's files and programs or all data, no
INSERT/UPDATE/DELETE/TRUNCATE on any table.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from music_classifier.errors import ConfigError

ROLE_PREFIX = "mc_ro"
MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MARK = "music-classifier read-only role for database {database!r}, schema {schema!r}"
# Members of these reach the server's programs and files, or every table whatever its grants.
DANGEROUS_ROLES = ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files",
                   "pg_read_all_data", "pg_write_all_data")
_USER_TABLES = ("c.relkind IN ('r', 'p', 'f', 'v', 'm') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'")

# One query: what the role, or any role it may SET ROLE to (pg_has_role MEMBER, transitive; a
# superuser is a member of every role), has among the dangerous attributes and memberships, and (up
# to 3 of) the tables they may write. Pyformat parameters, so that it runs on a SQLAlchemy connection
# (exec_driver_sql) and on a bare psycopg one alike; role = NULL means the session's current_user.
PRIVILEGES_SQL = f"""
WITH r AS (SELECT oid, rolname FROM pg_roles WHERE rolname = coalesce(%(role)s, current_user)),
     b AS (SELECT m.* FROM pg_roles m, r WHERE pg_has_role(r.oid, m.oid, 'MEMBER'))
SELECT r.rolname,
       EXISTS (SELECT 1 FROM b WHERE b.rolsuper), EXISTS (SELECT 1 FROM b WHERE b.rolcreaterole),
       EXISTS (SELECT 1 FROM b WHERE b.rolcreatedb), EXISTS (SELECT 1 FROM b WHERE b.rolreplication),
       EXISTS (SELECT 1 FROM b WHERE b.rolbypassrls),
       ARRAY(SELECT b.rolname FROM b WHERE b.rolname = ANY(%(dangerous)s) ORDER BY 1) AS memberships,
       ARRAY(SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE {_USER_TABLES}
               AND EXISTS (SELECT 1 FROM b WHERE has_table_privilege(b.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE'))
             ORDER BY 1 LIMIT 3) AS writable
FROM r
"""


class RolePrivileges(NamedTuple):
    """A row of :data:`PRIVILEGES_SQL`."""

    rolname: str
    rolsuper: bool
    rolcreaterole: bool
    rolcreatedb: bool
    rolreplication: bool
    rolbypassrls: bool
    memberships: list[str]
    writable: list[str]


def privileges_params(role: str | None) -> dict[str, Any]:
    return {"role": role, "dangerous": list(DANGEROUS_ROLES)}


def readonly_role_name(database: str, schema: str) -> str:
    """The read-only role of one database and schema: ``mc_ro_<database>_<schema>_<hash>``.

    Readable parts, cut to 20 characters each, plus 8 hex digits of a hash of the exact names so
    that names differing only in case, punctuation or beyond the cut get different roles; at most
    56 characters, within PostgreSQL's 63.
    """
    digest = hashlib.sha256(f"{database}\0{schema}".encode()).hexdigest()[:8]

    def part(name: str) -> str:
        return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:20] or "x"

    name = f"{ROLE_PREFIX}_{part(database)}_{part(schema)}_{digest}"
    assert len(name) <= MAX_IDENTIFIER
    return name


def check_role_name(role: str) -> str:
    if not _ROLE_NAME.match(role):
        raise ConfigError(f"read-only role name {role!r} must be lower-case letters, digits and _ (max 63)")
    return role


def privilege_problems(row: RolePrivileges) -> list[str]:
    """What makes a role more than read-only; empty when it is fine."""
    problems = [f"{attribute} (itself or a role it may SET ROLE to)" for attribute, held in (
        ("superuser", row.rolsuper), ("CREATEROLE", row.rolcreaterole), ("CREATEDB", row.rolcreatedb),
        ("REPLICATION", row.rolreplication), ("BYPASSRLS", row.rolbypassrls)) if held]
    problems += [f"member of {name}" for name in row.memberships]
    if row.writable:
        problems.append(f"may write {', '.join(row.writable)}")
    return problems


def role_privileges(conn: Connection, role: str) -> RolePrivileges:
    """What ``role`` may do, seen from an admin session."""
    return RolePrivileges(*conn.exec_driver_sql(PRIVILEGES_SQL, privileges_params(role)).one())


def current_database_and_schema(conn: Connection) -> tuple[str, str]:
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    if not schema:
        raise ConfigError("no current schema (check the search_path of the database URL)")
    return database, schema


def ensure_readonly_role(conn: Connection, role: str | None = None) -> tuple[str, str]:
    """Create this database and schema's read-only role (LOGIN, no other attribute) if missing,
    grant it SELECT on the current schema, and return ``(role, schema)``.

    ``role`` defaults to :func:`readonly_role_name`. Raises ConfigError, in the caller's
    transaction (so nothing is kept), when the role exists but was not made for this database and
    schema, when it holds more than SELECT, or when it can read tables of another schema.
    """
    if conn.dialect.name != "postgresql":
        raise ConfigError("a read-only role is a PostgreSQL feature; on SQLite `sql` opens the file read-only")
    database, schema = current_database_and_schema(conn)
    role = check_role_name(role or readonly_role_name(database, schema))
    quote = conn.dialect.identifier_preparer.quote
    r, s = quote(role), quote(schema)
    mark = _MARK.format(database=database, schema=schema)
    # Serialise concurrent grants of the same role: two CREATE ROLEs would otherwise race.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:role))"), {"role": role})
    existing = conn.execute(text("SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = :role"),
                            {"role": role}).first()
    if existing is None:
        conn.exec_driver_sql(f"CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
        conn.exec_driver_sql(f"COMMENT ON ROLE {r} IS {_literal(mark)}")
    elif existing[0] != mark:
        whose = f"it is {existing[0]}" if existing[0] else "it was not created by `db grant-readonly`"
        raise ConfigError(f"role {role!r} already exists and is not this class's read-only role ({whose}); "
                          "choose another --role, or drop that role")
    conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {s} TO {r}")
    conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}")
    conn.exec_driver_sql(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {r}")
    problems = privilege_problems(role_privileges(conn, role))
    if problems:
        raise ConfigError(f"role {role!r} is not read-only ({'; '.join(problems)}); nothing was granted. "
                          "Drop it or choose another --role")
    elsewhere = conn.execute(text(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE {_USER_TABLES} AND n.nspname <> :schema AND has_table_privilege(:role, c.oid, 'SELECT') "
        # a table that PUBLIC may read is readable by every role: not this role's grant
        "AND NOT EXISTS (SELECT 1 FROM aclexplode(c.relacl) a WHERE a.grantee = 0 AND a.privilege_type = 'SELECT') "
        "ORDER BY 1 LIMIT 3"), {"schema": schema, "role": role}).scalars().all()
    if elsewhere:
        raise ConfigError(f"role {role!r} can also read {', '.join(elsewhere)} (outside schema {schema!r}); "
                          "nothing was granted. Use one role per class")
    return role, schema


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
