"""The chaos harness (bench/chaos.py) in small: `mc serve` SIGKILLed 5 times during 40 tasks."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


def load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_chaos", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_serve_killed_five_times_loses_nothing(tmp_path: Path) -> None:
    chaos = load_harness()
    began = time.monotonic()
    report = chaos.run_chaos(chaos.ChaosConfig(seed=7, tasks=40, kills=5), tmp_path / "chaos")
    took = time.monotonic() - began
    print(f"\n{report.table()}\n(quick chaos: {took:.1f} s)")
    assert report.kills == 5
    assert report.failures() == [], report.table()
    assert report.executions >= 40
    # Fault 7: a run whose agent had written its result.json (the trace's F line comes after
    # the atomic rename) is recorded with that result on recovery, never run again. Only runs
    # really cut short mid-flight are repeated.
    assert report.repeated_although_finished == 0, report.table()
    assert chaos.agents_of(f"CHAOS_LEDGER={tmp_path / 'chaos' / 'logs' / 'ledger'}") == []
