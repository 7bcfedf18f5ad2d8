"""Reconciler: git source, pure planner, policy, apply, scheduler, lifecycle, runtime."""
