"""`music-classifier spotify …`: playlists, dataset matching and the audio-features breaker.

Other modules may attach commands to :data:`spotify_app` (``spotify import-csv`` does).
"""

from __future__ import annotations

import typer

from music_classifier.commands.common import bold, console, handle_errors, state, styled

spotify_app = typer.Typer(
    help="Spotify: playlists as tracks, features from datasets, the audio-features breaker.\n\n"
    "Example: music-classifier spotify playlist https://open.spotify.com/playlist/ID --genre Rock",
    no_args_is_help=True,
)


@spotify_app.command("playlist")
@handle_errors
def playlist(
    ctx: typer.Context,
    playlist_ref: str = typer.Argument(..., metavar="PLAYLIST", help="Playlist URL, spotify:playlist: URI or id."),
    genre: str = typer.Option(..., "--genre", "-g", help="Coarse genre of every track (aliases apply)."),
) -> None:
    """Add a playlist's tracks as tracks of GENRE (source spotify_playlist); re-importing updates in place.

    Needs SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET.

    Example: music-classifier spotify playlist 3cEYpjA9oz9GiPac4AsH4n --genre Rock
    """
    from music_classifier.features.spotify_provider import SpotifyCatalog
    from music_classifier.ingest.spotify_playlist import import_playlist

    st = state(ctx)
    report = import_playlist(st.engine, playlist_ref, genre, catalog=SpotifyCatalog.from_settings(st.settings))
    alias = "".join(f" ({raw!r} -> {disp})" for raw, disp in report.genre_alias_applied.items())
    console.print(styled(f"playlist {report.playlist_id}: {report.added} added, {report.updated} updated, "
                         f"{report.unchanged} unchanged as ", bold(report.genre), f"{alias}; "
                         f"{report.skipped} skipped (local files, episodes, unavailable), "
                         f"{report.duplicates} duplicates"))


@spotify_app.command("match-local")
@handle_errors
def match_local(
    ctx: typer.Context,
    threshold: float | None = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                           help="Minimum match score, 0..1 (default: the search threshold)."),
) -> None:
    """Give sheet/file tracks without a Spotify id the id and features of the best-matching imported CSV track.

    Run `music-classifier spotify import-csv FILE` first.

    Example: music-classifier spotify match-local --threshold 0.9
    """
    from music_classifier.features.spotify_match import MATCH_THRESHOLD
    from music_classifier.ingest.spotify_match_local import match_local as run_match

    with state(ctx).engine.begin() as conn:
        report = run_match(conn, threshold=MATCH_THRESHOLD if threshold is None else threshold)
    if report.candidates == 0:
        console.print("no imported dataset tracks with Spotify features: run `music-classifier spotify import-csv "
                      "FILE` first", highlight=False)
        return
    console.print(f"{report.matched} of {report.examined} tracks matched against {report.candidates} dataset "
                  f"tracks; {report.unmatched} unmatched, {report.cleared} earlier matches cleared", highlight=False)
    for example in report.examples:
        console.print(f"  unmatched: {example}", highlight=False)


@spotify_app.command("breaker")
@handle_errors
def breaker(
    ctx: typer.Context,
    reset: bool = typer.Option(False, "--reset", help="Close the breaker so workers ask Spotify again."),
) -> None:
    """Show (or reset) the audio-features breaker every worker checks before calling Spotify.

    Example: music-classifier spotify breaker --reset
    """
    from music_classifier.jobs.spotify_breaker import read_breaker, reset_breaker

    with state(ctx).engine.begin() as conn:
        current = read_breaker(conn)
        if reset:
            reset_breaker(conn)
    if not current.is_open:
        console.print("breaker closed: workers call Spotify audio-features")
    elif reset:
        console.print("breaker reset: workers will call Spotify audio-features again")
    else:
        console.print(f"breaker OPEN since {current.opened_at}: {current.reason}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(spotify_app, name="spotify")
