"""Executor selection: each run goes where its LaunchRequest says (`placement`), the engine
sees one executor. Runs without a placement go to the local executor; runs with one go to the
Ray executor of their (address, namespace), joined on first use. Ray is imported only then
(ray_support.py): a mission that never names `executor: {kind: ray}` never loads it."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable

from .types import Executor, LaunchRequest, Outcome, OutcomeStatus, RayPlacement, RunHandle

_SLICE_S = 0.05  # how often wait() looks at the Ray runs while it waits on the local ones


class RoutingExecutor:
    """The local executor plus one Ray executor per (address, namespace) in use."""

    def __init__(self, local: Executor) -> None:
        self._local = local
        self._ray: dict[tuple[str, str], Executor] = {}
        self._owner: dict[str, Executor] = {}
        self._finished: list[Outcome] = []

    def _ray_for(self, address: str, namespace: str) -> Executor:
        key = (address, namespace)
        if key not in self._ray:
            from .ray_executor import RayExecutor  # joins the cluster (RayUnavailable if not)

            self._ray[key] = RayExecutor(address, namespace)
        return self._ray[key]

    def launch(self, req: LaunchRequest) -> RunHandle:
        """The local executor for a run without placement, else its cluster's Ray executor. A
        cluster that cannot be reached fails the attempt (retry; no Ray installed: failed)."""
        if req.placement is None:
            return self._local.launch(req)
        from .ray_support import INSTALL_HINT, RayUnavailable

        try:
            ex = self._ray_for(req.placement.address, req.placement.namespace)
        except RayUnavailable as exc:
            status: OutcomeStatus = "failed" if str(exc) == INSTALL_HINT else "retry"
            now = time.time()
            self._finished.append(
                Outcome(req.run_id, status, str(exc), None, started_at=now, ended_at=now)
            )
            return RunHandle(req.run_id, 0, 0)
        self._owner[req.run_id] = ex
        return ex.launch(req)

    def _all(self) -> list[Executor]:
        return [self._local, *self._ray.values()]

    def poll(self) -> list[Outcome]:
        """Every executor's outcomes."""
        outcomes, self._finished = self._finished, []
        for ex in self._all():
            outcomes += ex.poll()
        for outcome in outcomes:
            self._owner.pop(outcome.run_id, None)
        return outcomes

    def wait(self, timeout: float) -> None:
        """Wait on the local runs, looking at the Ray runs every few ms (on the one cluster's
        runs alone when nothing runs locally)."""
        if self._finished:
            return
        if not self._ray:
            self._local.wait(timeout)
            return
        if len(self._ray) == 1 and not self._local.running():  # Ray's own wait: no slicing
            next(iter(self._ray.values())).wait(timeout)
            return
        give_up = time.monotonic() + max(timeout, 0.0)
        while (left := give_up - time.monotonic()) > 0:
            self._local.wait(min(_SLICE_S, left))
            if any(_ready(ex) for ex in self._ray.values()):
                return

    def wake(self) -> None:
        for ex in self._all():
            ex.wake()

    def running(self) -> list[str]:
        return [run_id for ex in self._all() for run_id in ex.running()]

    def cancel(self, run_id: str, reason: str) -> None:
        self._owner.get(run_id, self._local).cancel(run_id, reason)

    def shutdown(self, grace_s: float = 2.0) -> None:
        for ex in self._all():
            ex.shutdown(grace_s)

    def reattach(self, run_ids: Collection[str], targets: Iterable[RayPlacement]) -> set[str]:
        """After a restart: the runs among run_ids that a Ray ledger of `targets` still holds,
        now in flight here again (their outcomes come from poll()). A cluster that cannot be
        reached re-attaches nothing (its runs are then recovered as orphans)."""
        from .ray_support import RayUnavailable

        taken: set[str] = set()
        for target in {(t.address, t.namespace) for t in targets}:
            try:
                ex = self._ray_for(*target)
            except RayUnavailable:
                continue
            got = ex.reattach(run_ids)  # type: ignore[attr-defined]
            taken |= got
            for run_id in got:
                self._owner[run_id] = ex
        return taken


def _ready(ex: Executor) -> bool:
    ready = getattr(ex, "ready", None)
    return bool(ready()) if ready is not None else False
