"""Observed state: the DuckDB store behind a read and a write interface (only package importing duckdb)."""
