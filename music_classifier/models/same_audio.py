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
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from music_classifier.ingest.keys import normalise_artist, normalise_title, normalise_titles


def song_key(artist: Any, title: Any) -> str | None:
    """Normalised artist + title, or None when either is empty (a file track named only by its path)."""
    a, t = normalise_artist(str(artist or "")), normalise_title(str(title or ""))
    return f"{a}\x1f{t}" if a and t else None


def song_codes(artists: np.ndarray, titles: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Integer song key per entry: two entries have the same code exactly when they are ``wanted`` and share
    one :func:`song_key` (not None); -1 for every other entry (no key, not wanted, or a key no other entry has).

    Each distinct artist is normalised once, the titles in one pass per 5,000
    (:func:`~music_classifier.ingest.keys.normalise_titles`) and kept only as 64-bit hashes; the few entries
    whose (artist, title hash) another entry shares are normalised again and compared as text, so the codes
    are exact while no normalised title of a track with a song of its own is held (most tracks)."""
    out = np.full(len(artists), -1, dtype=np.int64)
    if not len(artists) or not wanted.any():
        return out
    artist_codes, distinct = pd.factorize(np.asarray(artists, dtype=object))
    artist_keys, artist_of = pd.factorize(np.array([normalise_artist(str(a or "")) for a in distinct], dtype=object))
    key_code = artist_keys[artist_codes]  # a code per normalised artist
    rows = np.flatnonzero(np.asarray(wanted, dtype=bool) & ~np.isin(key_code, np.flatnonzero(artist_of == "")))
    if not len(rows):
        return out

    def normalised(part: np.ndarray) -> np.ndarray:
        values = np.empty(len(part), dtype=object)
        values[:] = normalise_titles([str(t or "") for t in titles[part].tolist()])
        return values

    hashes = np.empty(len(rows), dtype=np.uint64)
    titled = np.empty(len(rows), dtype=bool)  # a non-empty normalised title
    for start in range(0, len(rows), 5_000):  # in parts: the joined text and its copies stay small
        part = normalised(rows[start:start + 5_000])
        hashes[start:start + len(part)] = pd.util.hash_array(part)
        titled[start:start + len(part)] = part != ""
    pair = pd.util.hash_array(key_code[rows].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) ^ hashes)
    _, pair_of, counts = np.unique(pair, return_inverse=True, return_counts=True)
    candidates = rows[(counts[pair_of.ravel()] > 1) & titled]
    if not len(candidates):
        return out
    title_keys, title_of = pd.factorize(normalised(candidates))  # exact, on the candidates alone
    songs, song_of, counts = np.unique(key_code[candidates].astype(np.int64) * len(title_of) + title_keys,
                                       return_inverse=True, return_counts=True)
    shared = (counts[song_of.ravel()] > 1) & (title_of[title_keys] != "")
    out[candidates[shared]] = songs[song_of.ravel()[shared]]
    return out


def join_group_codes(groups: np.ndarray, links: Sequence[np.ndarray]) -> tuple[np.ndarray, int]:
    """``groups`` with every two groups that share a link value joined into one (vectorised: connected
    components of the graph of groups and link values).

    ``links``: one integer array per kind of link (audio, song), one code per row, -1 where the row has
    none. A joined group takes the smallest label among its members, so labels stay of the same kind
    (track ids stay track ids). Returns (groups, number of groups absorbed); the input array itself when
    nothing is joined.
    """
    groups = np.asarray(groups)
    # Only rows whose link value another row shares can join anything: the graph holds those alone (most
    # tracks have an audio and a song of their own).
    shared = []
    for values in links:
        values = np.asarray(values, dtype=np.int64)
        rows = np.flatnonzero(values >= 0)
        codes, value_of, counts = np.unique(values[rows], return_inverse=True, return_counts=True)
        twice = counts[value_of.ravel()] > 1
        if twice.any():
            shared.append((rows[twice], value_of.ravel()[twice]))
    if not shared:
        return groups, 0
    labels, group_of = np.unique(groups, return_inverse=True)  # sorted: the smallest code is the smallest label
    group_of = group_of.ravel()
    n = len(labels)
    sources, targets, offset = [], [], n
    for rows, value_of in shared:
        sources.append(group_of[rows])
        targets.append(offset + value_of)
        offset += int(value_of.max()) + 1
    src, dst = np.concatenate(sources), np.concatenate(targets)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(offset, offset)).tocsr()
    _, component = connected_components(graph, directed=False)
    smallest = np.full(component.max() + 1, n, dtype=np.int64)
    np.minimum.at(smallest, component[:n], np.arange(n))
    absorbed = n - len(np.unique(component[:n]))
    if not absorbed:
        return groups, 0
    return labels[smallest[component[:n]]][group_of], int(absorbed)


def joined_note(absorbed: int) -> str:
    """The note training prints (``adapted: ...``) when groups were joined across twin tracks."""
    return (f"{absorbed} split group(s) joined to another: their tracks have the same audio (sha256) or the same "
            "artist and title, and stay on one side of every split")
