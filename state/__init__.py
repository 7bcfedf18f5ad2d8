"""Observed state: the DuckDB store behind a read and a write interface (only user of duckdb).

Map — callers use `store.State`/`StateReader`/`StateWriter`, `write_batch` and `dashboard`:
    open the file, migrate, typed errors?          → db.py, schema.py, errors.py
    the read / write interfaces?                   → store.py (composed of the families below)
    applied resources, pending, serial, commit?    → resources.py
    tasks and workflow runs?                       → tasks.py
    runs, content drops, spend ledger?             → runs.py
    approvals and emergency overrides?             → approvals.py
    the event log?                                 → events.py
    agent status (quarantine) and memory?          → agents.py
    one engine tick / apply in one transaction?    → write_batch.py
    dashboard pages over big states?               → dashboard.py
    records the interfaces return?                 → records.py
"""
