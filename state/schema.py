"""The DuckDB schema as an ordered list of forward migrations; applied by state.db on open."""

from __future__ import annotations

# Each entry moves the schema from version i to i+1. Never edit a released migration:
# append a new one, so every older state file can be carried forward.
MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
        """CREATE TABLE resources (
            kind VARCHAR NOT NULL, name VARCHAR NOT NULL, labels JSON NOT NULL,
            spec JSON NOT NULL, digest VARCHAR NOT NULL, path VARCHAR NOT NULL,
            commit VARCHAR, generation INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL,
            PRIMARY KEY (kind, name))""",
        "CREATE SEQUENCE event_seq START 1",
        """CREATE TABLE events (
            seq BIGINT PRIMARY KEY DEFAULT nextval('event_seq'), time TIMESTAMP NOT NULL,
            actor VARCHAR NOT NULL, kind VARCHAR NOT NULL, subject VARCHAR NOT NULL,
            data JSON NOT NULL, commit VARCHAR)""",
        """CREATE TABLE pending (
            key VARCHAR PRIMARY KEY, action VARCHAR NOT NULL, digest VARCHAR,
            risk VARCHAR NOT NULL, reason VARCHAR NOT NULL, commit VARCHAR,
            since TIMESTAMP NOT NULL)""",
        """CREATE TABLE tasks (
            name VARCHAR PRIMARY KEY, state VARCHAR NOT NULL, reason VARCHAR,
            agent VARCHAR, attempts INTEGER NOT NULL DEFAULT 0,
            abandoned INTEGER NOT NULL DEFAULT 0, next_attempt_at TIMESTAMP,
            output JSON, outputs JSON, created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL, workflow_run VARCHAR, step VARCHAR)""",
        """CREATE TABLE runs (
            id VARCHAR PRIMARY KEY, task VARCHAR NOT NULL, attempt INTEGER NOT NULL,
            agent VARCHAR NOT NULL, executor VARCHAR NOT NULL, state VARCHAR NOT NULL,
            owner_pid INTEGER, pid INTEGER, proc_start BIGINT, workspace VARCHAR,
            started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP, exit_code INTEGER,
            status VARCHAR, error_class VARCHAR, error VARCHAR,
            cost_usd DECIMAL(18, 6) NOT NULL DEFAULT 0, tokens BIGINT NOT NULL DEFAULT 0)""",
        """CREATE TABLE ledger (
            time TIMESTAMP NOT NULL, day DATE NOT NULL, run_id VARCHAR NOT NULL,
            agent VARCHAR NOT NULL, task VARCHAR NOT NULL, cost_usd DECIMAL(18, 6) NOT NULL)""",
        """CREATE TABLE memory (
            scope VARCHAR NOT NULL, key VARCHAR NOT NULL, value JSON NOT NULL,
            updated_at TIMESTAMP NOT NULL, PRIMARY KEY (scope, key))""",
        """CREATE TABLE drops (
            run_id VARCHAR NOT NULL, task VARCHAR NOT NULL, path VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL, size BIGINT NOT NULL, media_type VARCHAR NOT NULL,
            time TIMESTAMP NOT NULL)""",
        """CREATE TABLE agents (
            name VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, reason VARCHAR,
            updated_at TIMESTAMP NOT NULL)""",
        "INSERT INTO meta VALUES ('serial', '0')",
    ],
    [
        # idempotent transitions: the key of the last transition applied to each task
        "ALTER TABLE tasks ADD COLUMN transition_key VARCHAR",
        "ALTER TABLE agents ADD COLUMN digest VARCHAR",
        "CREATE INDEX runs_task ON runs (task)",
        "CREATE INDEX ledger_day ON ledger (day)",
    ],
    [
        # workflow runs pin the workflow definition they started with
        """CREATE TABLE workflow_runs (
            name VARCHAR PRIMARY KEY, workflow VARCHAR NOT NULL,
            workflow_digest VARCHAR NOT NULL, workflow_spec JSON NOT NULL,
            inputs JSON NOT NULL, retry_nonce INTEGER NOT NULL DEFAULT 0,
            status VARCHAR NOT NULL, outputs JSON, created_at TIMESTAMP NOT NULL,
            updated_at TIMESTAMP NOT NULL)""",
        "ALTER TABLE tasks ADD COLUMN feedback VARCHAR",
        "ALTER TABLE tasks ADD COLUMN rework INTEGER DEFAULT 0",
    ],
    [
        # every approval decision seen, accepted or rejected, with its evidence
        """CREATE TABLE approvals (
            id VARCHAR PRIMARY KEY, target VARCHAR NOT NULL, digest VARCHAR NOT NULL,
            approver VARCHAR, decision VARCHAR NOT NULL, channel VARCHAR NOT NULL,
            status VARCHAR NOT NULL, reason VARCHAR, evidence JSON NOT NULL,
            decided_at TIMESTAMP NOT NULL, recorded_at TIMESTAMP NOT NULL)""",
        "CREATE TABLE overrides (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL,"
        " actor VARCHAR NOT NULL, reason VARCHAR, set_at TIMESTAMP NOT NULL)",
    ],
    [
        # since when each approvable target has had its current digest: an approval counts
        # only for content that has not changed since mc first saw the approval
        "CREATE TABLE target_digests (target VARCHAR PRIMARY KEY, digest VARCHAR NOT NULL,"
        " since TIMESTAMP NOT NULL)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
