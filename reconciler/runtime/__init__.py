"""Executors: start agent processes per attempt and turn what they leave behind into Outcomes.

Map: the executor port → types.py. The local executor → local.py (the table of live runs),
by phase: spawn.py (workspace, logs, pipes; `start_agent` is the one place a process is
created), supervise.py (exits, deadlines, heartbeats, cost caps, SIGTERM → SIGKILL),
collect.py (an ended run → Outcome, through adapters.py and cost.py). pump.py drains pipes;
procs.py names and kills process groups; leftovers.py reads what an orphan left (recovery);
sandbox.py builds the bubblewrap argv; workspace.py and logs.py are the attempt's files;
drop_store.py copies out/ into `.mc/drops` (bounded); nofollow.py opens `.mc/…` without links.
executors.py routes each run to the local executor or a Ray cluster (its `placement`). The Ray
executor (`pip install '.[ray]'`) → ray_executor.py (the run ledger actor, poll/cancel/backstops,
re-attach), ray_worker.py (what a Ray task does on the worker: materialise, run sandboxed, pack),
ray_collect.py (a report recorded like a local run), ray_wire.py (what travels), ray_support.py
(the one place ray is imported; keeping 127.0.0.1 as loopback).
"""
