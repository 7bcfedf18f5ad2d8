"""The dashboard app factory: `mc serve` calls `create_app(...)` and serves the result.

Read-only by construction: every route reads through `open_reader()` (one `StateReader` and one
`DashboardReader` per request), the `Guard` middleware refuses every method but GET/HEAD, and
nothing here reads the environment — all settings are arguments.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import jinja2
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from api.guard import Guard
from api.markdown import render_markdown
from api.svg import STATE_FILL, STATE_STROKE, bar_chart
from api.timeline import OUTCOME_FILL
from api.views import Readers, ServeFacts, overrides, serve_facts
from reconciler.commands.context import utcnow
from reconciler.commands.event_text import event_summary
from reconciler.engine.launch import Paths
from reconciler.serve.metrics import Metrics
from specs.errors import MCError
from specs.money import money_text
from state.dashboard import DashboardReader
from state.errors import StateError
from state.store import StateReader

HERE = Path(__file__).parent
T = TypeVar("T")
OpenReader = Callable[[], AbstractContextManager[tuple[StateReader, DashboardReader]]]
StatusFn = Callable[[], dict[str, Any]]


class Slots:
    """A counted limit (open SSE connections), safe across threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.used = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.used >= self.size:
                return False
            self.used += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.used = max(0, self.used - 1)


@dataclass(frozen=True)
class Context:
    """What every route needs; built once by `create_app`, closed over by the routers."""

    open_reader: OpenReader
    paths: Paths
    metrics: Metrics
    status: StatusFn | None
    clock: Callable[[], datetime]
    templates: Jinja2Templates
    poll_s: float
    stream_seconds: float
    streams: Slots

    def read(self, build: Callable[[Readers], T]) -> T:
        """Run `build` over the readers of one request (one cursor, closed afterwards)."""
        with self.open_reader() as (state, dash):
            return build(Readers(state, dash))

    def serve(self) -> ServeFacts | None:
        return serve_facts(self.status(), self.clock()) if self.status is not None else None

    def page(
        self, request: Request, template: str, build: Callable[[Readers], Any], **extra: Any
    ) -> HTMLResponse:
        """Render a page from what `build` reads; None from `build` is a 404."""
        view, last_seq, in_force = self.read(
            lambda r: (build(r), r.dash.last_event_seq(), overrides(r))
        )
        if view is None:
            raise HTTPException(404, "not found")
        context = {
            "view": view,
            "last_seq": last_seq,
            "overrides": in_force,
            "serve": self.serve(),
            "now": self.clock(),
            **extra,
        }
        return self.templates.TemplateResponse(
            request, template, context, headers={"Cache-Control": "no-store"}
        )


# --- template helpers ----------------------------------------------------------------------


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(0, seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


@jinja2.pass_context
def _age(context: jinja2.runtime.Context, when: datetime | None) -> str:
    if when is None:
        return "-"
    now: datetime = context["now"]
    return _ago((now - when).total_seconds())


def _duration(seconds: float | None) -> str:
    """A run's length: 850 ms, 12.4 s, 3m 05s, 2h 10m."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = int(seconds)
    return f"{s // 60}m {s % 60:02d}s" if s < 3600 else f"{s // 3600}h {s % 3600 // 60:02d}m"


@jinja2.pass_context
def _until(context: jinja2.runtime.Context, when: datetime | None) -> str:
    if when is None:
        return "-"
    now: datetime = context["now"]
    left = (when - now).total_seconds()
    return f"in {_ago(left)}" if left > 0 else "due now"


def _ts(when: datetime | None) -> str:
    return when.isoformat(sep=" ", timespec="seconds") if when else "-"


def _money(value: Any) -> str:
    """The one money format of tables and pages (specs/money.py): `$0.13` for 0.125."""
    return money_text(value)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "-"


def _query(**params: Any) -> str:
    from urllib.parse import urlencode

    kept = {k: v for k, v in params.items() if v not in (None, "", 0) or k == "page"}
    return "?" + urlencode(kept) if kept else ""


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ago=_ago,
        age=_age,
        duration=_duration,
        until=_until,
        ts=_ts,
        money=_money,
        pretty=_pretty,
        short=_short,
        compact=_compact,
        markdown=render_markdown,
    )
    env.globals.update(
        query=_query,
        bar_chart=bar_chart,
        fills=STATE_FILL,
        strokes=STATE_STROKE,
        event_summary=event_summary,
        outcome_fill=OUTCOME_FILL,
    )
    return Jinja2Templates(env=env)


# --- the factory ---------------------------------------------------------------------------


def create_app(
    open_reader: OpenReader,
    *,
    paths: Paths,
    metrics: Metrics | None = None,
    token: str | None = None,
    status: StatusFn | None = None,
    clock: Callable[[], datetime] = utcnow,
    poll_seconds: float = 0.5,
    stream_seconds: float = 300.0,
    max_streams: int = 32,
    allowed_hosts: Sequence[str] | None = None,
    cli_view: Callable[[str, Mapping[str, str]], Any] | None = None,
) -> FastAPI:
    """The read-only dashboard, JSON API, SSE stream, /metrics and /healthz.

    `open_reader()` yields the readers of one request; `status()` reports serve-loop facts
    (`last_commit`, `last_reconciled_at`, `last_error`, `last_error_commit`, `override`,
    `uptime_s`; other keys are shown as they are); `token` requires `Authorization: Bearer`.
    Each SSE connection polls every `poll_seconds` and lasts at most `stream_seconds` (the
    browser reconnects); at most `max_streams` are open at once (503 beyond).
    `allowed_hosts` (e.g. ["127.0.0.1", "localhost"]) refuses other Host headers, which
    stops DNS-rebinding pages from reading a dashboard bound to loopback.
    """
    from api import json_api, pages

    ctx = Context(
        open_reader=open_reader,
        paths=paths,
        metrics=metrics or Metrics(),
        status=status,
        clock=clock,
        templates=make_templates(),
        poll_s=poll_seconds,
        stream_seconds=stream_seconds,
        streams=Slots(max_streams),
    )
    app = FastAPI(
        title="Mission Control",
        summary="Read-only view of the observed state of a mission.",
        version="1",
        docs_url=None,  # the docs pages load their JS from a CDN; /openapi.json stays
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(json_api.router(ctx))
    if cli_view is not None:
        _install_cli_views(app, cli_view)
    app.include_router(pages.router(ctx))
    _install_errors(app, ctx)
    app.add_middleware(Guard, token=token, allowed_hosts=allowed_hosts)
    return app


MAX_CLI_EVENTS = 2**31 - 1


def _install_cli_views(app: FastAPI, cli_view: Callable[[str, Mapping[str, str]], Any]) -> None:
    """`mc status|events|plan` read through these while `mc serve` holds the state file. The
    query is validated here (422 naming the parameter), so the loop sees only well-formed
    values: `since` an ISO time, `limit` 1..MAX_CLI_EVENTS, `rev` a revision, `worktree` a flag."""

    @app.get("/api/cli/{view}", include_in_schema=False)
    def view(
        view: str,
        since: Annotated[datetime | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_CLI_EVENTS)] = 100,
        rev: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
        worktree: Annotated[bool, Query()] = False,
    ) -> JSONResponse:
        if view not in ("status", "events", "plan"):
            return JSONResponse({"detail": f"unknown view {view!r}"}, status_code=404)
        params = {"limit": str(limit)}
        if since is not None:
            params["since"] = since.isoformat()
        if worktree:
            params["worktree"] = "1"
        elif rev is not None:
            params["rev"] = rev
        try:
            body = cli_view(view, params)
        except MCError as exc:
            return JSONResponse({"detail": exc.lines()}, status_code=422)
        return JSONResponse(body)


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/openapi.json"


def _install_errors(app: FastAPI, ctx: Context) -> None:
    def render(request: Request, status: int, message: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": message}, status_code=status)
        return ctx.templates.TemplateResponse(
            request,
            "error.html",
            {
                "status": status,
                "message": message,
                "last_seq": 0,
                "serve": None,
                "overrides": [],
                "now": ctx.clock(),
            },
            status_code=status,
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return render(request, exc.status_code, str(exc.detail))

    @app.exception_handler(StateError)
    async def state_error(request: Request, exc: StateError) -> Response:
        return render(request, 503, f"state unavailable: {exc}")
