"""Every command documents an example, and `--help` starts without the heavy scientific stack."""

from __future__ import annotations

import json
import subprocess
import sys

import typer.main
from waits import HANG_S

HEAVY_MODULES = ("librosa", "sklearn", "pandas", "numba")


def _walk(command, path: tuple[str, ...] = ()):
    """(path, command) for a command and all its sub-commands. Typer vendors its own Click, so
    groups are recognised by their ``commands`` mapping rather than by isinstance(click.Group)."""
    yield path, command
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in sorted(subcommands.items()):
            yield from _walk(sub, (*path, name))


def test_every_command_has_an_example():
    from music_classifier.cli import app

    root = typer.main.get_command(app)
    commands = list(_walk(root))
    assert len(commands) > 5  # the tree really was walked
    missing = [" ".join(path) or "(root)" for path, cmd in commands if "Example" not in (cmd.help or "")]
    assert missing == [], f"help text without 'Example': {missing}"


def test_my_commands_are_registered():
    from music_classifier.cli import app

    paths = {" ".join(path) for path, _ in _walk(typer.main.get_command(app))}
    assert {"audio scan", "genres", "genres alias", "sql", "db grant-readonly"} <= paths


def test_help_starts_without_heavy_imports():
    code = (
        "import json, sys\n"
        "import music_classifier.cli as cli\n"
        "try:\n"
        "    cli.app(['--help'], prog_name='music-classifier')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
