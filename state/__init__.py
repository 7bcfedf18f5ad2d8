"""Observed state: the DuckDB store behind a read and a write interface (only user of duckdb)."""
