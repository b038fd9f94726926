"""Running the page: which binds are allowed, and uvicorn around :func:`~.app.create_app`."""

from __future__ import annotations

import ipaddress
from typing import Any

from music_classifier.errors import ConfigError
from music_classifier.web.security import LOOPBACK_HOSTS

MIN_TOKEN_CHARS = 16


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """ConfigError (one line) for a bind the page refuses: any host but the loopback without a token,
    or a token too short to resist guessing."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"--token must be at least {MIN_TOKEN_CHARS} characters (e.g. the output of "
                          "`python -c 'import secrets; print(secrets.token_urlsafe())'`)")
    if not is_loopback(host) and not token:
        raise ConfigError(f"--host {host} lets other computers reach the page: it needs a token (--token T or "
                          "MUSIC_CLASSIFIER_TOKEN)")


def config_from_settings(settings: Any, *, token: str | None) -> Any:
    from music_classifier.web.app import ServeConfig

    return ServeConfig(database_url=settings.resolved_database_url, library=settings.library, token=token,
                       models_path=settings.models_path, readonly_url=settings.readonly_url,
                       readonly_role=settings.readonly_role, statement_timeout_ms=settings.statement_timeout_ms,
                       redis_url=settings.redis_url, queue_name=settings.queue_name)


def run_server(settings: Any, *, host: str, port: int, token: str | None, engine: Any = None) -> None:
    import uvicorn

    from music_classifier.web.app import create_app

    app = create_app(config_from_settings(settings, token=token), engine=engine)
    uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
