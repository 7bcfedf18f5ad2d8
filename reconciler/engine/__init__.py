"""The execution engine: run events in, task writes and launches out (Engine in engine.py).

Which file answers ...
    may this task be dispatched now, on which agent?   scheduler.py (pure), fed by views.py
        (approval gates from approval_gates.py, secrets, budgets, agent room)
    which waiting tasks does a tick look at?            candidates.py
    is a run still its task's (deleted, canceled, …)?   outcome_rules.why_stale (pure)
    what does a finished run make of its task?          outcome_rules.settle (pure), then
        workflow_steps.judge for steps (verifier verdicts, escalation)
    retry timing                                        retry.py (pure)
    decisions -> writes, launches and cancels          enact.py (the one place)
    spend, memory and drops a run leaves                run_bookkeeping.py
    runs a dead reconciler left behind                  recovery.py (+ runtime/leftovers.py)
    the tick's stages (finish, schedule, write, launch) engine.py
    `mc apply`: tick until only a person can help       until_idle.py
    the in-memory mirror of the applied state           mirror.py
"""
