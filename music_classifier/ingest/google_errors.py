"""One mapping of the Google Sheets client's failures to one-line errors, for reading and writing alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from music_classifier.errors import RemoteError


@contextmanager
def google_sheet_errors(key: str, email: str, token_uri: str, *, forbidden: str) -> Iterator[None]:
    """Turn gspread's API errors, token failures and connection errors inside the block into a
    :class:`RemoteError` naming the sheet; ``forbidden`` is the line for a 403 (what to share, and how)."""
    import gspread
    import requests
    from google.auth.exceptions import GoogleAuthError

    try:
        yield
    except gspread.exceptions.APIError as exc:
        status = exc.response.status_code
        if status == 403:
            raise RemoteError(forbidden) from None
        if status == 404:
            raise RemoteError(f"Google Sheet {key} not found; check the key or URL") from None
        message = str(exc.error.get("message", "")).splitlines()[0] if exc.error.get("message") else ""
        raise RemoteError(f"Google Sheets API error {status} for sheet {key}: {message}".rstrip(": ")) from None
    except GoogleAuthError as exc:
        raise RemoteError(f"Google token request for {email} failed at {token_uri}: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    except requests.RequestException as exc:
        raise RemoteError(f"cannot reach the Google Sheets API for sheet {key}: {type(exc).__name__}") from None
