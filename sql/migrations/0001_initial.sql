-- 0001_initial.sql: the first Rushes schema, the job model of DESIGN.md.
--
-- Conventions: times are wall-clock milliseconds since the Unix epoch (UTC);
-- columns named params/result/caps/info/metrics/trained_on/payload hold JSON
-- text; states are the lower-case names of docs/API.md. rushesd runs this
-- inside one transaction and then sets PRAGMA user_version = 1 and the
-- Rushes application_id.

CREATE TABLE project (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    media_roots TEXT NOT NULL DEFAULT '[]',
    signing_key TEXT,
    created_at  INTEGER NOT NULL
);

CREATE TABLE worker (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    pool       TEXT NOT NULL DEFAULT '',
    caps       TEXT NOT NULL DEFAULT '{}',
    state      TEXT NOT NULL DEFAULT 'up' CHECK (state IN ('up', 'gone')),
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);

CREATE TABLE job (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES project(id),
    kind            TEXT NOT NULL,
    params          TEXT NOT NULL DEFAULT '{}',
    priority        INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN -100 AND 100),
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    error           TEXT,
    result          TEXT,
    idempotency_key TEXT,
    pool            TEXT NOT NULL DEFAULT '',
    min_memory_mb   INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 20),
    run_window      TEXT,
    tasks_total     INTEGER NOT NULL,
    tasks_done      INTEGER NOT NULL DEFAULT 0,
    waiting_deps    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER
);
-- NULL keys are distinct, so jobs without a key never collide.
CREATE UNIQUE INDEX job_idempotency ON job(project_id, idempotency_key);
CREATE INDEX job_state ON job(state, id);
CREATE INDEX job_project ON job(project_id, id);

CREATE TABLE job_dep (
    job_id     INTEGER NOT NULL REFERENCES job(id),
    depends_on INTEGER NOT NULL REFERENCES job(id),
    PRIMARY KEY (job_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX job_dep_parent ON job_dep(depends_on, job_id);

-- kind, nprio (= -job.priority), project_id and held are copies of job
-- fields so that the partial index task_ready alone orders the queue:
-- priority high first, then project (fair share is decided per project),
-- then age. held = 1 while the job waits for its dependencies.
CREATE TABLE task (
    id              INTEGER PRIMARY KEY,
    job_id          INTEGER NOT NULL REFERENCES job(id),
    idx             INTEGER NOT NULL,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'leased', 'running', 'retry_wait',
                                     'succeeded', 'failed', 'cancelled')),
    kind            TEXT NOT NULL,
    nprio           INTEGER NOT NULL,
    project_id      INTEGER NOT NULL,
    held            INTEGER NOT NULL DEFAULT 0,
    params          TEXT NOT NULL DEFAULT '{}',
    result          TEXT,
    result_hash     TEXT,
    error           TEXT,
    attempts_used   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    progress        REAL NOT NULL DEFAULT 0,
    UNIQUE (job_id, idx)
);
CREATE INDEX task_ready ON task(kind, nprio, project_id, job_id, idx)
    WHERE state IN ('queued', 'retry_wait') AND held = 0;
CREATE INDEX task_active ON task(project_id) WHERE state IN ('leased', 'running');
CREATE INDEX task_state ON task(state);

CREATE TABLE attempt (
    id               INTEGER PRIMARY KEY,
    task_id          INTEGER NOT NULL REFERENCES task(id),
    worker_id        INTEGER NOT NULL REFERENCES worker(id),
    state            TEXT NOT NULL
                     CHECK (state IN ('leased', 'running', 'succeeded', 'failed', 'lost',
                                      'released', 'cancelled')),
    lease_expires_at INTEGER NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    exit_code        INTEGER,
    signal           INTEGER,
    error            TEXT,
    started_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX attempt_task ON attempt(task_id);
CREATE INDEX attempt_lease ON attempt(lease_expires_at) WHERE state IN ('leased', 'running');
CREATE INDEX attempt_worker ON attempt(worker_id) WHERE state IN ('leased', 'running');

CREATE TABLE attempt_log (
    id         INTEGER PRIMARY KEY,
    attempt_id INTEGER NOT NULL REFERENCES attempt(id),
    t          INTEGER NOT NULL,
    text       TEXT NOT NULL
);
CREATE INDEX attempt_log_attempt ON attempt_log(attempt_id, id);

CREATE TABLE clip (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES project(id),
    job_id     INTEGER REFERENCES job(id),
    name       TEXT NOT NULL,
    path       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    info       TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, path, hash)
);
CREATE INDEX clip_job ON clip(job_id);

-- Model registry (placeholder until training lands): lineage via parent_id,
-- trained_on = JSON array of clip hashes.
CREATE TABLE model (
    id              INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL REFERENCES project(id),
    task_kind       TEXT NOT NULL,
    job_id          INTEGER REFERENCES job(id),
    trained_on      TEXT NOT NULL DEFAULT '[]',
    parent_id       INTEGER REFERENCES model(id),
    metrics         TEXT NOT NULL DEFAULT '{}',
    checkpoint_hash TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX model_project ON model(project_id, task_kind);

-- Hash-chained, signed ledger (placeholder until ledger/ lands). Append-only:
-- the triggers refuse every UPDATE and DELETE.
CREATE TABLE ledger_event (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES project(id),
    seq        INTEGER NOT NULL,
    prev_hash  TEXT NOT NULL,
    payload    TEXT NOT NULL,
    hash       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (project_id, seq)
);
CREATE TRIGGER ledger_event_no_update BEFORE UPDATE ON ledger_event
BEGIN
    SELECT RAISE(ABORT, 'ledger_event is append-only');
END;
CREATE TRIGGER ledger_event_no_delete BEFORE DELETE ON ledger_event
BEGIN
    SELECT RAISE(ABORT, 'ledger_event is append-only');
END;
