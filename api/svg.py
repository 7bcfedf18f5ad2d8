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


Point = tuple[int, int]


@dataclass(frozen=True, slots=True)
class DagEdge:
    """A dependency drawn as an orthogonal polyline from the source's right side to the
    target's left side; it runs only through the gaps between columns and between rows, so
    it never crosses a step's box."""

    source: str
    target: str
    points: tuple[Point, ...]

    @property
    def path(self) -> str:
        """The SVG path data: M x,y L x,y ..."""
        head, *rest = self.points
        return f"M{head[0]},{head[1]}" + "".join(f" L{x},{y}" for x, y in rest)


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

    Left to right by stage; within a stage, in declaration order. Edges are routed by
    `route_edge` (orthogonal, around the boxes)."""
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
    pairs = [(dep, sid) for sid, _, _, depends in steps for dep in depends if dep in nodes]

    def jumps(a: str, b: str) -> int:  # a long jump runs along the gap above its row: on top
        return 0 if nodes[b].stage - nodes[a].stage > 1 else 1

    # ports top to bottom in the order the edges arrive, so edges meeting one side do not cross
    outs = {
        sid: sorted((t for s, t in pairs if s == sid), key=lambda t: (nodes[t].y, jumps(sid, t)))
        for sid in nodes
    }
    ins = {
        sid: sorted((s for s, t in pairs if t == sid), key=lambda s: (nodes[s].y, jumps(s, sid)))
        for sid in nodes
    }
    edges = [
        DagEdge(
            dep,
            sid,
            route_edge(
                nodes[dep],
                nodes[sid],
                lane=i % LANES,
                ports=(
                    _port(outs[dep].index(sid), len(outs[dep])),
                    _port(ins[sid].index(dep), len(ins[sid])),
                ),
            ),
        )
        for i, (dep, sid) in enumerate(pairs)
    ]
    width = PAD * 2 + (max(stage_of.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = PAD * 2 + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return Dag(list(nodes.values()), edges, width, height)


LANES = 3  # parallel tracks per gap, so edges sharing a gap are told apart
ARROW_GAP = 2  # the arrow head stops short of the target's outline


def _lane_offset(lane: int, gap: int) -> int:
    """Offset of track `lane` from the middle of a gap `gap` wide (0, +step, -step)."""
    step = gap // (LANES + 1)
    return (0, step, -step)[lane % LANES]


def _column_gap_x(stage: int, lane: int) -> int:
    """x in the vertical gap just right of column `stage`."""
    return PAD + (stage + 1) * (NODE_W + GAP_X) - GAP_X // 2 + _lane_offset(lane, GAP_X)


def _row_gap_y(row_edge: int, lane: int) -> int:
    """y in the horizontal gap above row `row_edge` (row 0: the top margin)."""
    if row_edge == 0:
        return PAD // 2
    return PAD + row_edge * (NODE_H + GAP_Y) - GAP_Y // 2 + _lane_offset(lane, GAP_Y)


def _port(k: int, n: int) -> int:
    """Offset from a box's middle of the k-th of n edges leaving (or entering) one side, so
    edges sharing a box meet it at points of their own."""
    step = NODE_H // (n + 1)
    return (k + 1) * step - NODE_H // 2 if n > 1 else 0


def route_edge(
    source: DagNode, target: DagNode, lane: int = 0, ports: tuple[int, int] = (0, 0)
) -> tuple[Point, ...]:
    """Orthogonal route from `source`'s right side to `target`'s left side (pure geometry).

    Out of the source into the column gap beside it; for neighbouring stages straight down
    or up that gap to the target's row. A longer jump crosses the columns in between along
    the horizontal gap between rows nearest the target (no box lies in a gap), and drops
    into the target's row in the column gap just before it. `lane` picks one of `LANES`
    parallel tracks in each gap; `ports` shift where it leaves the source and enters the
    target (see `_port`)."""
    y1 = source.y + source.h // 2 + ports[0]
    y2 = target.y + target.h // 2 + ports[1]
    start, end = (source.x + source.w, y1), (target.x - ARROW_GAP, y2)
    out_x = _column_gap_x(source.stage, lane)
    if target.stage == source.stage + 1:
        if y1 == y2:
            return (start, end)
        return (start, (out_x, y1), (out_x, y2), end)
    row = (target.y - PAD) // (NODE_H + GAP_Y)
    channel = _row_gap_y(row + 1 if target.y < source.y else row, lane)  # on the source's side
    in_x = _column_gap_x(target.stage - 1, lane)
    return (start, (out_x, y1), (out_x, channel), (in_x, channel), (in_x, y2), end)


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
    """Each row on its own scale: a capped row fills the width at its cap (the cap line sits
    at the end, over-spend is a full red bar); an uncapped row is drawn against the largest
    uncapped spend, so a $1 agent cap never looks like a slice of the mission's budget."""
    uncapped = max((b.spent for b in bars if b.cap is None), default=Decimal(0))
    rows = []
    for i, bar in enumerate(bars):
        scale = bar.cap if bar.cap is not None and bar.cap > 0 else uncapped
        share = min(float(bar.spent / scale), 1.0) if scale > 0 else (1.0 if bar.spent else 0.0)
        rows.append(
            BarRow(
                bar,
                PAD + i * (BAR_H + BAR_GAP),
                round(BAR_W * share),
                BAR_LABEL_W + BAR_W if bar.cap is not None else None,
                bar.cap is not None and bar.spent >= bar.cap,
            )
        )
    height = PAD * 2 + max(len(bars), 1) * (BAR_H + BAR_GAP)
    return BarChart(rows, BAR_LABEL_W + BAR_W + 110, height)
