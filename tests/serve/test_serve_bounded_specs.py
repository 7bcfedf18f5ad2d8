"""Issue 14, measured case 2, serve side: a commit with `approval_ttl: 800000d` used to stop
`mc serve` (OverflowError), and again on every restart. It is a spec error now: serve records
it with the file and line, stays healthy, starts on it, and applies the fixed commit."""

from __future__ import annotations

from helpers.serve import served
from helpers.starter import GitRepo
from helpers.waiting import wait_until

TTL_ERROR = (
    "mission.yaml:{line}:{col}: spec.policy.approval_ttl: duration 800000d is longer than the"
    " maximum 366d"
)


def with_ttl(repo: GitRepo, ttl: str) -> tuple[int, int]:
    """Set the starter mission's approval_ttl; where (line, column) its key stands."""
    repo.replace("mission.yaml", "approval_ttl: 24h", f"approval_ttl: {ttl}")
    lines = repo.read("mission.yaml").splitlines()
    [line] = [i for i, text in enumerate(lines, 1) if f"approval_ttl: {ttl}" in text]
    return line, lines[line - 1].index("approval_ttl") + 1


def test_an_unbounded_ttl_is_a_recorded_spec_error_and_serve_carries_on(
    mission_repo: GitRepo,
) -> None:
    with served(mission_repo.root) as serve:
        serve.wait_reconciled(mission_repo.head())
        line, col = with_ttl(mission_repo, "800000d")
        bad = mission_repo.commit("a ttl nobody can compute with")

        def reported() -> bool:
            assert serve.proc.poll() is None, f"mc serve died: {serve.output()}"
            return bool(serve.facts().get("last_error_commit") == bad)

        wait_until(reported, 30.0, "serve to report the bad commit")
        assert serve.facts()["last_error"] == TTL_ERROR.format(line=line, col=col)
        assert serve.healthy()

    with served(mission_repo.root) as restarted:  # a restart on the bad commit starts
        assert restarted.healthy()
        mission_repo.replace("mission.yaml", "800000d", "366d")
        fixed = mission_repo.commit("a ttl within bounds")
        facts = restarted.wait_reconciled(fixed)
        assert facts["last_error"] is None
