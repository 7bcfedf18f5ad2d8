"""How far each agent is confined, from specs alone (pure); for policy.py, the plan, `mc status`
and the dashboard.

An agent runs in the sandbox unless its own `sandbox` says `none`, or it says nothing and the
mission's `sandbox` is `none`. Its confinement is what its spec declares about the sandbox:
`sandbox`, `mounts`, `network` and `limits`; an applied spec written before those fields
existed counts as having their defaults, so upgrading mc changes nobody's confinement.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from specs.models import AgentSpec, MissionSpec

CONFINEMENT_FIELDS = ("sandbox", "mounts", "network", "limits")
SANDBOX_FIELDS = tuple(f"spec.{f}" for f in CONFINEMENT_FIELDS)
MISSION_DEFAULT: str = MissionSpec.model_fields["sandbox"].default
UnconfinedBy = Literal["agent", "mission"]
Spec = Mapping[str, Any]


def _default(field: str) -> Any:
    value = AgentSpec.model_fields[field].get_default(call_default_factory=True)
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


AGENT_DEFAULTS: dict[str, Any] = {f: _default(f) for f in CONFINEMENT_FIELDS}


@dataclass(frozen=True, slots=True)
class Unconfined:
    """An agent that runs without the sandbox, and whose `sandbox: none` makes it so."""

    agent: str
    by: UnconfinedBy


@dataclass(frozen=True, slots=True)
class Exposure:
    """What an operator must know about the applied agents: who runs unconfined, and who
    may reach the network (`network: host`)."""

    mission_sandbox: str
    unconfined: tuple[Unconfined, ...]
    network_host: tuple[str, ...]

    @property
    def any(self) -> bool:
        return bool(self.unconfined or self.network_host)


def mission_sandbox(mission: Spec | None) -> str:
    return str((mission or {}).get("sandbox") or MISSION_DEFAULT)


def confinement_of(agent: Spec | None) -> dict[str, Any]:
    """The agent's confinement fields, defaults filled in (None: no agent yet, the defaults)."""
    spec = agent or {}
    out = {f: spec.get(f, AGENT_DEFAULTS[f]) for f in CONFINEMENT_FIELDS}
    out["limits"] = {**AGENT_DEFAULTS["limits"], **(spec.get("limits") or {})}
    return out


def unconfined_by(agent: Spec, mission: Spec | None) -> UnconfinedBy | None:
    """Why this agent runs without the sandbox, or None when it runs in it."""
    own = agent.get("sandbox")
    if own is not None:
        return "agent" if own == "none" else None
    return "mission" if mission_sandbox(mission) == "none" else None


def turns_sandbox_off(kind: str, before: Spec | None, after: Spec) -> bool:
    """The change sets a `sandbox: none` that was not there: a mission's, or an agent's own
    (a new agent that declares it counts too)."""
    if kind == "Mission":
        return mission_sandbox(after) == "none" and mission_sandbox(before) != "none"
    if kind == "Agent":
        return after.get("sandbox") == "none" and (before or {}).get("sandbox") != "none"
    return False


def confinement_changed(kind: str, before: Spec | None, after: Spec) -> bool:
    """Any confinement field differs (defaults filled in on both sides)."""
    if kind == "Mission":
        return mission_sandbox(before) != mission_sandbox(after)
    if kind == "Agent":
        return confinement_of(before) != confinement_of(after)
    return False


def exposure(agents: Iterable[tuple[str, Spec]], mission: Spec | None) -> Exposure:
    """Who of `agents` (name, spec) runs unconfined or on the host network, by name."""
    unconfined, network = [], []
    for name, spec in sorted(agents, key=lambda pair: pair[0]):
        why = unconfined_by(spec, mission)
        if why is not None:
            unconfined.append(Unconfined(name, why))
        if spec.get("network") == "host":
            network.append(name)
    return Exposure(mission_sandbox(mission), tuple(unconfined), tuple(network))


def newly_unconfined(
    desired: Mapping[str, Spec],
    desired_mission: Spec | None,
    applied: Mapping[str, Spec],
    applied_mission: Spec | None,
    touched: Iterable[str],
) -> tuple[Unconfined, ...]:
    """The desired agents that will run unconfined and that this change creates or changes:
    their own spec is `touched`, or the mission's change is what unconfines them."""
    changed = set(touched)
    out = []
    for name in sorted(desired):
        why = unconfined_by(desired[name], desired_mission)
        if why is None:
            continue
        before = applied.get(name)
        was = None if before is None else unconfined_by(before, applied_mission)
        if name in changed or was is None:
            out.append(Unconfined(name, why))
    return tuple(out)


def unconfined_to_json(found: Iterable[Unconfined]) -> list[dict[str, str]]:
    return [{"agent": u.agent, "by": u.by} for u in found]


def unconfined_from_json(data: Iterable[Mapping[str, Any]]) -> tuple[Unconfined, ...]:
    return tuple(
        Unconfined(str(d["agent"]), "agent" if d["by"] == "agent" else "mission") for d in data
    )


def exposure_to_json(found: Exposure) -> dict[str, Any]:
    return {
        "mission_sandbox": found.mission_sandbox,
        "unconfined": unconfined_to_json(found.unconfined),
        "network_host": list(found.network_host),
    }


def exposure_from_json(data: Mapping[str, Any]) -> Exposure:
    return Exposure(
        str(data["mission_sandbox"]),
        unconfined_from_json(data["unconfined"]),
        tuple(str(n) for n in data["network_host"]),
    )
