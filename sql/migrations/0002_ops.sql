-- 0002_ops.sql: operating the farm (docs/OPERATIONS.md): API tokens with
-- tenants and roles, project ownership and concurrency limits, worker drain,
-- recurring schedules.
--
-- Tokens are stored as the BLAKE2b-256 hash (hex) of their secret, never the
-- secret itself. tenant '*' is farm-wide (every tenant). A project's tenant
-- is set by the first tenant-scoped token that submits to it; NULL means it
-- was made farm-wide (auth off or a '*' token) and only '*' tokens see it.

ALTER TABLE project ADD COLUMN tenant TEXT;
-- Leased + running tasks the project may hold at once; 0 = no limit.
ALTER TABLE project ADD COLUMN max_running INTEGER NOT NULL DEFAULT 0;
CREATE INDEX project_tenant ON project(tenant);

-- A drained worker keeps what it runs but is offered no new task.
ALTER TABLE worker ADD COLUMN drained INTEGER NOT NULL DEFAULT 0;

CREATE TABLE api_token (
    id           INTEGER PRIMARY KEY,
    tenant       TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('submit', 'operate', 'audit', 'admin')),
    name         TEXT NOT NULL DEFAULT '',
    hash         TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

-- Recurring submits on a 5-field cron expression evaluated in time zone tz.
-- job holds the submit body (docs/API.md POST /api/v1/jobs). window_ms is
-- reserved for training windows (a job may run only for window_ms after each
-- firing); NULL for a plain schedule.
CREATE TABLE schedule (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES project(id),
    name        TEXT NOT NULL,
    cron        TEXT NOT NULL,
    tz          TEXT NOT NULL DEFAULT 'UTC',
    job         TEXT NOT NULL,
    window_ms   INTEGER,
    enabled     INTEGER NOT NULL DEFAULT 1,
    next_at     INTEGER NOT NULL,
    last_at     INTEGER,
    last_job_id INTEGER REFERENCES job(id),
    created_at  INTEGER NOT NULL,
    UNIQUE (project_id, name)
);
CREATE INDEX schedule_due ON schedule(next_at) WHERE enabled = 1;
