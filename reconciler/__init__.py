"""The reconciler: from committed desired state to agents at work, one owner per decision.

Sub-packages by role, each layer importing only those below it (import-linter checks this):

    serve/       `mc serve`: the reconcile loop, git watcher, bot requests, metrics
    commands/    one module per group of `mc` commands; what `cli/` and `api/` call
    engine/      the tick: dispatch, launches, finished runs, retry, crash recovery
    plan/        commit -> plan -> apply: observe, diff, build, codec, what applying does
    governance/  pure rules: risk policy, approval judgement, signatures verified by git
    tasks/ | runtime/   task states and workflow runs | executors and the sandbox
    repo/        the git source, the parse cache, how git is called (bottom layer)

Which file decides ...
    commit -> plan (one function for every caller)   plan/pipeline.py
    the risk of a change, the approvals it needs      governance/policy.py, plan/build.py
    whether an approval counts                        governance/approvals.py
    what a resource change does to tasks              plan/task_effects.py
    may this task be dispatched, on which agent       engine/scheduler.py (inputs: engine/views.py)
    what a run reserves and may spend (daily caps)    engine/budgets.py, runtime/supervise.py
    are a task's approvals given (scheduler input)    engine/approval_gates.py
    a finished run's next task state                  engine/outcome_rules.py, workflow_steps.py
    why a task is not running (mc task, explain)      engine/why.py (asks the scheduler)
    a reviewer's request for changes                  engine/review_rules.py
    how a read reaches the state's holder             commands/reads.py, commands/holder.py
    a step's prompt and `when` (never None)           tasks/prompts.py
    decisions -> one write batch, launches, cancels   engine/enact.py
    is HEAD applied                                   plan/pipeline.py (matches_applied)
    retry timing                                      engine/retry.py
    which task state may follow which                 tasks/lifecycle.py
    a workflow run's status                           tasks/workflow_runs.py
    what an agent's leftovers mean (result.json, …)   runtime/adapters.py
    runs a dead reconciler left behind                engine/recovery.py
    a reconcile that raised (serve stays up)          serve/loop.py
    how an agent is confined                          runtime/sandbox.py, engine/launch.py
    where a run goes (this machine or a Ray cluster)  engine/launch.py, runtime/executors.py
    how git is called (no repo file can steer it)     repo/git.py
"""
