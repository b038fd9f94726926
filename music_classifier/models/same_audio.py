"""Groups joined across tracks that hold the same audio or name the same song.

A byte-identical copy registered as a second track (before ``audio scan`` recognised copies, or by
another path: a sheet row and a playlist naming one recording, ``audio link`` of a copy), or one
song the sheet names twice, would otherwise be two groups: the splitter could put one in a training
fold and the other in the test fold, and the model would be tested on audio it was fitted on. So
every split groups such tracks together, whatever ``--group-by`` asked for: two groups that share a
track's audio (same ``file_sha256``) or song (same normalised artist + title) become one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from music_classifier.ingest.keys import normalise_artist, normalise_title


def song_key(artist: Any, title: Any) -> str | None:
    """Normalised artist + title, or None when either is empty (a file track named only by its path)."""
    a, t = normalise_artist(str(artist or "")), normalise_title(str(title or ""))
    return f"{a}\x1f{t}" if a and t else None


def song_keys(artists: Sequence[Any], titles: Sequence[Any]) -> list[str | None]:
    """:func:`song_key` of each (artist, title) pair; each distinct artist normalised once (a library has
    many tracks per artist: at 100,000 tracks the normalising is most of a dataset load's Python work)."""
    artist_keys: dict[Any, str] = {}
    out: list[str | None] = []
    for artist, title in zip(artists, titles, strict=True):
        a = artist_keys.get(artist)
        if a is None:
            a = artist_keys[artist] = normalise_artist(str(artist or ""))
        t = normalise_title(str(title or "")) if a else ""
        out.append(f"{a}\x1f{t}" if a and t else None)
    return out


def join_groups(groups: np.ndarray, links: Sequence[Sequence[Any]]) -> tuple[np.ndarray, int]:
    """``groups`` with every two groups that share a link value joined into one.

    ``links``: one sequence per kind of link (audio sha256, song key), each one value per row, None
    where the row has none. A joined group takes the smallest label among its members, so labels
    stay of the same kind (track ids stay track ids). Returns (groups, number of groups absorbed);
    the input array itself when nothing is joined.
    """
    groups = np.asarray(groups)
    labels = groups.tolist()
    parent: dict[Any, Any] = {}

    def root(label: Any) -> Any:
        while parent.get(label, label) != label:
            label = parent[label]
        return label

    absorbed = 0
    for values in links:
        first: dict[Any, Any] = {}  # link value -> the group label first seen with it
        for label, value in zip(labels, values, strict=True):
            if value is None:
                continue
            other = first.setdefault(value, label)
            a, b = root(label), root(other)
            if a != b:
                keep, drop = (a, b) if a < b else (b, a)
                parent[drop] = keep
                absorbed += 1
    if not absorbed:
        return groups, 0
    return np.array([root(label) for label in labels], dtype=groups.dtype), absorbed


def joined_note(absorbed: int) -> str:
    """The note training prints (``adapted: ...``) when groups were joined across twin tracks."""
    return (f"{absorbed} split group(s) joined to another: their tracks have the same audio (sha256) or the same "
            "artist and title, and stay on one side of every split")
