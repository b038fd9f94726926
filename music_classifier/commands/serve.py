"""`music-classifier serve`: the local class page (music_classifier/web), served by uvicorn."""

from __future__ import annotations

import typer

from music_classifier.commands.common import console, handle_errors, state

TOKEN_ENV = "MUSIC_CLASSIFIER_TOKEN"


@handle_errors
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Any but the loopback needs a token."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="Port to listen on."),
    token: str | None = typer.Option(None, "--token", envvar=TOKEN_ENV, metavar="T",
                                     help=f"Every request must carry this token (default: {TOKEN_ENV}); required "
                                          "with a --host other than 127.0.0.1 / localhost / ::1."),
) -> None:
    """Serve a local page over the class's database: tracks with a player, the audit queue, models, SQL.

    It binds 127.0.0.1 (this computer only) unless --host says otherwise; then a token is required and
    the page is opened at the printed address ending in ?token=..., which sets a cookie. See
    docs/security.md (serve).

    Example: music-classifier --db class.db serve --port 8765
    """
    from music_classifier.web.server import check_bind, run_server

    check_bind(host, token)
    st = state(ctx)
    settings = st.settings
    st.engine  # noqa: B018 - refuses a missing database or a bad URL in one line before the server starts
    console.print(f"serving {settings.resolved_database_url.split('@')[-1]} on {_address(host, port, token)} "
                  "(Ctrl-C stops)", highlight=False, soft_wrap=True)
    run_server(settings, host=host, port=port, token=token, engine=st.engine)


def _address(host: str, port: int, token: str | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + ("?token=<your token>" if token else "")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)

