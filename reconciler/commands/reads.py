"""How every read command gets its answer, whoever holds the state: straight from the state
file when it is free, else from the process holding it (`mc apply`, `mc serve`, `mc bot`)
over its socket (commands/holder.py). Also the writes that must go through the holder.
cli/ calls `read` and `retry`; the holders call `serve_holder`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from reconciler.commands.context import MissionContext
from reconciler.commands.holder import (
    SOCKET_NAME,
    HolderSocket,
    HolderUnavailable,
    RetryRequest,
    SubmitFn,
    WriteRequest,
    ask,
)
from reconciler.commands.read_views import Readers, answer
from reconciler.commands.workflow_runs import retry_target
from specs.errors import MCError
from state.dashboard import DashboardReader
from state.errors import StateLocked
from state.store import State, StateReader

log = logging.getLogger(__name__)
ENDED = "the command holding the state ended before carrying this out; run it again"
OpenReaders = Callable[[], AbstractContextManager[tuple[StateReader, DashboardReader]]]


@dataclass(frozen=True)
class Answer:
    """A view's JSON body and, when another process gave it, a line saying which."""

    body: Any
    source: str | None = None


def read(ctx: MissionContext, view: str, params: Mapping[str, str] | None = None) -> Answer:
    """One view (read_views.VIEWS) from the state file, or from the process holding it."""
    params = dict(params or {})
    try:
        state = State.open(ctx.repo.state_path, write=False)
    except StateLocked as locked:
        reply = _ask(ctx, locked, {"view": view, "params": params})
        return Answer(reply.body, reply.source)
    with state:
        found = answer(view, params, _readers(ctx, state.reader, DashboardReader(state.db)))
    # the same JSON the holder would send: both ways render identically
    return Answer(json.loads(json.dumps(found, default=str)))


def retry(ctx: MissionContext, target: str, actor: str) -> Answer:
    """`mc retry`: requeue here when the state is free, else queue it through its holder."""
    try:
        state = State.open(ctx.repo.state_path, write=True)
    except StateLocked as locked:
        reply = _ask(ctx, locked, {"write": "retry", "target": target, "actor": actor})
        return Answer(reply.body, reply.source)
    with state:
        names = retry_target(state, target, actor, ctx.clock())
    return Answer(requeued(names))


def requeued(names: list[str]) -> str:
    return f"requeued {', '.join(names)}"


def carry_out_write(state: State, request: WriteRequest, ctx: MissionContext) -> str:
    """A queued write, in the holder's own thread (its one writer connection)."""
    match request:
        case RetryRequest(target=target, actor=actor):
            return requeued(retry_target(state, target, actor, ctx.clock()))


def _ask(ctx: MissionContext, locked: StateLocked, request: Mapping[str, Any]) -> Any:
    try:
        return ask(ctx.repo.mc_dir, locked.pid, request)
    except HolderUnavailable as why:
        raise MCError(f"{locked} and it cannot be asked: {why}") from None


def _readers(
    ctx: MissionContext, state: StateReader, dash: DashboardReader, driven: bool = False
) -> Readers:
    return Readers(state, dash, ctx.repo, ctx.clock(), driven=driven)


def serve_holder(
    ctx: MissionContext,
    holder: str,
    open_readers: OpenReaders,
    submit: SubmitFn,
    driven: bool = True,
) -> HolderSocket:
    """Start the holder socket of this process (which holds the state's write lock); `driven`:
    whether it drives the work (tasks' why says what moves them next)."""

    def read_view(view: str, params: Mapping[str, str]) -> Any:
        with open_readers() as (state, dash):
            return answer(view, params, _readers(ctx, state, dash, driven))

    sock = HolderSocket(ctx.repo.mc_dir, holder, read_view, submit)
    sock.start()
    return sock


class WriteQueue:
    """Writes queued for a holder that drains them between its own steps (`mc apply`)."""

    def __init__(self) -> None:
        self._items: list[tuple[WriteRequest, Future[str]]] = []
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, request: WriteRequest) -> Future[str]:
        done: Future[str] = Future()
        with self._lock:
            if self._closed:
                done.set_exception(MCError(ENDED))
            else:
                self._items.append((request, done))
        return done

    def close(self) -> None:
        """The holder is done: what it did not carry out is refused, not left waiting."""
        with self._lock:
            items, self._items, self._closed = self._items, [], True
        for _, done in items:
            done.set_exception(MCError(ENDED))

    def drain(self, state: State, ctx: MissionContext) -> bool:
        """Carry out what is queued; True when anything was written."""
        with self._lock:
            items, self._items = self._items, []
        for request, done in items:
            try:
                done.set_result(carry_out_write(state, request, ctx))
            except Exception as exc:  # the holder outlives a request it could not carry out
                done.set_exception(exc)
        return bool(items)


@contextmanager
def holding(
    ctx: MissionContext, state: State, holder: str, driven: bool = True
) -> Iterator[WriteQueue]:
    """While a command holds the state for writing (`mc apply`): serve reads and queue
    writes over the holder socket; the queue is drained by the caller's loop. `driven`:
    whether the command drives the work (not `mc apply --no-drive`)."""
    from state.dashboard import cursor_readers

    queue = WriteQueue()
    try:
        sock: HolderSocket | None = serve_holder(
            ctx, holder, cursor_readers(state.db), queue.submit, driven
        )
    except OSError as exc:  # reads then fail on the lock as before; the work goes on
        log.warning("mc: cannot serve reads on %s: %s", ctx.repo.mc_dir / SOCKET_NAME, exc)
        sock = None
    try:
        yield queue
    finally:
        queue.close()
        if sock is not None:
            sock.close()
