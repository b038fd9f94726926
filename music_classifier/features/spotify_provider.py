"""Spotify Web API (through spotipy) and a compatible audio-features service, behind small interfaces.

- :class:`AudioFeaturesProvider`: Spotify ids -> the declared audio features (spotify_names). Two implementations:
  :class:`SpotifyAudioFeatures` (spotipy, client credentials, batches of 100) and
  :class:`ReccoBeatsAudioFeatures` (the same fields by Spotify id, batches of 40, no key).
- :class:`SpotifyCatalog`: search (artist, title) -> best match by :mod:`.spotify_match`; playlist items.

Retries are ours, not spotipy's: its urllib3 ``Retry`` honours ``Retry-After`` by *sleeping* (an hour,
silently, for ``Retry-After: 3600``). So spotipy gets a plain ``requests.Session`` (no retrying
adapter) and ``retries=0``; a 429 raises :class:`RateLimited` at once for the job layer to
re-enqueue; 5xx and network errors are retried here with bounded exponential backoff.

Pure: no database access. Base URLs come from settings, so tests point everything at a local fake.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import requests

from music_classifier.errors import ConfigError, InputError, RemoteError
from music_classifier.features.spotify_errors import (
    AudioFeaturesForbidden,
    PlaylistNotFound,
    RateLimited,
    TransientSpotifyError,
)
from music_classifier.features.spotify_match import MATCH_THRESHOLD, best_candidate
from music_classifier.features.spotify_names import SPOTIFY_FEATURE_NAMES
from music_classifier.text_safety import clean_text

if TYPE_CHECKING:
    import spotipy

    from music_classifier.settings import Settings

EXTRACTOR_NAME = "spotify"
EXTRACTOR_VERSION = "1"
SPOTIFY_BATCH = 100  # the Web API's maximum ids per audio-features request
RECCOBEATS_BATCH = 40  # ReccoBeats answers 400 "size must be between 1 and 40" above this
PLAYLIST_PAGE = 100  # the Web API's maximum page size for playlist items
SEARCH_LIMIT = 10  # results compared per search: the right one is nearly always in the first few
EDITORIAL_PREFIX = "37i9dQZF"  # Spotify's own editorial and algorithmic playlists
DEFAULT_TIMEOUT_S = 10.0

FeatureValues = dict[str, float | None]
T = TypeVar("T")

_SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_PLAYLIST_URL = re.compile(r"^(?:https?://)?open\.spotify\.com/(?:intl-[\w-]+/)?(?:user/[^/]+/)?playlist/([0-9A-Za-z]+)")
_PLAYLIST_URI = re.compile(r"^spotify:(?:user:[^:]+:)?playlist:([0-9A-Za-z]+)$")
_TRACK_HREF = re.compile(r"/track/([0-9A-Za-z]{22})")


def extraction_params(provider: str) -> dict[str, str]:
    """Parameters of a ``spotify`` extraction: where the values came from (spotify|reccobeats|dataset)."""
    return {"provider": provider}


def params_hash(params: Mapping[str, Any]) -> str:
    """Same rule as the librosa extractor: sha256 of canonical JSON, first 16 hex digits."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


class AudioFeaturesProvider(Protocol):
    """Spotify ids -> audio features named as in SPOTIFY_FEATURE_NAMES (None for an id the service does not know)."""

    name: str
    batch_size: int

    def fetch_audio_features(self, ids: Sequence[str]) -> dict[str, FeatureValues | None]: ...


@dataclass
class Backoff:
    """Bounded exponential backoff for 5xx and network errors: ``base_s * 2**n`` capped, ``attempts`` tries."""

    attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def run(self, call: Callable[[], T], what: str) -> T:
        last = ""
        for attempt in range(self.attempts):
            try:
                return call()
            except _Retryable as exc:
                last = str(exc)
                if attempt + 1 < self.attempts:
                    self.sleep(min(self.cap_s, self.base_s * 2**attempt))
        raise TransientSpotifyError(f"{what} failed after {self.attempts} attempts: {last}")


class _Retryable(Exception):
    """Internal: a failure worth another attempt (5xx, connection refused, timeout)."""


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """Parse ``Retry-After``: delta seconds or an HTTP date; a missing or odd value gives ``default``."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


def features_from(obj: Mapping[str, Any]) -> FeatureValues:
    """The SPOTIFY_FEATURE_NAMES fields of an audio-features object; a field the service lacks stays None."""
    out: FeatureValues = {}
    for name in SPOTIFY_FEATURE_NAMES:
        value = obj.get(name)
        out[name] = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    return out


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- spotipy ---------------------------------------------------------------------------------------


def make_spotipy(settings: Settings, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> spotipy.Spotify:
    """A spotipy client on client credentials, pointed at the configured URLs, with its retries off."""
    import spotipy
    from spotipy.cache_handler import MemoryCacheHandler
    from spotipy.oauth2 import SpotifyClientCredentials

    _quiet_spotipy_logging()
    if not settings.spotify_client_id or not settings.spotify_client_secret:
        raise ConfigError("Spotify needs SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET (an app at "
                          "developer.spotify.com/dashboard); they are not set")
    # A plain session: no urllib3 Retry adapter, so a 429 comes back to us instead of being slept through.
    session = requests.Session()
    auth = SpotifyClientCredentials(
        client_id=settings.spotify_client_id,
        client_secret=settings.spotify_client_secret,
        requests_session=session,
        requests_timeout=timeout_s,
        cache_handler=MemoryCacheHandler(),  # the default writes a .cache file into the working directory
    )
    auth.OAUTH_TOKEN_URL = settings.spotify_auth_url  # a class attribute in spotipy; per instance here
    client = spotipy.Spotify(
        auth_manager=auth, requests_session=session, requests_timeout=timeout_s,
        retries=0, status_retries=0, backoff_factor=0,
    )
    client.prefix = settings.spotify_api_url.rstrip("/") + "/"
    return client


def _quiet_spotipy_logging() -> None:
    """spotipy logs every HTTP error at ERROR level; without logging configured, Python prints those to
    stderr next to our own one-line message. A NullHandler stops that and still lets an app that does
    configure logging see them."""
    logger = logging.getLogger("spotipy")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


class _SpotipyCaller:
    """Runs spotipy calls, mapping HTTP outcomes to our errors and retrying only what is transient."""

    def __init__(self, client: spotipy.Spotify, backoff: Backoff) -> None:
        self.client = client
        self.backoff = backoff

    def call(self, what: str, fn: Callable[[], T], *, on_status: Mapping[int, Callable[[], Exception]] = {}) -> T:  # noqa: B006
        from spotipy.exceptions import SpotifyException
        from spotipy.oauth2 import SpotifyOauthError

        def attempt() -> T:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # audio_features is "deprecated"
                    return fn()
            except SpotifyException as exc:
                status = exc.http_status
                if status == 429:
                    raise RateLimited(retry_after_seconds((exc.headers or {}).get("Retry-After"))) from None
                if status in on_status:
                    raise on_status[status]() from None
                if status >= 500:
                    raise _Retryable(f"HTTP {status}") from None
                message = str(exc.msg).splitlines()[-1].strip() if exc.msg else ""
                raise RemoteError(f"{what}: Spotify answered {status} {message}".rstrip()) from None
            except SpotifyOauthError as exc:
                # spotipy drops the token endpoint's status; the HTTPError it was raised from keeps it.
                cause = exc.__context__
                response = getattr(cause, "response", None) if isinstance(cause, requests.HTTPError) else None
                if response is not None and response.status_code == 429:
                    raise RateLimited(retry_after_seconds(response.headers.get("Retry-After"))) from None
                if response is not None and response.status_code >= 500:
                    raise _Retryable(f"token endpoint HTTP {response.status_code}") from None
                detail = exc.error_description or exc.error or str(exc)
                raise RemoteError(f"Spotify refused the client credentials (SPOTIFY_CLIENT_ID/SECRET): "
                                  f"{detail}") from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Retryable(type(exc).__name__) from None

        return self.backoff.run(attempt, what)


class SpotifyAudioFeatures:
    """Spotify's GET /audio-features, 100 ids per request. A 403 raises AudioFeaturesForbidden."""

    name = "spotify"
    batch_size = SPOTIFY_BATCH

    def __init__(self, client: spotipy.Spotify, *, backoff: Backoff | None = None) -> None:
        self._caller = _SpotipyCaller(client, backoff or Backoff())

    def fetch_audio_features(self, ids: Sequence[str]) -> dict[str, FeatureValues | None]:
        unique = list(dict.fromkeys(ids))
        out: dict[str, FeatureValues | None] = {}
        for batch in chunks(unique, self.batch_size):
            rows = self._caller.call(
                "audio-features", lambda b=batch: self._caller.client.audio_features(list(b)),
                on_status={403: AudioFeaturesForbidden},
            ) or []
            # Spotify answers positionally, with null for an id it has no features for.
            for sid, row in zip(batch, rows, strict=False):
                out[sid] = features_from(row) if row else None
        for sid in unique:
            out.setdefault(sid, None)
        return out


class ReccoBeatsAudioFeatures:
    """A ReccoBeats-compatible service: GET {base}audio-features?ids=… (Spotify ids), 40 per request.

    Its rows carry its own UUID as ``id``; the Spotify id is only in ``href``
    (``https://open.spotify.com/track/<id>``), and unknown ids are simply left out.
    """

    name = "reccobeats"
    batch_size = RECCOBEATS_BATCH

    def __init__(self, base_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, backoff: Backoff | None = None,
                 session: requests.Session | None = None) -> None:
        self.url = base_url.rstrip("/") + "/audio-features"
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff()
        self.session = session or requests.Session()

    def _get(self, batch: Sequence[str]) -> list[dict[str, Any]]:
        try:
            resp = self.session.get(self.url, params={"ids": ",".join(batch)},
                                    headers={"Accept": "application/json"}, timeout=self.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retryable(type(exc).__name__) from None
        if resp.status_code == 429:
            raise RateLimited(retry_after_seconds(resp.headers.get("Retry-After")), service="ReccoBeats")
        if resp.status_code >= 500:
            raise _Retryable(f"HTTP {resp.status_code}")
        if resp.status_code != 200:
            raise RemoteError(f"ReccoBeats audio-features answered {resp.status_code}: {resp.text[:200]}")
        try:
            return list(resp.json().get("content") or [])
        except ValueError:
            raise RemoteError("ReccoBeats audio-features answered 200 with a body that is not JSON") from None

    def fetch_audio_features(self, ids: Sequence[str]) -> dict[str, FeatureValues | None]:
        unique = list(dict.fromkeys(ids))
        out: dict[str, FeatureValues | None] = dict.fromkeys(unique)
        for batch in chunks(unique, self.batch_size):
            for row in self.backoff.run(lambda b=batch: self._get(b), "ReccoBeats audio-features"):
                found = _TRACK_HREF.search(str(row.get("href") or ""))
                if found and found.group(1) in out:
                    out[found.group(1)] = features_from(row)
        return out


def make_audio_features_provider(settings: Settings, *, backoff: Backoff | None = None) -> AudioFeaturesProvider:
    """The provider AUDIO_FEATURES_PROVIDER names: ``spotify`` (default) or ``reccobeats``."""
    name = settings.audio_features_provider.strip().lower()
    if name == "spotify":
        return SpotifyAudioFeatures(make_spotipy(settings), backoff=backoff)
    if name == "reccobeats":
        return ReccoBeatsAudioFeatures(settings.reccobeats_api_url, backoff=backoff)
    raise ConfigError(f"AUDIO_FEATURES_PROVIDER={settings.audio_features_provider!r}: use spotify or reccobeats")


# --- catalogue: search and playlists ---------------------------------------------------------------


@dataclass(frozen=True)
class TrackMatch:
    spotify_id: str
    artist: str  # the candidate's credit, artists joined with ", "
    title: str
    score: float  # 0..1, spotify_match.match_score


@dataclass(frozen=True)
class PlaylistTrack:
    spotify_id: str
    artist: str
    title: str
    duration_ms: int | None


@dataclass
class Playlist:
    playlist_id: str
    tracks: list[PlaylistTrack]
    skipped: int = 0  # episodes, local files and unavailable tracks (no Spotify id)


def parse_playlist_ref(ref: str) -> str:
    """A playlist URL, ``spotify:playlist:`` URI or bare id -> the 22-character id (InputError otherwise)."""
    text = ref.strip()
    for pattern in (_PLAYLIST_URL, _PLAYLIST_URI):
        found = pattern.match(text)
        if found:
            text = found.group(1)
            break
    if not _SPOTIFY_ID.match(text):
        raise InputError(f"playlist {ref!r}: expected an open.spotify.com/playlist/… link, a spotify:playlist:… "
                         "URI or a 22-character playlist id")
    return text


def playlist_not_found(playlist_id: str) -> PlaylistNotFound:
    if playlist_id.startswith(EDITORIAL_PREFIX):
        return PlaylistNotFound(
            f"playlist {playlist_id}: Spotify answered 404 because it is one of Spotify's own editorial or "
            f"algorithmic playlists (ids starting {EDITORIAL_PREFIX}), which the Web API no longer serves to apps "
            "created after 2024-11-27; copy its tracks into a playlist of your own and import that one")
    return PlaylistNotFound(f"playlist {playlist_id}: Spotify answered 404 (no such playlist, or it is private); "
                            "check the link and that the playlist is public")


def _credit(track: Mapping[str, Any]) -> str:
    return clean_text(", ".join(str(a.get("name")) for a in track.get("artists") or [] if a.get("name")))


def _title(track: Mapping[str, Any]) -> str:
    # Names are the service's text, shown in our tables: no control characters kept (text_safety).
    return clean_text(str(track.get("name") or ""))


def _valid_id(track: Mapping[str, Any]) -> bool:
    """A track id is stored as a key and shown as is: only a real 22-character base62 id is taken."""
    return isinstance(track.get("id"), str) and bool(_SPOTIFY_ID.match(track["id"]))


def _search_query(artist: str, title: str) -> str:
    clean = [" ".join(s.replace('"', " ").replace(":", " ").split()) for s in (title, artist)]
    return f"track:{clean[0]} artist:{clean[1]}"


class SpotifyCatalog:
    """Search and playlist items on the Spotify Web API."""

    def __init__(self, client: spotipy.Spotify, *, backoff: Backoff | None = None) -> None:
        self._caller = _SpotipyCaller(client, backoff or Backoff())

    @classmethod
    def from_settings(cls, settings: Settings, *, backoff: Backoff | None = None) -> SpotifyCatalog:
        return cls(make_spotipy(settings), backoff=backoff)

    def _search(self, query: str) -> list[dict[str, Any]]:
        client = self._caller.client
        result = self._caller.call("search", lambda: client.search(q=query, limit=SEARCH_LIMIT, type="track"))
        return [t for t in ((result or {}).get("tracks") or {}).get("items") or [] if t and _valid_id(t)]

    def best_search_match(self, artist: str, title: str) -> TrackMatch | None:
        """The best of the search results by normalised similarity, whatever its score (None: no results)."""
        items = self._search(_search_query(artist, title))
        if not items:  # field filters are strict about spelling; a plain query is more forgiving
            items = self._search(f"{artist} {title}")
        best = best_candidate(artist, title, ((t, _credit(t), _title(t)) for t in items))
        if best is None:
            return None
        track, score = best
        return TrackMatch(track["id"], _credit(track), _title(track), score)

    def resolve(self, artist: str, title: str, *, threshold: float = MATCH_THRESHOLD) -> TrackMatch | None:
        """The best match at or above ``threshold``, else None ("not found", never a guess)."""
        match = self.best_search_match(artist, title)
        return match if match is not None and match.score >= threshold else None

    def playlist(self, ref: str) -> Playlist:
        """All tracks of a playlist, following ``next`` page links."""
        playlist_id = parse_playlist_ref(ref)
        client = self._caller.client
        not_found = {404: lambda: playlist_not_found(playlist_id)}
        page = self._caller.call(
            "playlist items",
            lambda: client.playlist_items(
                playlist_id, limit=PLAYLIST_PAGE, additional_types=("track",),
                fields="items(track(id,name,type,is_local,duration_ms,artists(name))),next,total"),
            on_status=not_found)
        playlist = Playlist(playlist_id, [])
        while page:
            for item in page.get("items") or []:
                track = (item or {}).get("track") or {}
                if not _valid_id(track) or track.get("is_local") or track.get("type", "track") != "track":
                    playlist.skipped += 1
                    continue
                playlist.tracks.append(PlaylistTrack(track["id"], _credit(track), _title(track),
                                                     track.get("duration_ms")))
            if not page.get("next"):
                break
            page = self._caller.call("playlist items", lambda p=page: client.next(p), on_status=not_found)
        return playlist
