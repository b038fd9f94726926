"""The local class page (``music-classifier serve``): a Starlette app over the class's database.

Routes read through library functions (:mod:`music_classifier.db.browse`, the audit, the registry,
the read-only query path); templates only show what they are given. Handlers are plain functions,
which Starlette runs in its thread pool, so the synchronous database calls never block the loop.
:mod:`.security` guards every request.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, func, select
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from music_classifier.db.browse import (
    DEFAULT_PAGE_SIZE,
    TRACK_STATES,
    TrackFilter,
    audit_queue,
    filter_choices,
    genre_names,
    list_tracks,
    track_facts,
)
from music_classifier.errors import MusicClassifierError
from music_classifier.ingest.label_decisions import track_decision
from music_classifier.web.audio import AudioRefused, audio_file
from music_classifier.web.compressed import asset_response
from music_classifier.web.model_map import MapCache
from music_classifier.web.plotly_assets import PlotlyAssets
from music_classifier.web.retrain import Retrainer
from music_classifier.web.security import CSRF_FIELD, Guard, new_csrf_token

HERE = Path(__file__).parent
SIMILAR_K = 5
TOP_TAGS = 10
#: The SQL page shows at most this many rows (the CSV download has the `sql` command's limits).
SQL_PAGE_ROWS = 1000
SQL_PAGE_BYTES = 4 << 20
#: plotly.js's address names its version, so a browser keeps it until an upgrade changes the address.
VENDOR_CACHE = "private, max-age=31536000, immutable"


@dataclass
class ServeConfig:
    database_url: str
    library: Path | None = None  # the configured root (--library); else the database's stored root
    token: str | None = None
    models_path: Path | None = None
    readonly_url: str | None = None
    readonly_role: str | None = None
    statement_timeout_ms: int = 30_000
    retrain_options: dict[str, Any] = field(default_factory=dict)  # TrainOptions fields beyond final=True
    redis_url: str | None = None  # Retrain goes to the RQ queue (a worker runs it), else a thread here
    queue_name: str = "music-classifier"


def create_app(config: ServeConfig, *, engine: Engine | None = None) -> Any:
    """The ASGI application: the routes wrapped in :class:`~.security.Guard`."""
    from music_classifier.db.engine import open_engine

    engine = engine or open_engine(config.database_url)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    csrf = new_csrf_token()
    models_path = config.models_path or (Path.cwd() / "models").resolve()
    retrainer = _retrainer(config, engine, models_path)
    maps = MapCache(engine)
    plotly = PlotlyAssets()

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(request, name, {"csrf": csrf, "csrf_field": CSRF_FIELD, **context},
                                          status_code=status)

    def tracks_page(request: Request) -> Response:
        q = request.query_params
        state = q.get("state") or None
        flt = TrackFilter(genre=q.get("genre") or None, effective=q.get("effective") or None,
                          student=q.get("student") or None,
                          dataset=q.get("dataset") or None, state=state if state in TRACK_STATES else None,
                          search=(q.get("q") or "").strip() or None)
        limit = _int(q.get("limit"))
        with engine.connect() as conn:
            result = list_tracks(conn, flt, after=_int(q.get("after")), before=_int(q.get("before")),
                                 limit=limit or DEFAULT_PAGE_SIZE)
            choices = filter_choices(conn)
        keep = {**{("q" if k == "search" else k): v for k, v in flt.active().items()},
                **({"limit": str(limit)} if limit else {})}

        def link(**key: int) -> str:
            return "/tracks?" + urlencode({**keep, **key})

        return page(request, "tracks.html", page=result, active=flt.active(), choices=choices,
                    search=flt.search or "", next_url=link(after=result.after) if result.after else None,
                    prev_url=link(before=result.before) if result.before else None)

    def track_page(request: Request) -> Response:
        track_id = request.path_params["track_id"]
        with engine.connect() as conn:
            facts = track_facts(conn, track_id)
            if facts is None:
                raise HTTPException(404, f"no track {track_id}")
            prediction, prediction_note = _prediction(conn, track_id, models_path)
            tags = _top_tags(conn, track_id)
            similar, similar_note = _similar(conn, track_id)
            decision = track_decision(conn, track_id)
            menu = genre_names(conn)
        return page(request, "track.html", track=facts, prediction=prediction, prediction_note=prediction_note,
                    tags=tags, similar=similar, similar_note=similar_note, decision=decision, genres=menu)

    def audio(request: Request) -> Response:
        track_id = request.path_params["track_id"]
        with engine.connect() as conn:
            try:
                path = audio_file(conn, track_id, config.library)
            except AudioRefused as exc:
                raise HTTPException(404, str(exc)) from None
        return FileResponse(path, media_type=_media_type(path))

    def audit_page(request: Request) -> Response:
        with engine.connect() as conn:
            queue = audit_queue(conn)
            menu = genre_names(conn) if queue else []
        return page(request, "audit.html", audit=queue, suspects=queue.rows if queue else [], genres=menu)

    async def decide(request: Request) -> Response:
        """keep / set / undo a track's genre (the ``labels`` functions); the form's CSRF token was checked
        by the Guard. From the audit queue's htmx the answer is the settled row; else a redirect back."""
        track_id = request.path_params["track_id"]
        form = await _form(request)
        back = "/audit" if form.get("back") == "audit" else f"/tracks/{track_id}"  # never a path from the request
        try:
            outcome = await run_in_threadpool(_decide, engine, track_id, form)
        except MusicClassifierError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        if request.headers.get("hx-request") == "true":
            return page(request, "settled_row.html", outcome=outcome, action=form.get("action"))
        return RedirectResponse(back, status_code=303)

    def models_page(request: Request) -> Response:
        from music_classifier.models.datasets import list_datasets
        from music_classifier.models.registry import list_models

        with engine.connect() as conn:
            rows = list_models(conn)
            estimates = _estimates(conn, [r["id"] for r in rows])
            names = [d.name for d in list_datasets(conn)]
        return page(request, "models.html", models=list(reversed(rows)), estimates=estimates, datasets=names)

    def model_page(request: Request) -> Response:
        from music_classifier.models.cv import estimate_text
        from music_classifier.models.report import confusion_of, model_row, per_genre_absent_note

        model_id = request.path_params["model_id"]
        with engine.connect() as conn:
            try:
                row = model_row(conn, model_id)
            except MusicClassifierError as exc:
                raise HTTPException(404, str(exc)) from None
        tm = row.get("test_metrics") or {}
        try:
            matrix, labels = confusion_of(tm)
        except KeyError:
            matrix, labels = None, []
        per_genre = tm.get("per_genre") or {}
        est = (row.get("params") or {}).get("estimate")
        return page(request, "model.html", model=row, estimate=estimate_text(est) if est else None,
                    basis=(row.get("params") or {}).get("model_basis", "held-out split"), matrix=matrix,
                    labels=labels, per_genre=[{"genre": g, **per_genre[g]} for g in
                                              [g for g in labels if g in per_genre] +
                                              [g for g in per_genre if g not in labels]],
                    per_genre_note=None if per_genre else per_genre_absent_note(row),
                    metrics={k: tm.get(k) for k in ("accuracy", "balanced_accuracy", "macro_f1", "n")},
                    plotly_js=plotly.script_url, plotly_css=plotly.css_url,
                    plotly_skip_styles=plotly.skip_style_ids if plotly.script_url else [])

    def model_map_json(request: Request) -> Response:
        """The model page's map as Plotly figure JSON (computed once per model and audit: :class:`MapCache`)."""
        try:
            answer = maps.get(request.path_params["model_id"])
        except MusicClassifierError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        return asset_response(request, answer, cache_control="private, no-cache")

    def vendor(request: Request) -> Response:
        name, version = request.path_params["name"], plotly.version
        asset = (plotly.script if name == f"plotly-{version}.min.js" else
                 plotly.css if name == f"plotly-{version}.css" else None) if version else None
        if asset is None:
            raise HTTPException(404, "no such file")
        return asset_response(request, asset, cache_control=VENDOR_CACHE)

    async def retrain_async(request: Request) -> Response:
        from urllib.parse import parse_qs

        # A small urlencoded form, already read (and its CSRF token checked) by the Guard.
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        dataset = (form.get("dataset") or [""])[-1]
        if not dataset:
            return PlainTextResponse("choose a dataset to retrain", status_code=400)
        job = await run_in_threadpool(retrainer.start, dataset)
        return page(request, "job.html", status=202, job=job)

    def job_page(request: Request) -> Response:
        job = retrainer.get(request.path_params["job_id"])
        if job is None:
            raise HTTPException(404, "no such job (the server was restarted?)")
        return page(request, "job.html", job=job)

    def sql_page(request: Request) -> Response:
        query = request.query_params.get("q", "")
        result, error = None, None
        if query.strip():
            try:
                result = _run_sql(config, query, max_rows=SQL_PAGE_ROWS, max_bytes=SQL_PAGE_BYTES)
            except MusicClassifierError as exc:
                error = str(exc)
        return page(request, "sql.html", status=400 if error else 200, query=query, result=result, error=error,
                    max_rows=SQL_PAGE_ROWS)

    def sql_csv(request: Request) -> Response:
        from music_classifier.csv_safety import neutralise_row
        from music_classifier.db.result_limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS

        query = request.query_params.get("q", "")
        try:
            result = _run_sql(config, query, max_rows=DEFAULT_MAX_ROWS, max_bytes=DEFAULT_MAX_BYTES)
        except MusicClassifierError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(neutralise_row(list(result.columns)))
        for row in result.rows:
            writer.writerow(neutralise_row(["" if v is None else v for v in row]))
        headers = {"content-disposition": 'attachment; filename="query.csv"'}
        if result.cut is not None:
            headers["x-result-cut"] = str(result.cut)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)

    def home(request: Request) -> Response:
        return RedirectResponse("/tracks", status_code=303)

    def not_found(request: Request, exc: HTTPException) -> Response:
        return page(request, "error.html", status=exc.status_code, message=exc.detail)

    routes = [
        Route("/", home),
        Route("/tracks", tracks_page),
        Route("/tracks/{track_id:int}", track_page),
        Route("/tracks/{track_id:int}/decide", decide, methods=["POST"]),
        Route("/audio/{track_id:int}", audio, methods=["GET", "HEAD"]),
        Route("/audit", audit_page),
        Route("/models", models_page),
        Route("/models/{model_id:int}", model_page),
        Route("/models/{model_id:int}/map.json", model_map_json),
        Route("/vendor/{name:str}", vendor),
        Route("/retrain", retrain_async, methods=["POST"]),
        Route("/jobs/{job_id:str}", job_page),
        Route("/sql", sql_page),
        Route("/sql.csv", sql_csv),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found})
    app.state.engine = engine
    app.state.retrainer = retrainer
    app.state.maps = maps
    app.state.csrf_token = csrf
    return Guard(app, csrf_token=csrf, token=config.token)


#: Who decided, when the page's "your name" field is empty.
DEFAULT_DECIDER = "serve"
DECISION_ACTIONS = ("keep", "set", "undo")


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the Guard has read the body and checked its CSRF token): the last value
    of each field."""
    from urllib.parse import parse_qs

    return {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}


def _decide(engine: Engine, track_id: int, form: dict[str, str]) -> Any:
    """One label decision from the page's form, through the same library functions as ``labels``."""
    from music_classifier.db.tables import label_audits
    from music_classifier.errors import InputError
    from music_classifier.ingest.label_decisions import keep_genre, set_genre, undo_decision

    action = form.get("action", "")
    if action not in DECISION_ACTIONS:
        raise InputError(f"unknown action {action[:40]!r}: keep, set or undo")
    by = (form.get("decided_by") or "").strip() or DEFAULT_DECIDER
    note = form.get("note") or None
    audit_id = _int(form.get("audit_id"))
    with engine.begin() as conn:
        if audit_id is not None and conn.execute(
                select(label_audits.c.id).where(label_audits.c.id == audit_id)).first() is None:
            raise InputError(f"no audit {audit_id}")
        if action == "keep":
            return keep_genre(conn, track_id, decided_by=by, note=note, audit_id=audit_id)
        if action == "set":
            return set_genre(conn, track_id, form.get("genre", ""), decided_by=by, note=note, audit_id=audit_id)
        return undo_decision(conn, track_id, decided_by=by, note=note)


def _retrainer(config: ServeConfig, engine: Engine, models_path: Path) -> Any:
    if config.redis_url:
        from music_classifier.jobs.runtime import make_queue, redis_connection
        from music_classifier.web.retrain import QueueRetrainer

        return QueueRetrainer(make_queue(redis_connection(config.redis_url), config.queue_name))
    return Retrainer(engine, models_path, options=config.retrain_options)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


_MEDIA_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".flac": "audio/flac", ".ogg": "audio/ogg",
                ".m4a": "audio/mp4"}


def _media_type(path: Path) -> str:
    return _MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")


def _prediction(conn: Any, track_id: int, models_path: Path) -> tuple[Any, str | None]:
    """The newest model's answer for the track, computed now and not stored (a page view writes nothing)."""
    from music_classifier.db.tables import models
    from music_classifier.models.predict import predict_tracks
    from music_classifier.settings import get_settings

    model_id = conn.execute(select(func.max(models.c.id))).scalar()
    if model_id is None:
        return None, "no model yet: train one (Models page)"
    try:
        [pred] = predict_tracks(conn, int(model_id), [int(track_id)], settings=get_settings(models_dir=models_path))
    except MusicClassifierError as exc:
        return None, f"model {model_id}: {exc}"
    finally:
        conn.rollback()  # predict_tracks stores its answer; a GET keeps the database as it was
    return {"model_id": int(model_id), "genre": pred.genre, "probabilities": list(pred.probabilities.items()),
            "in_training": pred.in_training}, None


def _top_tags(conn: Any, track_id: int) -> list[tuple[str, float]]:
    from music_classifier.db.tags import stored_top_tags

    return stored_top_tags(conn, [int(track_id)], k=TOP_TAGS).get(int(track_id), [])


def _similar(conn: Any, track_id: int) -> tuple[list[Any], str | None]:
    from music_classifier.models.similar import nearest_to_track

    try:
        return nearest_to_track(conn, int(track_id), k=SIMILAR_K).neighbours, None
    except MusicClassifierError as exc:
        return [], str(exc)


def _estimates(conn: Any, model_ids: list[int]) -> dict[int, str]:
    from music_classifier.db.tables import models
    from music_classifier.models.cv import estimate_text

    out = {}
    for mid, params in conn.execute(select(models.c.id, models.c.params).where(models.c.id.in_(model_ids))):
        est = (params or {}).get("estimate") if isinstance(params, dict) else None
        if est:
            out[int(mid)] = estimate_text(est)
    return out


def _run_sql(config: ServeConfig, query: str, *, max_rows: int, max_bytes: int) -> Any:
    from music_classifier.db.readonly import run_readonly_query
    from music_classifier.db.result_limits import ResultLimits
    from music_classifier.settings import normalise_database_url

    return run_readonly_query(normalise_database_url(config.database_url), query, readonly_url=config.readonly_url,
                              role=config.readonly_role, statement_timeout_ms=config.statement_timeout_ms,
                              limits=ResultLimits(max_rows=max_rows, max_bytes=max_bytes))
