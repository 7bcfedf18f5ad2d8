"""Geometry for the dashboard's pictures (pure): the workflow DAG and the spend bars.

Templates draw the SVG from these numbers; no text is placed here, so escaping stays with
Jinja2's autoescape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from reconciler.tasks.lifecycle import TaskState as S

NODE_W, NODE_H = 168, 46

# Node fill and outline by step (task) state, the same hues as the page's state badges.
STATE_FILL: dict[str, str] = {
    S.DONE: "#dcfce7",
    S.FAILED: "#fee2e2",
    S.BLOCKED: "#fef3c7",
    S.NEEDS_APPROVAL: "#fef3c7",
    S.REVIEW: "#fef3c7",
    S.ASSIGNED: "#dbeafe",
    S.IN_PROGRESS: "#bfdbfe",
    S.CANCELED: "#e5e7eb",
    S.INBOX: "#f1f5f9",
}
STATE_STROKE: dict[str, str] = {
    S.DONE: "#16a34a",
    S.FAILED: "#dc2626",
    S.BLOCKED: "#d97706",
    S.NEEDS_APPROVAL: "#d97706",
    S.REVIEW: "#d97706",
    S.ASSIGNED: "#2563eb",
    S.IN_PROGRESS: "#1d4ed8",
    S.CANCELED: "#6b7280",
    S.INBOX: "#94a3b8",
}
GAP_X, GAP_Y = 64, 22
PAD = 16


@dataclass(frozen=True, slots=True)
class DagNode:
    id: str
    task: str
    state: str
    stage: int
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class DagEdge:
    source: str
    target: str
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True, slots=True)
class Dag:
    nodes: list[DagNode]
    edges: list[DagEdge]
    width: int
    height: int


def stages(deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Stage of each step = the longest chain of dependencies leading to it (0 for roots).

    Unknown dependencies are ignored; a cycle (never valid, but drawn anyway) is cut."""
    memo: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(node: str) -> int:
        if node in memo:
            return memo[node]
        if node in visiting:
            return 0
        visiting.add(node)
        parents = [d for d in deps.get(node, ()) if d in deps]
        value = 1 + max((depth(p) for p in parents), default=-1)
        visiting.discard(node)
        memo[node] = value
        return value

    return {node: depth(node) for node in deps}


def layout_dag(steps: Sequence[tuple[str, str, str, Sequence[str]]]) -> Dag:
    """Steps as (id, task name, state, depends_on) in declaration order -> positions.

    Left to right by stage; within a stage, in declaration order."""
    deps = {sid: list(d) for sid, _, _, d in steps}
    stage_of = stages(deps)
    rows: dict[int, int] = {}
    nodes: dict[str, DagNode] = {}
    for sid, task, state, _ in steps:
        stage = stage_of[sid]
        row = rows.get(stage, 0)
        rows[stage] = row + 1
        x = PAD + stage * (NODE_W + GAP_X)
        y = PAD + row * (NODE_H + GAP_Y)
        nodes[sid] = DagNode(sid, task, state, stage, x, y, NODE_W, NODE_H)
    edges = [
        DagEdge(
            dep,
            sid,
            nodes[dep].x + NODE_W,
            nodes[dep].y + NODE_H // 2,
            nodes[sid].x - 2,
            nodes[sid].y + NODE_H // 2,
        )
        for sid, _, _, depends in steps
        for dep in depends
        if dep in nodes
    ]
    width = PAD * 2 + (max(stage_of.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return Dag(list(nodes.values()), edges, width, height)


# --- spend bars -------------------------------------------------------------------------------

BAR_LABEL_W, BAR_W, BAR_H, BAR_GAP = 150, 360, 18, 10


@dataclass(frozen=True, slots=True)
class SpendBar:
    name: str
    spent: Decimal
    cap: Decimal | None


@dataclass(frozen=True, slots=True)
class BarRow:
    bar: SpendBar
    y: int
    width: int  # of the spent bar
    cap_x: int | None  # where the cap line sits
    over: bool  # spent at or above the cap


@dataclass(frozen=True, slots=True)
class BarChart:
    rows: list[BarRow]
    width: int
    height: int
    label_w: int = BAR_LABEL_W
    bar_h: int = BAR_H
    bar_w: int = BAR_W


def bar_chart(bars: Sequence[SpendBar]) -> BarChart:
    """Spend against caps on one scale: the largest of any spend or cap fills the width."""
    top = max(
        [b.spent for b in bars] + [b.cap for b in bars if b.cap is not None], default=Decimal(0)
    )
    scale = float(top) if top > 0 else 1.0
    rows = []
    for i, bar in enumerate(bars):
        rows.append(
            BarRow(
                bar,
                PAD + i * (BAR_H + BAR_GAP),
                round(BAR_W * float(bar.spent) / scale),
                BAR_LABEL_W + round(BAR_W * float(bar.cap) / scale)
                if bar.cap is not None
                else None,
                bar.cap is not None and bar.spent >= bar.cap,
            )
        )
    height = PAD * 2 + max(len(bars), 1) * (BAR_H + BAR_GAP)
    return BarChart(rows, BAR_LABEL_W + BAR_W + 110, height)
