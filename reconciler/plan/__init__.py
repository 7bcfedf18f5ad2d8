"""Commit -> plan -> apply: observe, diff, build, JSON codec, apply, effects on tasks."""
