"""Desired-state models: parse and validate the mission repo's YAML (bottom layer)."""
