"""The HTML pages: each route asks the views for what to show and renders one template."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException

from api import files, views, work
from api import workflow_runs as wf_views

if TYPE_CHECKING:
    from api.app import Context

PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=views.MAX_PAGE_SIZE)]
DropOffset = Annotated[int, Query(ge=0, le=10_000_000)]
SeqParam = Annotated[int | None, Query(ge=0)]
STATIC = Path(__file__).parent / "static"

# A drop is shown in the page, never run: no scripts, no plugins, its own sandbox.
DROP_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'none';"
    " frame-ancestors 'none'; sandbox"
)


def router(ctx: Context) -> APIRouter:
    """The pages by group: overview, work (tasks, agents, workflow runs), audit, files."""
    pages = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
    _overview_page(pages, ctx)
    _work_pages(pages, ctx)
    _audit_pages(pages, ctx)
    _file_routes(pages, ctx)
    return pages


def _overview_page(pages: APIRouter, ctx: Context) -> None:
    @pages.get("/")
    def overview(request: Request) -> HTMLResponse:
        serve = ctx.serve()
        return ctx.page(
            request, "overview.html", lambda r: views.overview(r, ctx.clock(), serve), nav="/"
        )


def _work_pages(pages: APIRouter, ctx: Context) -> None:
    """Tasks, agents and workflow runs."""

    @pages.get("/tasks")
    def tasks(
        request: Request,
        state: str | None = None,
        agent: str | None = None,
        label: str | None = None,
        q: str | None = None,
        run: str | None = None,
        page: PageNo = 1,
        limit: Limit = views.PAGE_SIZE,
    ) -> HTMLResponse:
        return ctx.page(
            request,
            "tasks.html",
            lambda r: work.task_listing(
                r, state=state, agent=agent, label=label, q=q, run=run, page=page, limit=limit
            ),
            nav="/tasks",
        )

    @pages.get("/tasks/{name}")
    def task(
        request: Request, name: str, offset: DropOffset = 0, limit: Limit = work.DROPS_PER_PAGE
    ) -> HTMLResponse:
        """The task page; its content drops a page at a time (`offset`, `limit`)."""
        return ctx.page(
            request,
            "task.html",
            lambda r: work.task_detail(r, ctx.paths, name, offset, limit, ctx.clock()),
            nav="/tasks",
        )

    @pages.get("/agents")
    def agents(request: Request) -> HTMLResponse:
        return ctx.page(
            request, "agents.html", lambda r: work.agents(r, ctx.paths, ctx.clock()), nav="/agents"
        )

    @pages.get("/runs")
    def workflow_runs(request: Request) -> HTMLResponse:
        return ctx.page(request, "runs.html", wf_views.summaries, nav="/runs")

    @pages.get("/runs/{name}")
    def workflow_run(request: Request, name: str) -> HTMLResponse:
        return ctx.page(request, "run.html", lambda r: wf_views.detail(r, name), nav="/runs")


def _audit_pages(pages: APIRouter, ctx: Context) -> None:
    """Approvals and the audit log."""

    @pages.get("/approvals")
    def approvals(request: Request) -> HTMLResponse:
        return ctx.page(request, "approvals.html", views.approvals, nav="/approvals")

    @pages.get("/events")
    def events(
        request: Request,
        before: SeqParam = None,
        after: SeqParam = None,
        subject: str | None = None,
        kind: str | None = None,
        limit: Limit = views.PAGE_SIZE,
    ) -> HTMLResponse:
        return ctx.page(
            request,
            "events.html",
            lambda r: views.event_page(
                r, before=before, after=after, subject=subject, kind=kind, limit=limit
            ),
            nav="/events",
        )


def _file_routes(pages: APIRouter, ctx: Context) -> None:
    """The favicon and content drops (files, not templates)."""

    @pages.get("/favicon.ico", response_class=FileResponse)
    def favicon() -> FileResponse:
        """Browsers ask for it on pages without a <link rel=icon> (/metrics, /openapi.json)."""
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @pages.get("/drops/{sha256}", response_class=FileResponse)
    def drop(sha256: str) -> FileResponse:
        """A content drop by its sha256: images inline, text as text/plain, the rest as a
        download; only files recorded in the state and stored under .mc/drops."""
        if not files.SHA256_HEX.fullmatch(sha256):
            raise HTTPException(400, "not a sha256 (64 lowercase hex digits)")
        recorded = ctx.read(lambda r: r.dash.drop_by_sha(sha256))
        path = files.drop_file(ctx.paths, sha256)
        if recorded is None or path is None:
            raise HTTPException(404, "no such drop")
        name, media_type = recorded
        media, disposition = files.served_type(files.drop_kind(name, media_type), media_type)
        return FileResponse(
            path,
            media_type=media,
            filename=name.rsplit("/", 1)[-1] or sha256,
            content_disposition_type=disposition,
            headers={
                "Content-Security-Policy": DROP_CSP,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=31536000, immutable",
            },
        )
