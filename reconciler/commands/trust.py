"""`mc trust`: the approver set's chain of trust in mission.yaml's history; called by cli/."""

from __future__ import annotations

from reconciler.commands.context import MissionContext
from reconciler.governance.trust_chain import TrustChain
from reconciler.governance.trust_history import read_chain


def trust_chain(ctx: MissionContext, rev: str) -> TrustChain:
    """Every commit that changed the approver set up to `rev`, judged by the set before it."""
    return read_chain(ctx.repo, rev, ctx.clock())
