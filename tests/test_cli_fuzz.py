"""No traceback for any input: every command, with generated arguments, ends in 0, 1, 2 or 3.

The commands are enumerated from the Typer app, so a command added later is fuzzed too. Each gets
a bounded number of examples (derandomised: the same examples every run) on a migrated SQLite
database, in its own working directory, with every remote service pointed at a closed local port.
The values mix the command's own option names with strings that broke commands before: rich markup
(``[/]``), format braces, huge and negative numbers, paths that do not exist, control characters.

Also here: messages show user data as typed (markup off) and an XLSX entity bomb is one line.
"""

from __future__ import annotations

import shutil
import zipfile

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from music_classifier.cli import app
from music_classifier.db import migrate
from music_classifier.db.engine import make_engine

# 0 ok, 1 domain error, 2 usage error, 3 partial success (bad rows skipped)
EXIT_CODES = {0, 1, 2, 3}
EXAMPLES_PER_COMMAND = 12
# `demo` with valid arguments synthesises audio and trains models for minutes, and `serve` serves until it
# is stopped: they have their own tests (tests/test_demo_pipeline.py, tests/test_serve.py); here every
# example ends with an option value each must refuse before any work (the last occurrence of an option wins).
LONG_RUNNING = {("demo",): ("--tracks-per-genre", ["-1", "0", "1", "201", "x", "[/]", "1e309", ""]),
                ("serve",): ("--port", ["-1", "65536", "x", "[/]", "1e309", "", "99999999999999999999"])}
CLOSED = "http://127.0.0.1:9/"  # the discard port: nothing listens, a request fails at once

NASTY = ["[/]", "[/x]", "[bold]x", "]", "[", "{0}", "{}", "%s", "-1", "0", "1", "2", "999999999999999999999",
         "1e309", "nan", "-inf", "", " ", "a,b", ",", "x" * 300, "../../etc/passwd", "/nonexistent/file.csv",
         "nonexistent.xlsx", ".", "rock", "Rock", "librosa", "spotify", "gtzan_csv", "both", "missing", "all",
         "rf", "svm", "SELECT 1", "select * from tracks", "DROP TABLE tracks", "\x00", "é\u202e", "--", "=1+1",
         "sqlite:///nonexistent/dir/x.db", "postgresql://nobody@127.0.0.1:9/x"]


def _leaf_commands(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in sorted(command.commands.items()):
            yield from _leaf_commands(sub, (*path, name))
    else:
        yield path, command


ROOT = typer.main.get_command(app)
COMMANDS = dict(_leaf_commands(ROOT))


def _option_names(command) -> list[str]:
    return [opt for p in command.params if p.param_type_name == "option" for opt in p.opts if opt != "--help"]


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def cli_env(migrated_db, tmp_path, monkeypatch):
    db = tmp_path / "class.db"
    shutil.copy(migrated_db, db)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for var in ("REDIS_URL", "DATABASE_URL", "SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET",
                "GOOGLE_APPLICATION_CREDENTIALS", "MUSIC_CLASSIFIER_READONLY_URL"):
        monkeypatch.delenv(var, raising=False)
    for var in ("SPOTIFY_API_URL", "SPOTIFY_AUTH_URL", "RECCOBEATS_API_URL", "GOOGLE_SHEETS_API_URL",
                "GOOGLE_SHEETS_EXPORT_URL"):
        monkeypatch.setenv(var, CLOSED)
    monkeypatch.setenv("MUSIC_CLASSIFIER_LIBRARY", str(work))
    return f"sqlite:///{db}"


def check_invocation(url: str, path: tuple[str, ...], args: list[str]) -> None:
    result = CliRunner().invoke(app, ["--db", url, *path, *args])
    shown = " ".join([*path, *map(repr, args)])
    # CliRunner catches what the real CLI would print as a traceback: any exception but SystemExit.
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{shown}: uncaught {type(result.exception).__name__}: {result.exception}"
                             ) from result.exception
    assert result.exit_code in EXIT_CODES, f"{shown}: exit {result.exit_code}\n{result.output}"
    assert "Traceback" not in result.output, f"{shown}:\n{result.output}"


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_no_traceback_for_any_arguments(cli_env, path):
    command = COMMANDS[path]
    tokens = st.sampled_from(NASTY + _option_names(command)) | st.text(max_size=8)
    if path in LONG_RUNNING:  # every example ends with a value the command refuses
        option, values = LONG_RUNNING[path]
        examples = st.tuples(st.sampled_from(values), st.lists(tokens, max_size=3)).map(
            lambda case, option=option: [*case[1], option, case[0]])
    else:
        examples = st.lists(tokens, max_size=5)

    @settings(max_examples=EXAMPLES_PER_COMMAND, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(examples)
    def run(args):
        check_invocation(cli_env, path, args)

    run()


@pytest.mark.parametrize(("args", "shown"), [
    (["genres", "alias", "[/]", "Rock"], "[/]"),
    (["dataset", "show", "[/x]"], "[/x]"),
    (["sheet", "sync", "--csv", "[/]x.csv"], "[/]x.csv"),
    (["sql", "SELECT '[/]' AS \"[bold]\""], "[/]"),  # table cells and headers too
    (["dataset", "create", "Bad[/]", "--features", "librosa", "--top", "2", "--min-per-genre", "1"],
     "must match [a-z][a-z0-9_]{0,40}"),
])
def test_user_data_in_messages_is_shown_as_typed(cli_env, args, shown):
    result = CliRunner().invoke(app, ["--db", cli_env, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1) and shown in result.output, result.output


def test_help_shows_the_dataset_name_pattern():
    result = CliRunner().invoke(app, ["dataset", "create", "--help"])
    assert result.exit_code == 0 and "[a-z][a-z0-9_]{0,40}" in result.output, result.output


def _entity_bomb(path, tmp_path):
    """A valid workbook whose sheet XML declares a billion-laughs entity and uses it in a cell."""
    from openpyxl import Workbook

    plain = tmp_path / "plain.xlsx"
    workbook = Workbook()
    workbook.active.append(["student", "song", "coarse_genre"])
    workbook.active.append(["ann", "Nirvana - Lithium", "Rock"])
    workbook.save(plain)
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    with zipfile.ZipFile(plain) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    sheet = "xl/worksheets/sheet1.xml"
    members[sheet] = (f'<?xml version="1.0"?><!DOCTYPE lolz [{entities}]>'.encode()
                      + members[sheet].replace(b"<t>student</t>", b"<t>&lol9;</t>"))
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_xlsx_entity_bomb_is_one_line(cli_env, tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    _entity_bomb(bomb, tmp_path)
    result = CliRunner().invoke(app, ["--db", cli_env, "sheet", "sync", "--xlsx", str(bomb)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert f"{bomb}: the workbook declares XML entities (refused: a possible entity bomb)" in result.output
