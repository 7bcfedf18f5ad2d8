"""The JSON API under /api/ (same views as the pages), the SSE stream, /metrics and /healthz."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException

from api import views, work
from api import workflow_runs as wf_views
from api.stream import event_stream, start_seq
from api.views import Override, ServeFacts
from reconciler.serve.metrics import Scrape
from state.dashboard import TaskFilter, TaskListRow
from state.records import Event

if TYPE_CHECKING:
    from api.app import Context

PageNo = Annotated[int, Query(ge=1, le=1_000_000)]
Limit = Annotated[int, Query(ge=1, le=views.MAX_PAGE_SIZE)]
DropOffset = Annotated[int, Query(ge=0, le=10_000_000)]


@dataclass(frozen=True, slots=True)
class Status:
    mission: str | None
    mode: str | None
    applied_commit: str | None
    serial: int
    last_seq: int
    overrides: list[Override]
    serve: ServeFacts | None


@dataclass(frozen=True, slots=True)
class TaskResults:
    tasks: list[TaskListRow]  # most recently changed first
    total: int  # matching tasks in all
    page: int
    pages: int
    limit: int
    filter: TaskFilter


@dataclass(frozen=True, slots=True)
class EventList:
    events: list[Event]  # oldest first
    last_seq: int


def router(ctx: Context) -> APIRouter:
    """/api/… by page group, then /metrics and /healthz outside it."""
    api = APIRouter(prefix="/api", tags=["api"])
    _mission_routes(api, ctx)
    _work_routes(api, ctx)
    _audit_routes(api, ctx)
    combined = APIRouter()
    combined.include_router(api)
    combined.include_router(_operations_router(ctx))
    return combined


def _mission_routes(api: APIRouter, ctx: Context) -> None:
    """The overview and the mission's status."""

    @api.get("/overview")
    def overview() -> views.Overview:
        serve = ctx.serve()
        return ctx.read(lambda r: views.overview(r, ctx.clock(), serve))

    @api.get("/status")
    def status() -> Status:
        serve = ctx.serve()

        def build(r: views.Readers) -> Status:
            o = views.overview(r, ctx.clock(), serve)
            return Status(
                o.mission, o.mode, o.applied_commit, o.serial, o.last_seq, o.overrides, serve
            )

        return ctx.read(build)


def _work_routes(api: APIRouter, ctx: Context) -> None:
    """Tasks, agents and workflow runs."""

    @api.get("/tasks")
    def tasks(
        state: str | None = None,
        agent: str | None = None,
        label: Annotated[str | None, Query(description="key=value, or key")] = None,
        q: Annotated[str | None, Query(description="substring of name or title")] = None,
        run: Annotated[str | None, Query(description="steps of this workflow run")] = None,
        page: PageNo = 1,
        limit: Limit = views.PAGE_SIZE,
    ) -> TaskResults:
        found = ctx.read(
            lambda r: work.task_listing(
                r, state=state, agent=agent, label=label, q=q, run=run, page=page, limit=limit
            )
        )
        p = found.page
        return TaskResults(p.rows, p.total, found.number, found.pages, p.limit, found.filter)

    @api.get("/tasks/{name}")
    def task(
        name: str, offset: DropOffset = 0, limit: Limit = work.DROPS_PER_PAGE
    ) -> work.TaskDetail:
        """The task; its content drops a page at a time (`offset`, `limit`)."""
        found = ctx.read(lambda r: work.task_detail(r, ctx.paths, name, offset, limit, ctx.clock()))
        if found is None:
            raise HTTPException(404, f"no task {name!r}")
        return found

    @api.get("/agents")
    def agents() -> list[work.AgentView]:
        return ctx.read(lambda r: work.agents(r, ctx.paths, ctx.clock()))

    @api.get("/runs")  # workflow runs (agent runs are listed per task, under /api/tasks/…)
    def workflow_runs() -> list[wf_views.WorkflowRunSummary]:
        return ctx.read(wf_views.summaries)

    @api.get("/runs/{name}")
    def workflow_run(name: str) -> wf_views.WorkflowRunDetail:
        found = ctx.read(lambda r: wf_views.detail(r, name))
        if found is None:
            raise HTTPException(404, f"no workflow run {name!r}")
        return found


def _audit_routes(api: APIRouter, ctx: Context) -> None:
    """Approvals, the audit log and its live stream."""

    @api.get("/approvals")
    def approvals() -> views.Approvals:
        return ctx.read(views.approvals)

    @api.get("/events")
    def events(after: Annotated[int, Query(ge=0)] = 0, limit: Limit = 100) -> EventList:
        def build(r: views.Readers) -> EventList:
            found = r.dash.event_page(after=after, limit=limit)[::-1]
            return EventList(found, r.dash.last_event_seq())

        return ctx.read(build)

    @api.get("/stream", response_class=StreamingResponse)
    def stream(
        request: Request, after: Annotated[int | None, Query(ge=0)] = None
    ) -> StreamingResponse:
        """Server-Sent Events: `mc-event` (one audit event, id = seq) and `counts`."""
        first = start_seq(request, after, lambda: ctx.read(lambda r: r.dash.last_event_seq()))
        if not ctx.streams.take():
            raise HTTPException(503, "too many live connections; try again shortly")

        async def frames() -> AsyncIterator[str]:
            try:
                async for chunk in event_stream(
                    request, ctx.read, first, poll_s=ctx.poll_s, max_seconds=ctx.stream_seconds
                ):
                    yield chunk
            finally:
                ctx.streams.give()

        return StreamingResponse(
            frames(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )


def _operations_router(ctx: Context) -> APIRouter:
    """/metrics for Prometheus and /healthz, outside /api."""
    outside = APIRouter()

    @outside.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> PlainTextResponse:
        def scrape(r: views.Readers) -> Scrape:
            return Scrape(
                r.state.task_counts(),
                r.dash.ended_run_counts(),
                r.dash.spend_on(ctx.clock().date()),
            )

        return PlainTextResponse(
            ctx.metrics.render(ctx.read(scrape)),
            media_type="text/plain; version=0.0.4; charset=utf-8",
        )

    @outside.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    return outside
