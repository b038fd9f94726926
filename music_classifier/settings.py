"""One settings object, built lazily from the environment and CLI overrides.

Nothing here runs at import time: call :func:`get_settings` when a setting is needed. The CLI
passes its global options (``--db``, ``--library``) as overrides.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_FILE = "music_classifier.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    database_url: str = Field(default="", validation_alias="DATABASE_URL")
    library: Path | None = Field(default=None, validation_alias="MUSIC_CLASSIFIER_LIBRARY")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    queue_name: str = Field(default="music-classifier", validation_alias="MUSIC_CLASSIFIER_QUEUE")
    google_credentials: Path | None = Field(default=None, validation_alias="GOOGLE_APPLICATION_CREDENTIALS")
    spotify_client_id: str | None = Field(default=None, validation_alias="SPOTIFY_CLIENT_ID")
    spotify_client_secret: str | None = Field(default=None, validation_alias="SPOTIFY_CLIENT_SECRET")
    # Base URLs are settings so that tests (and compatible providers) can point the clients elsewhere.
    spotify_api_url: str = Field(default="https://api.spotify.com/v1/", validation_alias="SPOTIFY_API_URL")
    spotify_auth_url: str = Field(
        default="https://accounts.spotify.com/api/token", validation_alias="SPOTIFY_AUTH_URL"
    )
    audio_features_provider: str = Field(default="spotify", validation_alias="AUDIO_FEATURES_PROVIDER")
    reccobeats_api_url: str = Field(default="https://api.reccobeats.com/v1/", validation_alias="RECCOBEATS_API_URL")
    sheets_api_url: str = Field(default="https://sheets.googleapis.com/v4/spreadsheets/",
                                validation_alias="GOOGLE_SHEETS_API_URL")
    sheets_export_url: str = Field(default="https://docs.google.com/spreadsheets/d/",
                                   validation_alias="GOOGLE_SHEETS_EXPORT_URL")
    models_dir: Path | None = Field(default=None, validation_alias="MUSIC_CLASSIFIER_MODELS_DIR")
    # None: each database and schema's own role (db/readonly_roles.py readonly_role_name)
    readonly_role: str | None = Field(default=None, validation_alias="MUSIC_CLASSIFIER_READONLY_ROLE")
    statement_timeout_ms: int = Field(default=30_000, validation_alias="MUSIC_CLASSIFIER_STATEMENT_TIMEOUT_MS")
    # Kept as text so that a bad value gets the one-line error of models.parallel.resolve_jobs.
    jobs: str | None = Field(default=None, validation_alias="MUSIC_CLASSIFIER_JOBS")
    readonly_url: str | None = Field(default=None, validation_alias="MUSIC_CLASSIFIER_READONLY_URL")  # `sql` command

    @property
    def resolved_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{Path.cwd() / DEFAULT_SQLITE_FILE}"
        return normalise_database_url(url)

    @property
    def library_root(self) -> Path:
        return (self.library or Path.cwd()).expanduser().resolve()

    @property
    def models_path(self) -> Path:
        return (self.models_dir or Path.cwd() / "models").expanduser().resolve()


def normalise_database_url(url: str) -> str:
    """Route plain ``postgresql://`` URLs through psycopg 3 (SQLAlchemy's default driver is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment; non-None keyword overrides win (CLI options)."""
    settings = Settings()
    clean = {k: v for k, v in overrides.items() if v is not None}
    return settings.model_copy(update=clean) if clean else settings
