"""Spotify over real HTTP: spotipy and our ReccoBeats client against a local fake of the Web API."""

from __future__ import annotations

import time

import pytest
from fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify, fake_id, features_for
from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from music_classifier.cli import app
from music_classifier.db.engine import make_engine
from music_classifier.db.feature_columns import SPOTIFY_V1
from music_classifier.db.tables import extractions, features, genres, service_state, track_genres, tracks
from music_classifier.db.values import replace_values
from music_classifier.errors import InputError
from music_classifier.features.spotify_errors import (
    AudioFeaturesForbidden,
    PlaylistNotFound,
    RateLimited,
    TransientSpotifyError,
)
from music_classifier.features.spotify_match import MATCH_THRESHOLD, best_candidate, match_score
from music_classifier.features.spotify_provider import (
    Backoff,
    ReccoBeatsAudioFeatures,
    SpotifyAudioFeatures,
    SpotifyCatalog,
    extraction_params,
    make_spotipy,
    params_hash,
    parse_playlist_ref,
)
from music_classifier.ingest.spotify_match_local import match_local
from music_classifier.ingest.spotify_playlist import import_playlist
from music_classifier.jobs.spotify_batch import process_spotify_batch
from music_classifier.jobs.spotify_breaker import BREAKER_KEY, read_breaker
from music_classifier.settings import get_settings

FAST = Backoff(attempts=4, base_s=0.01, cap_s=0.05)


@pytest.fixture
def fake():
    server = FakeSpotify().start()
    yield server
    server.stop()


@pytest.fixture
def settings(fake):
    return get_settings(spotify_client_id=CLIENT_ID, spotify_client_secret=CLIENT_SECRET,
                        spotify_api_url=fake.api_url, spotify_auth_url=fake.auth_url,
                        reccobeats_api_url=fake.reccobeats_url, audio_features_provider="spotify")


def cli_env(fake) -> dict[str, str]:
    return {"SPOTIFY_CLIENT_ID": CLIENT_ID, "SPOTIFY_CLIENT_SECRET": CLIENT_SECRET,
            "SPOTIFY_API_URL": fake.api_url, "SPOTIFY_AUTH_URL": fake.auth_url}


def db_url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def add_track(conn, artist: str, title: str, *, source: str = "sheet", key: str | None = None,
              spotify_id: str | None = None) -> int:
    return conn.execute(insert(tracks).values(
        source=source, track_key=key or f"{artist}\x1f{title}".lower(), artist=artist, title=title,
        song=f"{artist} - {title}", spotify_id=spotify_id).returning(tracks.c.id)).scalar_one()


def add_spotify_extraction(conn, track_id: int, *, provider: str = "spotify", status: str = "queued") -> int:
    params = extraction_params(provider)
    return conn.execute(insert(extractions).values(
        track_id=track_id, extractor="spotify", version="1", params=params, params_hash=params_hash(params),
        status=status).returning(extractions.c.id)).scalar_one()


def extraction_row(conn, extraction_id: int):
    return conn.execute(select(extractions).where(extractions.c.id == extraction_id)).one()


def feature_values(conn, extraction_id: int) -> dict[str, float]:
    return dict(conn.execute(select(features.c.name, features.c.value)
                             .where(features.c.extraction_id == extraction_id)).all())


# --- the match rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(("ours", "theirs", "passes"), [
    (("Nirvana", "Smells Like Teen Spirit"), ("Nirvana", "Smells Like Teen Spirit - Remastered 2021"), True),
    (("The Beatles", "Hey Jude"), ("Beatles", "Hey Jude"), True),
    (("Beyonce", "Halo"), ("Beyoncé", "Halo"), True),
    (("Nirvanna", "Come as You Are"), ("Nirvana", "Come As You Are"), True),  # one-letter typo: 0.93
    (("Nirvana", "Smells Like Teen Spirit"), ("Nirvana", "Smells Like Teen Spirit Live"), True),  # 0.90
    (("Queen", "Under Pressure"), ("Queen, David Bowie", "Under Pressure"), True),  # one of several credits
    (("The Beatles", "Hey Jude"), ("The Beatles", "Hey Bulldog"), False),  # same artist, other song: 0.63
    (("Leonard Cohen", "Hallelujah"), ("Jeff Buckley", "Hallelujah"), False),  # a cover: 0.32
    (("Queen", "Bohemian Rhapsody"), ("", "Bohemian Rhapsody"), False),
    (("オメガトライブ", "君のハートはマリンブルー"), ("オメガトライブ", "君のハートはマリンブルー"), True),  # scripts
    (("Kaspiyskiy Gruz", "Доедешь: Пиши"), ("Kaspiyskiy Gruz", "Табор уходит в небо"), False),
])
def test_match_threshold_separates_variants_from_other_songs(ours, theirs, passes):
    score = match_score(ours[0], ours[1], theirs[0], theirs[1])
    assert 0.0 <= score <= 1.0
    assert (score >= MATCH_THRESHOLD) is passes, score


def test_best_candidate_picks_highest_and_keeps_first_on_ties():
    cands = [("cover", "Tori Amos", "Smells Like Teen Spirit"), ("live", "Nirvana", "Smells Like Teen Spirit Live"),
             ("orig", "Nirvana", "Smells Like Teen Spirit"), ("dup", "Nirvana", "Smells like teen spirit")]
    assert best_candidate("Nirvana", "Smells Like Teen Spirit", cands) == ("orig", 1.0)
    assert best_candidate("Nirvana", "x", []) is None


def test_parse_playlist_ref_accepts_url_uri_id_and_rejects_garbage():
    pid = "3cEYpjA9oz9GiPac4AsH4n"
    for ref in (pid, f"spotify:playlist:{pid}", f"https://open.spotify.com/playlist/{pid}?si=abc",
                f"open.spotify.com/intl-de/playlist/{pid}", f"spotify:user:someone:playlist:{pid}"):
        assert parse_playlist_ref(ref) == pid
    for bad in ("", "not a playlist", f"https://open.spotify.com/album/{pid}", pid[:-1]):
        with pytest.raises(InputError, match="playlist"):
            parse_playlist_ref(bad)


# --- catalogue and providers over HTTP -----------------------------------------------------------


def test_token_and_search_chooses_best_of_several(fake, settings):
    fake.add_track(fake_id(1), "Tori Amos", "Smells Like Teen Spirit")
    fake.add_track(fake_id(2), "Nirvana", "Smells Like Teen Spirit - Live at Reading")
    right = fake.add_track(fake_id(3), ["Nirvana"], "Smells Like Teen Spirit")
    catalog = SpotifyCatalog.from_settings(settings, backoff=FAST)
    match = catalog.best_search_match("nirvana", "smells like teen spirit")
    assert match is not None and match.spotify_id == right and match.score == 1.0
    assert catalog.resolve("Leonard Cohen", "Smells Like Teen Spirit") is None  # only covers/other artists
    best_wrong = catalog.best_search_match("Leonard Cohen", "Smells Like Teen Spirit")
    assert best_wrong is not None and best_wrong.score < MATCH_THRESHOLD  # the best is reported, not accepted
    assert fake.count("/api/token") == 1  # one client-credentials token, cached in memory
    assert fake.count("/v1/search") == 3


def test_wrong_credentials_and_missing_credentials_are_one_line_errors(fake, settings):
    from music_classifier.errors import ConfigError, RemoteError

    bad = settings.model_copy(update={"spotify_client_secret": "wrong"})
    with pytest.raises(RemoteError, match="client credentials"):
        SpotifyCatalog.from_settings(bad, backoff=FAST).best_search_match("a", "b")
    with pytest.raises(ConfigError, match="SPOTIFY_CLIENT_ID"):
        make_spotipy(settings.model_copy(update={"spotify_client_id": None}))


def test_token_endpoint_5xx_is_retried_and_429_is_rate_limited(fake, settings):
    fake.add_track(fake_id(1), "Nirvana", "Lithium")
    fake.fail("/api/token", 503, 1)
    assert SpotifyCatalog.from_settings(settings, backoff=FAST).resolve("Nirvana", "Lithium") is not None
    assert fake.count("/api/token") == 2
    fake.fail("/api/token", 429, 1, Retry_After="30")
    with pytest.raises(RateLimited) as caught:
        SpotifyCatalog.from_settings(settings, backoff=FAST).resolve("Nirvana", "Lithium")
    assert caught.value.retry_after_s == 30


def test_audio_features_in_batches_of_100(fake, settings):
    ids = [fake.add_track(fake_id(i), f"Artist {i}", f"Song {i}") for i in range(250)]
    provider = SpotifyAudioFeatures(make_spotipy(settings), backoff=FAST)
    unknown = fake_id(999, "u")
    values = provider.fetch_audio_features([*ids, ids[0], unknown])  # a duplicate and an unknown id
    assert fake.count("/v1/audio-features") == 3  # 251 distinct ids -> 100 + 100 + 51
    assert values[unknown] is None
    assert set(values[ids[123]]) == set(SPOTIFY_V1)
    assert values[ids[123]]["tempo"] == features_for(ids[123])["tempo"]


def _record_sleeps(monkeypatch) -> list[float]:
    """``time.sleep`` (urllib3's Retry-After wait) recorded instead of slept, so "did not sleep" is checked
    by what was asked, not by a clock a busy machine slows down."""
    naps: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        real_sleep(min(seconds, 0.01))

    monkeypatch.setattr(time, "sleep", sleep)
    return naps


def test_429_raises_rate_limited_at_once_without_sleeping(fake, settings, monkeypatch):
    sid = fake.add_track(fake_id(1), "A", "B")
    fake.fail("/v1/audio-features", 429, 1, Retry_After="3600")
    backed_off: list[float] = []  # the default backoff policy: 429 must not go through it
    provider = SpotifyAudioFeatures(make_spotipy(settings), backoff=Backoff(sleep=backed_off.append))
    naps = _record_sleeps(monkeypatch)
    with pytest.raises(RateLimited) as caught:
        provider.fetch_audio_features([sid])
    assert backed_off == [] and [s for s in naps if s >= 1] == []  # neither spotipy/urllib3 nor we slept
    assert caught.value.retry_after_s == 3600
    assert fake.count("/v1/audio-features") == 1  # and it was not retried


def test_500_is_retried_with_backoff_then_succeeds_and_gives_up_when_it_persists(fake, settings):
    sid = fake.add_track(fake_id(1), "A", "B")
    slept: list[float] = []
    provider = SpotifyAudioFeatures(make_spotipy(settings), backoff=Backoff(base_s=0.5, cap_s=4, sleep=slept.append))
    fake.fail("/v1/audio-features", 500, 2)
    assert provider.fetch_audio_features([sid])[sid]["energy"] == features_for(sid)["energy"]
    assert fake.count("/v1/audio-features") == 3
    assert slept == [0.5, 1.0]  # exponential
    fake.fail("/v1/audio-features", 503, None)
    with pytest.raises(TransientSpotifyError, match="4 attempts"):
        provider.fetch_audio_features([sid])
    assert slept[2:] == [0.5, 1.0, 2.0]  # bounded: 4 attempts, 3 waits


def test_reccobeats_provider_maps_rows_by_href(fake, settings):
    ids = [fake.add_track(fake_id(i), f"Artist {i}", f"Song {i}") for i in range(50)]
    fake.recco_known = set(ids[1:])  # ReccoBeats does not know the first one
    provider = ReccoBeatsAudioFeatures(settings.reccobeats_api_url, backoff=FAST)
    values = provider.fetch_audio_features(ids)
    assert fake.count("/recco/v1/audio-features") == 2  # 40 + 10
    assert values[ids[0]] is None
    assert values[ids[7]]["danceability"] == features_for(ids[7])["danceability"]
    assert values[ids[7]]["duration_ms"] is None  # a field the service lacks stays empty, not invented
    fake.fail("/recco/v1/audio-features", 429, 1, Retry_After="120")
    with pytest.raises(RateLimited) as caught:
        provider.fetch_audio_features(ids[:3])
    assert caught.value.retry_after_s == 120


# --- the batch job body, on both databases --------------------------------------------------------


def _queued_batch(engine, fake):
    """Three sheet tracks: one with a Spotify id, one found by search, one not found."""
    known = fake.add_track(fake_id(1), "Daft Punk", "Around the World")
    found = fake.add_track(fake_id(2), "Nirvana", "Come As You Are")
    fake.add_track(fake_id(3), "Nirvana", "Lithium")
    with engine.begin() as conn:
        t_known = add_track(conn, "Daft Punk", "Around the World", spotify_id=known)
        t_found = add_track(conn, "Nirvanna", "Come as you are")
        t_missing = add_track(conn, "Nirvana", "Polly")
        ids = [add_spotify_extraction(conn, t) for t in (t_known, t_found, t_missing)]
    return ids, (t_known, t_found, t_missing), (known, found)


def test_batch_searches_fetches_and_stores_once_idempotently(engine, fake, settings):
    ids, (t_known, t_found, t_missing), (known, found) = _queued_batch(engine, fake)
    outcome = process_spotify_batch(engine, ids, settings=settings)
    assert sorted(outcome.done) == ids[:2] and list(outcome.failed) == [ids[2]]
    assert outcome.searched == 2 and outcome.not_found == 1
    assert fake.count("/v1/audio-features") == 1
    with engine.connect() as conn:
        assert extraction_row(conn, ids[0]).status == "done"
        assert feature_values(conn, ids[1]) == {k: float(v) for k, v in features_for(found).items()
                                                if k in SPOTIFY_V1}
        missing = extraction_row(conn, ids[2])
        assert missing.status == "failed"
        assert missing.error.startswith("not found on Spotify (best match score 0.")
        assert f"< threshold {MATCH_THRESHOLD:.2f}" in missing.error
        rows = {r.id: r for r in conn.execute(select(tracks)).all()}
        assert (rows[t_found].spotify_id, rows[t_found].spotify_lookup) == (found, "found")
        assert 0.85 <= rows[t_found].spotify_match_score < 1.0
        assert (rows[t_missing].spotify_id, rows[t_missing].spotify_lookup) == (None, "not_found")
        assert rows[t_missing].spotify_match_score < MATCH_THRESHOLD
        view = conn.exec_driver_sql("SELECT track_id, tempo FROM spotify_features ORDER BY track_id").all()
        assert [r[0] for r in view] == [t_known, t_found]
        assert view[0][1] == pytest.approx(features_for(known)["tempo"])
    process_spotify_batch(engine, ids, settings=settings)  # a job that runs twice leaves one set of rows
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(features)).scalar() == 2 * len(SPOTIFY_V1)


def test_batch_without_credentials_fails_its_rows_with_the_reason(engine, fake, settings):
    from music_classifier.errors import ConfigError

    ids, _, _ = _queued_batch(engine, fake)
    with pytest.raises(ConfigError, match="SPOTIFY_CLIENT_ID"):
        process_spotify_batch(engine, ids, settings=settings.model_copy(update={"spotify_client_secret": None}))
    with engine.connect() as conn:
        assert {extraction_row(conn, i).status for i in ids} == {"failed"}
        assert "SPOTIFY_CLIENT_SECRET" in extraction_row(conn, ids[0]).error
    assert fake.requests == []


def test_batch_429_writes_nothing_and_does_not_sleep(engine, fake, settings, monkeypatch):
    ids, (_, t_found, _), _ = _queued_batch(engine, fake)
    fake.fail("/v1/audio-features", 429, 1, Retry_After="3600")
    naps = _record_sleeps(monkeypatch)
    with pytest.raises(RateLimited) as caught:
        process_spotify_batch(engine, ids, settings=settings)
    assert caught.value.retry_after_s == 3600
    assert [s for s in naps if s >= 1] == [] and fake.count("/v1/audio-features") == 1  # no wait, no retry
    with engine.connect() as conn:
        assert {extraction_row(conn, i).status for i in ids} == {"queued"}
        assert conn.execute(select(func.count()).select_from(features)).scalar() == 0
        assert conn.execute(select(tracks.c.spotify_lookup).where(tracks.c.id == t_found)).scalar() is None


def test_403_opens_the_breaker_and_other_workers_stop_without_asking(engine, fake, settings):
    ids, _, _ = _queued_batch(engine, fake)
    fake.fail("/v1/audio-features", 403, None)
    with pytest.raises(AudioFeaturesForbidden, match="apps created after 2024-11-27"):
        process_spotify_batch(engine, ids, settings=settings)
    with engine.connect() as conn:
        assert read_breaker(conn).is_open
        assert conn.execute(select(service_state.c.key)).scalars().all() == [BREAKER_KEY]
        errors = {extraction_row(conn, i).error for i in ids}
    assert len(errors) == 1 and "AUDIO_FEATURES_PROVIDER=reccobeats" in errors.pop()

    # Another worker: its own engine, its own batch. It reads the breaker and makes no request at all.
    with engine.begin() as conn:
        more = [add_spotify_extraction(conn, add_track(conn, "Someone", f"Song {i}")) for i in range(3)]
    before = len(fake.requests)
    other = make_engine(db_url_of(engine))
    try:
        outcome = process_spotify_batch(other, more, settings=settings)
    finally:
        other.dispose()
    assert outcome.breaker_open and set(outcome.failed) == set(more)
    assert len(fake.requests) == before
    with engine.connect() as conn:
        assert all("403" in extraction_row(conn, i).error for i in more)

    # The CLI shows it, resets it; a compatible provider is not stopped by Spotify's breaker meanwhile.
    runner = CliRunner()
    shown = runner.invoke(app, ["--db", db_url_of(engine), "spotify", "breaker"])
    assert shown.exit_code == 0 and "OPEN" in shown.output
    recco = settings.model_copy(update={"audio_features_provider": "reccobeats"})
    assert sorted(process_spotify_batch(engine, ids, settings=recco).done) == ids[:2]
    with engine.connect() as conn:  # ReccoBeats has no duration_ms: no row, NULL in the view
        assert set(feature_values(conn, ids[0])) == set(SPOTIFY_V1) - {"duration_ms"}
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM spotify_features WHERE duration_ms IS NULL "
                                    "AND energy IS NOT NULL").scalar() == 2
    reset = runner.invoke(app, ["--db", db_url_of(engine), "spotify", "breaker", "--reset"])
    assert reset.exit_code == 0 and "reset" in reset.output
    with engine.connect() as conn:
        assert not read_breaker(conn).is_open


# --- playlists ------------------------------------------------------------------------------------


def test_playlist_import_pages_applies_alias_and_is_idempotent(engine, fake, settings):
    pid = fake_id(7, "p")
    track_ids = [fake.add_track(fake_id(i), f"DJ {i}", f"Track {i}") for i in range(230)]
    fake.playlists[pid] = [*track_ids, None, track_ids[0]]  # a local file and a duplicate
    catalog = SpotifyCatalog.from_settings(settings, backoff=FAST)
    report = import_playlist(engine, f"https://open.spotify.com/playlist/{pid}", "edm", catalog=catalog)
    assert (report.added, report.updated, report.skipped, report.duplicates) == (230, 0, 1, 1)
    assert report.genre == "Electronic" and report.genre_alias_applied == {"edm": "Electronic"}
    assert fake.count(f"/v1/playlists/{pid}/items") == 3  # 232 items, pages of 100
    again = import_playlist(engine, f"spotify:playlist:{pid}", "EDM", catalog=catalog)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 230)
    with engine.connect() as conn:
        rows = conn.execute(select(tracks.c.track_key, tracks.c.spotify_id, tracks.c.playlist_id, tracks.c.source)
                            .order_by(tracks.c.id)).all()
        assert len(rows) == 230
        assert all(r.track_key == r.spotify_id and r.playlist_id == pid and r.source == "spotify_playlist"
                   for r in rows)
        filed = conn.execute(select(genres.c.display_name, func.count()).join(track_genres)
                             .where(track_genres.c.rank == 0).group_by(genres.c.display_name)).all()
        assert filed == [("Electronic", 230)]
    moved = import_playlist(engine, pid, "Techno", catalog=catalog)
    assert (moved.added, moved.updated) == (0, 230)
    result = CliRunner().invoke(app, ["--db", db_url_of(engine), "spotify", "playlist", pid, "--genre", "Techno"],
                                env=cli_env(fake))
    assert result.exit_code == 0, result.output
    assert "0 added, 0 updated, 230 unchanged as Techno" in " ".join(result.output.split())


def test_editorial_playlist_404_is_explained(engine, fake, settings):
    catalog = SpotifyCatalog.from_settings(settings, backoff=FAST)
    with pytest.raises(PlaylistNotFound, match="editorial") as caught:
        catalog.playlist("37i9dQZF1DXcBWIGoYBM5M")
    assert "2024-11-27" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(PlaylistNotFound, match="public") as other:
        catalog.playlist(fake_id(8, "p"))
    assert "editorial" not in str(other.value)
    result = CliRunner().invoke(app, ["--db", db_url_of(engine), "spotify", "playlist",
                                      "https://open.spotify.com/playlist/37i9dQZF1DXcBWIGoYBM5M", "--genre", "Rock"],
                                env=cli_env(fake))
    assert result.exit_code == 1
    assert "editorial" in result.output and "Traceback" not in result.output
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tracks)).scalar() == 0


# --- match-local ----------------------------------------------------------------------------------


def _csv_track(conn, spotify_id: str, artist: str, title: str) -> int:
    tid = add_track(conn, artist, title, source="csv", key=spotify_id, spotify_id=spotify_id)
    params = {"source": "csv", "file": "spotify_songs.csv"}
    eid = conn.execute(insert(extractions).values(
        track_id=tid, extractor="spotify", version="1", params=params, params_hash=params_hash(params),
        status="done").returning(extractions.c.id)).scalar_one()
    replace_values(conn, "spotify", eid, {k: float(v) for k, v in features_for(spotify_id).items()
                                          if k in SPOTIFY_V1}, None)
    return tid


def test_match_local_copies_dataset_features_with_the_search_rule(engine):
    with engine.begin() as conn:
        _csv_track(conn, fake_id(1), "Beatles", "Hey Jude - Remastered 2015")
        _csv_track(conn, fake_id(2), "The Beatles", "Hey Bulldog")
        _csv_track(conn, fake_id(3), "Queen, David Bowie", "Under Pressure")
        _csv_track(conn, fake_id(4), "Nirvana", "Come As You Are")
        _csv_track(conn, fake_id(5), "Jeff Buckley", "Hallelujah")
        jude = add_track(conn, "The Beatles", "Hey Jude")
        pressure = add_track(conn, "Queen", "Under Pressure", source="file")
        typo = add_track(conn, "Nirvanna", "Come as you are")
        cover = add_track(conn, "Leonard Cohen", "Hallelujah")
        has_id = add_track(conn, "Nirvana", "Lithium", spotify_id=fake_id(9))
        report = match_local(conn)
    assert (report.candidates, report.examined, report.matched, report.unmatched) == (5, 4, 3, 1)
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(tracks)).all()}
        assert rows[jude].spotify_id == fake_id(1) and rows[jude].spotify_match_score == 1.0
        assert rows[pressure].spotify_id == fake_id(3)
        assert rows[typo].spotify_id == fake_id(4) and 0.85 <= rows[typo].spotify_match_score < 1
        assert {rows[t].spotify_lookup for t in (jude, pressure, typo)} == {"dataset"}
        assert rows[cover].spotify_id is None and rows[cover].spotify_lookup is None
        assert rows[has_id].spotify_id == fake_id(9)
        view = dict(conn.exec_driver_sql("SELECT track_id, danceability FROM spotify_features "
                                         "WHERE source IN ('sheet', 'file')").all())
        assert view == {jude: pytest.approx(features_for(fake_id(1))["danceability"]),
                        pressure: pytest.approx(features_for(fake_id(3))["danceability"]),
                        typo: pytest.approx(features_for(fake_id(4))["danceability"])}

    with engine.begin() as conn:  # idempotent; and a stricter threshold takes back what it no longer allows
        assert match_local(conn).matched == 3
        stricter = match_local(conn, threshold=0.99)
    assert (stricter.matched, stricter.cleared) == (2, 1)
    with engine.connect() as conn:
        per_track = dict(conn.execute(select(extractions.c.track_id, func.count()).where(
            extractions.c.extractor == "spotify").group_by(extractions.c.track_id)).all())
        assert per_track[jude] == 1 and typo not in per_track
        assert conn.execute(select(tracks.c.spotify_lookup).where(tracks.c.id == typo)).scalar() is None
        assert conn.execute(select(func.count()).select_from(features)).scalar() == (5 + 2) * len(SPOTIFY_V1)

    result = CliRunner().invoke(app, ["--db", db_url_of(engine), "spotify", "match-local"])
    assert result.exit_code == 0 and "3 of 4 tracks matched" in result.output
