"""Where a command may write: checked before any work, so a bad ``--out`` is one line, not a traceback
after a minute of t-SNE (``mkdir`` under a path whose parent is a file raises FileExistsError or
NotADirectoryError deep inside matplotlib or the report builder)."""

from __future__ import annotations

from pathlib import Path

from music_classifier.errors import InputError


def _check_ancestors(option: str, out: Path, folder: Path) -> None:
    """The first existing folder on the way to ``folder`` must be a folder, not a file."""
    for ancestor in (folder, *folder.parents):
        if ancestor.exists():
            if not ancestor.is_dir():
                raise InputError(f"{option} {out}: {ancestor} is a file, not a folder")
            return


def check_output_file(out: Path, *, option: str = "--out", suffixes: tuple[str, ...] = ()) -> Path:
    """``out`` is a file this command may create or replace (its folders are created later)."""
    if suffixes and out.suffix.lower() not in suffixes:
        raise InputError(f"{option} {out}: the file name must end in {' or '.join(suffixes)}")
    if out.is_dir():
        raise InputError(f"{option} {out}: is a directory")
    _check_ancestors(option, out, out.parent)
    return out


def check_output_dir(out: Path, *, option: str = "--out") -> Path:
    """``out`` is a folder this command may create or write into."""
    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {out}: is a file, not a folder")
    _check_ancestors(option, out, out)
    return out
