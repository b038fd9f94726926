"""Public feature-table CSV layouts, recognised from their header, and their name maps.

Each layout says which column identifies a track, where artist, title and genres come from, and
maps its feature columns to the FROZEN names of db/feature_columns.py (the names the SQL views
expose). Supported:

``tidytuesday``
    ``spotify_songs.csv`` of TidyTuesday 2020-01-21 (~32k rows, one row per (track, playlist)).
    track_id -> Spotify id, track_artist -> artist, track_name -> title, playlist_genre -> coarse
    genre, playlist_subgenre -> subgenre (rank 1), playlist_id -> playlist. Features: the 12
    SPOTIFY_V1 columns under their own names.
``tracks114k``
    The 114,000-track "Spotify Tracks Dataset" (maharshipandya, one genre per row, 114 genres).
    track_id -> Spotify id, artists (';'-separated, stored joined with ", ") -> artist,
    track_name -> title, track_genre -> coarse genre; no subgenre, no playlist. Features: the 12
    SPOTIFY_V1 columns under their own names (popularity, explicit, time_signature are ignored).
``gtzan``
    The GTZAN ``features_30_sec.csv`` table (1,000 rows, 10 genres x 100). filename -> track
    (key ``gtzan:<filename>``, artist "GTZAN", title = filename), label -> coarse genre. Features:
    the 57 GTZAN_V1 columns, which ARE the table's column names (``length`` is ignored):
    ``chroma_stft`` (12-bin STFT chroma), ``rms``, ``spectral_centroid``, ``spectral_bandwidth``,
    ``rolloff`` (85% spectral roll-off, librosa's ``spectral_rolloff``), ``zero_crossing_rate``,
    ``harmony`` / ``perceptr`` (the harmonic / percussive signals of HPSS), each as ``_mean`` and
    ``_var``; ``tempo`` (BPM); ``mfcc1..20_mean/_var``. Units as in features/names.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from music_classifier.db.feature_columns import GTZAN_V1, SPOTIFY_V1
from music_classifier.errors import InputError

SPOTIFY_KIND = "spotify"
GTZAN_KIND = "gtzan"


@dataclass(frozen=True)
class CsvLayout:
    name: str
    kind: str  # "spotify" (features of extractor `spotify`) or "gtzan" (extractor `gtzan_csv`)
    id_column: str
    genre_column: str
    artist_column: str | None  # None: a constant artist (GTZAN)
    title_column: str
    feature_map: dict[str, str]  # CSV column -> frozen feature name
    subgenre_column: str | None = None
    playlist_column: str | None = None
    artist_separator: str | None = None  # the 114k layout lists several artists as "A;B"
    signature: tuple[str, ...] = field(default=())  # columns whose presence identifies the layout

    @property
    def required_columns(self) -> list[str]:
        cols = [self.id_column, self.artist_column, self.title_column, self.genre_column,
                self.subgenre_column, self.playlist_column, *self.feature_map]
        return list(dict.fromkeys(c for c in cols if c))


_SPOTIFY_IDENTITY = {name: name for name in SPOTIFY_V1}

TIDYTUESDAY = CsvLayout(
    name="tidytuesday", kind=SPOTIFY_KIND, id_column="track_id", genre_column="playlist_genre",
    artist_column="track_artist", title_column="track_name", feature_map=_SPOTIFY_IDENTITY,
    subgenre_column="playlist_subgenre", playlist_column="playlist_id",
    signature=("track_id", "playlist_genre", "playlist_id"),
)
TRACKS_114K = CsvLayout(
    name="tracks114k", kind=SPOTIFY_KIND, id_column="track_id", genre_column="track_genre",
    artist_column="artists", title_column="track_name", feature_map=_SPOTIFY_IDENTITY,
    artist_separator=";", signature=("track_id", "track_genre", "artists"),
)
GTZAN = CsvLayout(
    name="gtzan", kind=GTZAN_KIND, id_column="filename", genre_column="label", artist_column=None,
    title_column="filename", feature_map={name: name for name in GTZAN_V1},
    signature=("filename", "label", "mfcc1_mean"),
)

LAYOUTS: dict[str, CsvLayout] = {layout.name: layout for layout in (TIDYTUESDAY, TRACKS_114K, GTZAN)}
GTZAN_ARTIST = "GTZAN"
GTZAN_KEY_PREFIX = "gtzan:"


def detect_layout(columns: Iterable[str], *, kind: str | None = None, layout: str | None = None,
                  file: str = "CSV") -> CsvLayout:
    """The layout of a header. ``kind`` restricts the candidates ("spotify" or "gtzan"); ``layout``
    forces one by name. Raises a one-line InputError naming the file and the missing columns."""
    present = {c.strip() for c in columns}
    candidates = [lay for lay in LAYOUTS.values() if kind is None or lay.kind == kind]
    if layout is not None:
        chosen = LAYOUTS.get(layout)
        if chosen is None or chosen not in candidates:
            names = ", ".join(lay.name for lay in candidates)
            raise InputError(f"unknown layout {layout!r} for this command (choose from: {names})")
        candidates = [chosen]
    for lay in candidates:
        if set(lay.signature) <= present:
            missing = [c for c in lay.required_columns if c not in present]
            if missing:
                raise InputError(f"{file}: looks like the {lay.name} layout but lacks column(s) {', '.join(missing)}")
            return lay
    expected = "; ".join(f"{lay.name}: {', '.join(lay.signature)}" for lay in candidates)
    raise InputError(f"{file}: unknown CSV layout (header: {_header_preview(columns)}); "
                     f"expected columns — {expected}")


def _header_preview(columns: Iterable[str], limit: int = 6) -> str:
    cols = [c.strip() for c in columns]
    return ", ".join(cols[:limit]) + (", …" if len(cols) > limit else "")
