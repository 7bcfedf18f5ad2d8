"""The Ray executor: runs attempts as Ray tasks on a cluster; the control plane stays one process.

Ray places, runs and monitors; mc keeps its own protocol and containment. Per run:

- launch() ships a WorkerJob (ray_wire.py) and asks the namespace's run ledger — a detached,
  named Ray actor (`mc-ledger`) — to submit the task (ray_worker.run_job on the node Ray
  picks for the run's resources, `max_retries=0`: retry counts have one owner, mc's retry
  policy). The ledger owns the task and its result, so a control plane that dies mid-run
  loses neither: the next one finds the run in the ledger and re-attaches (`reattach`).
- poll() collects finished tasks; each report is recorded through the same collection and
  output boundary as a local run (ray_collect.py). A task that died with its worker process
  or node is `abandoned` (not an attempt failure; the engine queues it again).
- cancel() and the control plane's timeout backstop use `ray.cancel(force=True)`, which kills
  the worker process; bwrap's --die-with-parent takes the sandbox and the agent with it.
- The worker beats to the ledger every few seconds; a started run silent for
  `silence_s` is canceled and abandoned (a hung node), one past its timeout plus grace is
  canceled as timed out (the worker enforces the timeout itself first; this is the backstop).

Outcomes are handed out once per run: the ledger forgets a run only on the poll after the one
that returned it (the engine has written it by then), so a crash in between re-delivers it to
the next control plane, whose engine ignores outcomes of runs it no longer has in flight.
"""

from __future__ import annotations

import io
import tarfile
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from .adapters import one_line
from .drop_store import store_dir
from .live_run import Stop
from .mission_tree import TreeExportError, UnsafeTree, ensure_tree
from .nofollow import PlantedLink, read_whole
from .ray_collect import failed_outcome, record
from .ray_support import connect
from .ray_wire import RunSecrets, WorkerJob, WorkerReport
from .ray_worker import run_job
from .types import ExecutorError, LaunchRequest, Outcome, RayPlacement, RunHandle

LEDGER_NAME = "mc-ledger"
RAY_PID = -1  # RunHandle.pid of a Ray run: a process elsewhere (0 would mean "never started")
# Without bwrap's --die-with-parent nothing ends an agent when ray.cancel(force=True) or a
# crash kills its worker process: it would run on, unwatched, on the worker.
UNCONFINED = (
    "sandbox: none cannot run on Ray (a forced cancel or a dead worker would leave the agent"
    " running there unwatched); keep the sandbox, or use executor: local"
)
# Object-store copies kept for the next runs (a queued task holds its own reference).
_TREES_KEPT = 4
_DROPS_KEPT = 256
_STATUS_EVERY_S = 1.0  # how often poll() asks the ledger about beats
_WAIT_SLICE_S = 0.05  # wait() checks wake() this often while tasks are out


class RunLedger:
    """The detached actor that submits and owns a namespace's Ray tasks (one per namespace).

    Threaded (max_concurrency), so beats and polls are served while a submit runs. Holds, per
    run: the task's ref, the job and its secrets (memory only; a re-attaching control plane
    needs them to record the run), when it was submitted, started and last beat."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}
        self._task: Any = None
        self._me: Any = None
        self._shapes: dict[str, Any] = {}  # the task with each set of options, made once

    def submit(
        self,
        job: WorkerJob,
        secrets: RunSecrets,
        options: Mapping[str, Any],
        blobs: Sequence[Any],
    ) -> list[Any]:
        """Start the run's task; returns [ref] (a list, so the caller borrows the ref)."""
        ray = _ray()
        if self._task is None:
            self._task = ray.remote(_run_remote)
            self._me = ray.get_runtime_context().current_actor
        shape = repr(sorted(options.items()))
        task = self._shapes.get(shape)
        if task is None:
            task = self._shapes[shape] = self._task.options(**options)
        ref = task.remote(job, secrets, self._me, *blobs)
        with self._lock:
            self._runs[job.req.run_id] = {
                "ref": ref,
                "job": job,
                "secrets": secrets,
                "submitted": time.time(),
                "started": None,
                "beat": None,
                "node": "",
            }
        return [ref]

    def beat(self, run_id: str, node_id: str) -> None:
        """The worker running run_id is alive (its first beat says it started)."""
        now = time.time()
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                run["started"] = run["started"] or now
                run["beat"], run["node"] = now, node_id

    def status(self, run_ids: Sequence[str]) -> dict[str, tuple[float | None, float | None]]:
        """(started, last beat) wall-clock times of the runs asked about that it holds."""
        with self._lock:
            return {
                rid: (run["started"], run["beat"])
                for rid in run_ids
                if (run := self._runs.get(rid)) is not None
            }

    def held(self) -> dict[str, tuple[list[Any], WorkerJob, RunSecrets]]:
        """Every run it holds (running, or finished and not yet forgotten): for re-attaching."""
        with self._lock:
            return {rid: ([r["ref"]], r["job"], r["secrets"]) for rid, r in self._runs.items()}

    def cancel(self, run_id: str) -> bool:
        """ray.cancel(force=True) of the run's task (kills its worker process)."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            return False
        _ray().cancel(run["ref"], force=True)
        return True

    def forget(self, run_ids: Sequence[str]) -> None:
        """Drop runs the control plane has recorded (their results go with them)."""
        with self._lock:
            for rid in run_ids:
                self._runs.pop(rid, None)

    def ping(self) -> str:
        return "ok"


def _ray() -> ModuleType:
    import ray  # inside the actor and the task: the worker has mc installed with '.[ray]'

    return ray


def _run_remote(
    job: WorkerJob, secrets: RunSecrets, ledger: Any, tree_tar: bytes | None, *drops: bytes
) -> WorkerReport:
    """The Ray task: run_job on this node, beating to the ledger."""
    ray = _ray()
    node = ray.get_runtime_context().get_node_id()

    def beat() -> None:
        ledger.beat.remote(job.req.run_id, node)

    return run_job(job, secrets, tree_tar, drops, node, beat)


@dataclass(eq=False)
class _Flight:
    req: LaunchRequest
    ref: Any  # the task's result; None until the ledger's submit answered
    launched_at: float  # wall clock
    submit: Any = None  # the ledger's answer to submit: [the task's ref]
    stop: Stop | None = None
    started: float | None = None
    beat: float | None = None


class RayExecutor:
    """Executor backed by a Ray cluster (`executor: {kind: ray}`); see the module doc.

    `address` and `namespace` pick the cluster and the ledger. `silence_s`: how long a started
    run may go without a beat. `slack_s`: how long past timeout + grace the control plane waits
    for the worker's own timeout before it cancels. Raises RayUnavailable when Ray is missing
    or the cluster cannot be reached."""

    def __init__(
        self,
        address: str = "auto",
        namespace: str = "mc",
        *,
        grace_s: float = 2.0,
        silence_s: float = 60.0,
        slack_s: float = 30.0,
        beat_every_s: float = 5.0,
    ) -> None:
        self._ray = connect(address, namespace)
        self._namespace = namespace
        self._grace_s, self._silence_s, self._slack_s = grace_s, silence_s, slack_s
        self._beat_every_s = beat_every_s
        self._cond = threading.Condition(threading.RLock())
        self._flights: dict[str, _Flight] = {}
        self._finished: list[Outcome] = []
        self._to_forget: list[str] = []
        self._woken = False
        self._closed = False
        self._trees: dict[str, Any] = {}
        self._drops: dict[str, Any] = {}
        self._next_status = 0.0
        self._forgetting: Any = None  # the ledger's answer to the last forget
        self._ledger_lost = False
        self._ledger = self._open_ledger()
        self._held: dict[str, tuple[list[Any], WorkerJob, RunSecrets]] = self._ray.get(
            self._ledger.held.remote()
        )

    def _open_ledger(self) -> Any:
        """The namespace's ledger: the running one, or a new one (detached: it outlives us)."""
        actor = self._ray.remote(RunLedger).options(
            name=LEDGER_NAME,
            namespace=self._namespace,
            lifetime="detached",
            get_if_exists=True,
            max_concurrency=16,
            num_cpus=0,
            max_restarts=0,
        )
        return actor.remote()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown(self._grace_s)

    # -- re-attach ------------------------------------------------------------------------

    def held(self) -> list[str]:
        """Runs a previous control plane left with the ledger and nobody re-attached yet."""
        with self._cond:
            return list(self._held)

    def reattach(self, run_ids: Collection[str]) -> set[str]:
        """Take over the runs among run_ids that the ledger still holds (running, or finished
        and unrecorded); their outcomes come from poll() as if launched here. The ones not
        asked for are canceled and forgotten at the next poll (their control plane recorded
        them already, or gave them up)."""
        with self._cond:
            taken = set()
            for run_id in run_ids:
                held = self._held.pop(run_id, None)
                if held is None:
                    continue
                refs, job, secrets = held
                req = replace(job.req, env=secrets.env, secret_values=secrets.secret_values)
                self._flights[run_id] = _Flight(req, refs[0], time.time())
                taken.add(run_id)
            return taken

    def _drop_unclaimed(self) -> None:
        if not self._held:
            return
        for run_id in self._held:
            self._ledger.cancel.remote(run_id)
        self._to_forget.extend(self._held)
        self._held = {}

    # -- launch ---------------------------------------------------------------------------

    def launch(self, req: LaunchRequest) -> RunHandle:
        """Submit the run through the ledger; problems shipping it become Outcomes."""
        with self._cond:
            if self._closed:
                raise ExecutorError("the Ray executor is shut down; it cannot launch runs")
            if req.run_id in self._flights or any(o.run_id == req.run_id for o in self._finished):
                raise ExecutorError(f"run id {req.run_id!r} is already in use")
            started = time.time()
            if not req.command:
                return self._fail(failed_outcome(req, "failed", "agent command is empty", started))
            if req.sandbox is None:
                return self._fail(failed_outcome(req, "failed", UNCONFINED, started))
            try:
                tree, blobs, shas = self._materials(req)
            except (UnsafeTree, PlantedLink) as exc:
                return self._fail(failed_outcome(req, "failed", f"unsafe: {exc}", started))
            except (TreeExportError, OSError) as exc:
                why = f"could not ship the mission tree or drops: {exc}"
                return self._fail(failed_outcome(req, "retry", why, started))
            job = WorkerJob(
                req=replace(req, env={}, secret_values=None),
                namespace=self._namespace,
                tree_commit=tree,
                drops=shas,
                cp_drops_dir=str(store_dir(req.workspace)),
                grace_s=self._grace_s,
                beat_every_s=self._beat_every_s,
            )
            if self._ledger_lost:
                self._ledger, self._ledger_lost = self._open_ledger(), False
            secrets = RunSecrets(dict(req.env), req.secret_values)
            options = task_options(req.placement)
            submit = self._ledger.submit.remote(job, secrets, options, blobs)
            self._flights[req.run_id] = _Flight(req, None, started, submit)  # not waited for
            return RunHandle(req.run_id, RAY_PID, 0)

    def _fail(self, outcome: Outcome) -> RunHandle:
        self._finished.append(outcome)
        self._touch()
        return RunHandle(outcome.run_id, 0, 0)

    def _materials(self, req: LaunchRequest) -> tuple[str | None, list[Any], tuple[str, ...]]:
        """(tree commit, [tree ref, drop refs...], drop shas): the applied tree exported here
        and tarred once per commit, each upstream drop read once; both kept in the object
        store for the runs that need them."""
        sandbox = req.sandbox
        if sandbox is None:
            return None, [None], ()
        commit = None
        tree_ref = None
        if sandbox.tree is not None:
            commit = sandbox.tree.commit
            tree_ref = self._trees.get(commit)
            if tree_ref is None:
                ensure_tree(sandbox.tree)
                tree_ref = self._ray.put(_tar(sandbox.tree.path))
                _keep_recent(self._trees, commit, tree_ref, _TREES_KEPT)
        refs: list[Any] = [tree_ref]
        shas = []
        for path in sandbox.read_only:
            sha = path.name
            ref = self._drops.get(sha)
            if ref is None:
                got = read_whole(path, req.drop_limits.max_file_bytes)
                if got.kind == "missing":  # removed since (GC): not shown, as locally
                    continue
                if got.kind != "ok":
                    raise PlantedLink(path, "not a regular file within the drop caps")
                ref = self._ray.put(got.data)
                _keep_recent(self._drops, sha, ref, _DROPS_KEPT)
            refs.append(ref)
            shas.append(sha)
        return commit, refs, tuple(shas)

    def _touch(self) -> None:
        self._woken = True
        self._cond.notify_all()

    # -- poll / wait ----------------------------------------------------------------------

    def poll(self) -> list[Outcome]:
        """Outcomes of tasks that ended since the last call; enforces the backstops."""
        with self._cond:
            self._drop_unclaimed()
            if self._to_forget:
                self._forgetting = self._ledger.forget.remote(self._to_forget)
                self._to_forget = []
            outcomes, self._finished = self._finished, []
            self._woken = False
            if self._flights:
                self._submitted()
                refs = [f.ref for f in self._flights.values() if f.ref is not None]
                ready = self._ray.wait(refs, num_returns=len(refs), timeout=0)[0] if refs else []
                ready_set = set(ready)
                for run_id, flight in list(self._flights.items()):
                    if flight.ref is not None and flight.ref in ready_set:
                        del self._flights[run_id]
                        outcomes.append(self._outcome(flight))
                        self._to_forget.append(run_id)
                self._backstops()
            return outcomes

    def _submitted(self) -> None:
        """Take the task refs of submits the ledger has answered (launch does not wait)."""
        pending = {f.submit: f for f in self._flights.values() if f.ref is None}
        if not pending:
            return
        ready, _ = self._ray.wait(list(pending), num_returns=len(pending), timeout=0)
        for submit in ready:
            flight = pending[submit]
            try:
                flight.ref = self._ray.get(submit)[0]
            except self._ray.exceptions.RayError:  # the ledger died before submitting
                flight.ref = submit  # poll() turns the same error into the outcome
                self._ledger_lost = True  # the next launch makes a new one
            if flight.stop is not None:  # canceled before the ledger had the task
                self._ledger.cancel.remote(flight.req.run_id)

    def _outcome(self, flight: _Flight) -> Outcome:
        ex = self._ray.exceptions
        req = flight.req
        try:
            report = self._ray.get(flight.ref)
        except ex.TaskCancelledError:
            stop = flight.stop or Stop("cancel", "canceled", "canceled on the Ray cluster")
            return failed_outcome(req, stop.status, stop.message, flight.launched_at)
        except (ex.WorkerCrashedError, ex.NodeDiedError, ex.OwnerDiedError, ex.ObjectLostError,
                ex.ActorDiedError, ex.RayActorError) as exc:  # fmt: skip
            ledger_gone = isinstance(exc, ex.OwnerDiedError | ex.RayActorError)
            self._ledger_lost = self._ledger_lost or ledger_gone  # the next launch makes one
            if flight.stop is not None:
                return failed_outcome(
                    req, flight.stop.status, flight.stop.message, flight.launched_at
                )
            who = "the run ledger that owned it" if ledger_gone else "the Ray worker running it"
            why = f"abandoned: {who} died ({type(exc).__name__})"
            return failed_outcome(req, "abandoned", why, flight.launched_at)
        except ex.RayError as exc:
            why = f"the Ray task failed: {_first_line(exc)}"
            return failed_outcome(req, "retry", why, flight.launched_at)
        if not isinstance(report, WorkerReport):
            return failed_outcome(
                req, "retry", "the Ray worker returned no report", flight.launched_at
            )
        outcome = record(req, report)
        if flight.stop is not None and outcome.status not in ("failed", "abandoned"):
            outcome = replace(outcome, status=flight.stop.status, error=flight.stop.message)
        return outcome

    def _backstops(self) -> None:
        """Cancel started runs that went silent or far past their timeout (see module doc)."""
        now = time.time()
        if now < self._next_status:
            return
        self._next_status = now + _STATUS_EVERY_S
        live = [rid for rid, f in self._flights.items() if f.stop is None]
        if not live:
            return
        try:
            status = self._ray.get(self._ledger.status.remote(live), timeout=10)
        except self._ray.exceptions.RayError:
            return  # the ledger is gone: the tasks' refs will say so
        for run_id, (started, beat) in status.items():
            flight = self._flights[run_id]
            flight.started, flight.beat = started, beat
            if started is None:
                continue  # queued: waiting for a node with its resources is not a timeout
            limit = flight.req.timeout_s + 2 * self._grace_s + self._slack_s
            if now - started > limit:
                why = f"timed out after {flight.req.timeout_s:g}s (canceled on the Ray cluster)"
                self._stop(flight, Stop("timeout", "retry", why))
            elif beat is not None and now - beat > self._silence_s:
                why = f"abandoned: no word from its Ray worker for {self._silence_s:g}s"
                self._stop(flight, Stop("heartbeat", "abandoned", why))

    def _stop(self, flight: _Flight, stop: Stop) -> None:
        flight.stop = stop
        self._ledger.cancel.remote(flight.req.run_id)

    def wait(self, timeout: float) -> None:
        """Block until a task may have ended, wake() is called, or timeout passes."""
        give_up = time.monotonic() + max(timeout, 0.0)
        while True:
            with self._cond:
                if self._woken or self._finished:
                    return
                refs = [f.ref if f.ref is not None else f.submit for f in self._flights.values()]
                left = give_up - time.monotonic()
                if left <= 0:
                    return
                if not refs:
                    self._cond.wait(left)
                    continue
            ready, _ = self._ray.wait(refs, num_returns=1, timeout=min(_WAIT_SLICE_S, left))
            if ready:
                return

    def ready(self) -> bool:
        """Whether a task has ended (or something else waits for poll()), without blocking."""
        with self._cond:
            if self._woken or self._finished:
                return True
            refs = [f.ref for f in self._flights.values() if f.ref is not None]
            submitting = any(f.ref is None for f in self._flights.values())
        if submitting:
            return True  # poll() takes the answer
        if not refs:
            return False
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=0)
        return bool(ready)

    def wake(self) -> None:
        """Make a pending wait() return now."""
        with self._cond:
            self._touch()

    def running(self) -> list[str]:
        """Run ids launched (or re-attached) whose outcome poll() has not returned yet."""
        with self._cond:
            return list(self._flights)

    # -- cancel / shutdown ----------------------------------------------------------------

    def cancel(self, run_id: str, reason: str) -> None:
        """ray.cancel(force=True) the run's task; its outcome is 'canceled'."""
        with self._cond:
            flight = self._flights.get(run_id)
            if flight is None or flight.stop is not None:
                return
            self._stop(flight, Stop("cancel", "canceled", one_line(f"canceled: {reason}")))

    def shutdown(self, grace_s: float = 2.0) -> None:
        """Cancel every run and wait (up to grace_s + a few seconds) for their tasks to end;
        poll() still returns their outcomes. The ledger stays (detached) for the next one."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            for flight in self._flights.values():
                if flight.stop is None:
                    self._stop(flight, Stop("cancel", "canceled", "canceled: executor shut down"))
            submits = [f.submit for f in self._flights.values() if f.ref is None]
        if submits:  # the ledger's answers first, so the cancels reach every task
            self._ray.wait(submits, num_returns=len(submits), timeout=5.0)
        with self._cond:
            self._submitted()
            refs = [f.ref for f in self._flights.values() if f.ref is not None]
        if refs:
            self._ray.wait(refs, num_returns=len(refs), timeout=grace_s + 5.0)
        with self._cond:
            self._finished.extend(self.poll())

    def forget_all(self) -> None:
        """Tell the ledger to drop what this executor recorded, and wait until it has (tests
        and clean exits; poll() does not wait)."""
        with self._cond:
            if self._to_forget:
                self._forgetting = self._ledger.forget.remote(self._to_forget)
                self._to_forget = []
            if self._forgetting is not None:
                self._ray.get(self._forgetting)
                self._forgetting = None


def task_options(placement: RayPlacement | None) -> dict[str, Any]:
    """Ray task options for a run: its resource requests, and Ray's own retries off."""
    resources = dict(placement.resources) if placement is not None else {}
    options: dict[str, Any] = {
        "num_cpus": resources.pop("CPU", 1.0),
        "max_retries": 0,
        "retry_exceptions": False,
    }
    if "GPU" in resources:
        options["num_gpus"] = resources.pop("GPU")
    if "memory" in resources:
        options["memory"] = resources.pop("memory")
    if resources:
        options["resources"] = resources
    return options


def _keep_recent(cache: dict[str, Any], key: str, ref: Any, limit: int) -> None:
    cache[key] = ref
    while len(cache) > limit:
        del cache[next(iter(cache))]


def _tar(top: Path) -> bytes:
    """The export as an uncompressed tar (paths relative to it; links kept as links)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as archive:
        archive.add(top, arcname=".")
    return buf.getvalue()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return one_line(text[0] if text else type(exc).__name__)
