"""The cost watch of the local executor: a run past its spend limit is stopped by the executor's
own thread (nobody calls poll() meanwhile), SIGKILLed 0.5 s after SIGTERM whatever the
executor's grace for other stops, and its limit's name and status come from the request."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from runtime_harness import Agents, gone_soon, run_one

from reconciler.runtime.local import LocalExecutor
from reconciler.runtime.supervise import BUDGET_GRACE_S
from reconciler.runtime.types import Outcome

# Past its $0.25 cap in one write, then traps SIGTERM (and says so) and never exits by itself.
TRAP = """
import json, os, signal, time
from pathlib import Path
ws = Path(os.environ["MC_COST_JSON"]).parent
signal.signal(signal.SIGTERM, lambda *_: (ws / "got-sigterm").write_text("yes"))
tmp = ws / "cost.tmp"
tmp.write_text(json.dumps({"cost_usd": 0.3}))
tmp.replace(os.environ["MC_COST_JSON"])
(ws / "crossed").write_text("yes")
while True:
    time.sleep(0.05)
"""


def test_the_watch_stops_a_run_without_anyone_polling(agents: Agents) -> None:
    """SIGTERM, then SIGKILL after the budget grace (not the executor's 30 s one), all while
    the caller sleeps; poll() afterwards only collects the outcome."""
    with LocalExecutor(grace_s=30.0) as ex:
        req = agents.request(TRAP, per_run_cap_usd=Decimal("0.25"))
        handle = ex.launch(req)
        ws = Path(req.workspace)
        # no poll(), no wait(): only the cost watch thread acts on the run
        assert gone_soon(handle.pid, within=20.0), "the run was not killed"
        assert (ws / "crossed").is_file() and (ws / "got-sigterm").is_file()  # TERM came first
        outcome = run_one_collected(ex, req.run_id)
    assert outcome.status == "failed"
    assert outcome.error == "per-run budget $0.25 exceeded: $0.3 reported (SIGTERM, then SIGKILL)"
    assert outcome.cost_usd == Decimal("0.3")
    assert BUDGET_GRACE_S == 0.5


def test_the_limit_is_named_and_judged_as_the_request_says(agents: Agents) -> None:
    """A run that used up the rest of a daily cap is a retry (there may be budget tomorrow)."""
    req = agents.request(TRAP, per_run_cap_usd=Decimal("0.1"))
    req = replace(req, cap_label="the $0.1 left of the agent w daily cap", cap_status="retry")
    with LocalExecutor(grace_s=0.5) as ex:
        outcome = run_one(ex, req)
    assert outcome.status == "retry"
    assert outcome.error == (
        "the $0.1 left of the agent w daily cap exceeded: $0.3 reported (SIGTERM, then SIGKILL)"
    )


def test_a_run_without_a_limit_is_not_watched(agents: Agents) -> None:
    """No cap, no stop: the watch sleeps (the run ends on its own, whatever it spent)."""
    code = TRAP.replace("while True:\n    time.sleep(0.05)", "time.sleep(0.3)")
    with LocalExecutor(grace_s=0.5) as ex:
        outcome = run_one(ex, agents.request(code))
    assert outcome.cost_usd == Decimal("0.3")
    assert outcome.error is not None and "exceeded" not in outcome.error  # no result.json


def run_one_collected(ex: LocalExecutor, run_id: str) -> Outcome:
    """The outcome of a run that has already ended."""
    give_up = time.monotonic() + 20.0
    while time.monotonic() < give_up:
        for outcome in ex.poll():
            if outcome.run_id == run_id:
                return outcome
        ex.wait(0.5)
    raise AssertionError(f"no outcome for {run_id}")
