"""Before any Spotify extraction row is written: can this run fetch anything at all?

Without SPOTIFY_CLIENT_ID/SECRET nothing can be searched (tracks without a Spotify id), and with the
default provider nothing can be fetched either (Spotify's audio features need the same credentials).
Starting anyway would write one failed row per track, all saying the same thing; refusing first
says it once and leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, func, select

from music_classifier.db.tables import tracks
from music_classifier.errors import ConfigError
from music_classifier.settings import Settings

CREDENTIALS_HINT = "set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (an app at developer.spotify.com/dashboard)"


def check_spotify_can_run(conn: Connection, settings: Settings, track_ids: Sequence[int]) -> None:
    """ConfigError (one line, nothing written) when the selected tracks cannot get Spotify features."""
    if not track_ids or (settings.spotify_client_id and settings.spotify_client_secret):
        return
    provider = settings.audio_features_provider.strip().lower()
    if provider == "spotify":
        raise ConfigError(f"--extractor spotify: SPOTIFY_CLIENT_ID/SPOTIFY_CLIENT_SECRET are not set and Spotify's "
                          f"audio features need them for the {len(track_ids)} selected track(s): {CREDENTIALS_HINT}, "
                          "or use AUDIO_FEATURES_PROVIDER=reccobeats for tracks with Spotify ids; nothing was written")
    with_ids = 0
    ids = list(track_ids)
    for start in range(0, len(ids), 1_000):
        with_ids += conn.execute(select(func.count()).select_from(tracks).where(
            tracks.c.id.in_(ids[start:start + 1_000]), tracks.c.spotify_id.is_not(None))).scalar_one()
    if with_ids == 0:
        raise ConfigError(f"--extractor spotify: none of the {len(ids)} selected track(s) has a Spotify id, and "
                          f"SPOTIFY_CLIENT_ID/SPOTIFY_CLIENT_SECRET are not set to search for them: "
                          f"{CREDENTIALS_HINT}; nothing was written")
