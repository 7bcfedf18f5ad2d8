"""Prometheus metrics of the serve loop (pure stdlib); observed by `mc serve`, scraped via /metrics.

The serve loop records timings as they happen (`observe_reconcile`,
`observe_commit_to_dispatch`); what the state already knows (tasks by state, ended runs by
status, spend today) is read at scrape time and handed to `render` as a `Scrape`.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

# Seconds: a reconcile step is milliseconds when idle and seconds when a big commit lands.
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds from a commit landing to its first dispatch (watcher latency + plan + apply).
DISPATCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Histogram:
    """Cumulative fixed-bucket histogram; safe to observe from any thread."""

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        if list(buckets) != sorted(buckets) or len(set(buckets)) != len(buckets):
            raise ValueError("histogram buckets must be strictly increasing")
        self.name = name
        self.help = help_text
        self.buckets = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)  # le: a value on a bound counts in it
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> tuple[list[int], float, int]:
        """Cumulative counts per bucket (+Inf last), the sum and the count."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative, running = [], 0
        for c in counts:
            running += c
            cumulative.append(running)
        return cumulative, total, running

    def render(self) -> list[str]:
        cumulative, total, count = self.snapshot()
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for bound, n in zip((*self.buckets, math.inf), cumulative, strict=True):
            lines.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {n}')
        lines += [f"{self.name}_sum {_number(total)}", f"{self.name}_count {count}"]
        return lines


class Counter:
    """A monotonically increasing count per label set; thread-safe."""

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self._values: dict[tuple[tuple[str, str], ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def render(self) -> list[str]:
        with self._lock:
            values = dict(self._values)
        return _family(self.name, self.help, "counter", ((dict(k), v) for k, v in values.items()))


def _family(
    name: str, help_text: str, kind: str, samples: Iterable[tuple[Mapping[str, str], float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples]
    return lines


@dataclass(frozen=True, slots=True)
class Scrape:
    """What the state says at scrape time (read by `DashboardReader` in the API)."""

    tasks: Mapping[str, int] = field(default_factory=dict)  # state -> tasks
    runs: Mapping[str, int] = field(default_factory=dict)  # status of ended runs -> runs
    spend_today: Decimal = Decimal(0)


class Metrics:
    """The serve loop's metrics; one instance per process, shared with the dashboard."""

    def __init__(self) -> None:
        self.reconcile = Histogram(
            "mc_reconcile_duration_seconds",
            "Time one reconcile (plan, apply, schedule) took.",
            RECONCILE_BUCKETS,
        )
        self.commit_to_dispatch = Histogram(
            "mc_commit_to_dispatch_seconds",
            "Time from a commit landing to the first dispatch it caused.",
            DISPATCH_BUCKETS,
        )
        self.reconcile_errors = Counter(
            "mc_reconcile_errors_total", "Reconciles that ended in an error (bad commit, ...)."
        )

    def observe_reconcile(self, seconds: float) -> None:
        self.reconcile.observe(seconds)

    def observe_commit_to_dispatch(self, seconds: float) -> None:
        self.commit_to_dispatch.observe(seconds)

    def count_reconcile_error(self, kind: str = "error") -> None:
        self.reconcile_errors.inc(kind=kind)

    def render(self, scrape: Scrape | None = None) -> str:
        """The Prometheus text exposition format (version 0.0.4)."""
        scrape = scrape or Scrape()
        lines = [
            *self.reconcile.render(),
            *self.commit_to_dispatch.render(),
            *self.reconcile_errors.render(),
            *_family(
                "mc_tasks",
                "Tasks by lifecycle state.",
                "gauge",
                (({"state": s}, float(n)) for s, n in sorted(scrape.tasks.items())),
            ),
            *_family(
                "mc_runs_total",
                "Agent runs that ended, by status.",
                "counter",
                (({"status": s}, float(n)) for s, n in sorted(scrape.runs.items())),
            ),
            *_family(
                "mc_spend_usd_today",
                "USD spent by all agents since 00:00 UTC.",
                "gauge",
                [({}, float(scrape.spend_today))],
            ),
        ]
        return "\n".join(lines) + "\n"
