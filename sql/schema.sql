-- schema.sql: the full current Rushes schema, for people to read.
--
-- rushesd never runs this file: it builds and upgrades databases with
-- sql/migrations/*.sql (embedded in the binary, applied in name order,
-- PRAGMA user_version = number applied). A unit test (store_test) checks
-- that this file and the migrations produce the same tables, indices and
-- triggers, so update both together.

PRAGMA application_id = 1381189700; -- 0x52534844 "RSHD"
PRAGMA user_version = 4;

CREATE TABLE project (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    media_roots TEXT NOT NULL DEFAULT '[]',
    signing_key TEXT,
    created_at  INTEGER NOT NULL,
    tenant      TEXT,                         -- 0002: NULL = farm-wide
    max_running INTEGER NOT NULL DEFAULT 0    -- 0002: 0 = no limit
);
CREATE INDEX project_tenant ON project(tenant);

CREATE TABLE worker (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    pool       TEXT NOT NULL DEFAULT '',
    caps       TEXT NOT NULL DEFAULT '{}',
    state      TEXT NOT NULL DEFAULT 'up' CHECK (state IN ('up', 'gone')),
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    drained    INTEGER NOT NULL DEFAULT 0     -- 0002
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

-- 0002_ops.sql: tokens (hashed) and schedules; see docs/OPERATIONS.md.
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

-- 0003_ledger.sql: the consent registry (ledger/).
--
-- Events themselves live in ledger_event (0001). Performers are people
-- (global); a consent belongs to one performer and one project, covers a
-- JSON array of likeness kinds ("face", "eyes", "voice", "body"), a use and
-- a territory, may expire (expires_at, ms; NULL = never) and is revoked by
-- setting revoked_at, never deleted: the ledger events that cite a consent
-- must stay resolvable.
CREATE TABLE performer (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE consent (
    id            INTEGER PRIMARY KEY,
    performer_id  INTEGER NOT NULL REFERENCES performer(id),
    project_id    INTEGER NOT NULL REFERENCES project(id),
    kinds         TEXT NOT NULL DEFAULT '[]',
    use           TEXT NOT NULL DEFAULT '',
    territory     TEXT NOT NULL DEFAULT '',
    expires_at    INTEGER,
    document_hash TEXT NOT NULL,
    granted_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    revoke_reason TEXT
);
CREATE INDEX consent_performer ON consent(performer_id, project_id);
CREATE TRIGGER consent_no_delete BEFORE DELETE ON consent
BEGIN
    SELECT RAISE(ABORT, 'consent records are kept; revoke instead');
END;

-- 0004_train_loss.sql: a bounded loss history per training task, for the
-- dashboard's loss curve (GET /api/v1/jobs/{id}/loss).
--
-- Training tasks report "step N/M loss X ..." progress lines
-- (tasks/removal/run.c); a trigger on attempt_log copies each one's step and
-- loss here, whatever path inserted the line. Only lines whose step and loss
-- start with a digit are taken (CAST reads the number's longest prefix).
-- When a task holds more than 1000 points every second one is dropped
-- (the first and the newest kept), so a long run keeps its whole shape at
-- a coarser grain and the table stays bounded.
CREATE TABLE train_loss (
    id         INTEGER PRIMARY KEY,
    task_id    INTEGER NOT NULL REFERENCES task(id),
    attempt_id INTEGER NOT NULL REFERENCES attempt(id),
    step       INTEGER NOT NULL,
    loss       REAL NOT NULL,
    t          INTEGER NOT NULL
);
CREATE INDEX train_loss_task ON train_loss(task_id, id);
CREATE TRIGGER attempt_log_train_loss AFTER INSERT ON attempt_log
WHEN NEW.text GLOB 'step [0-9]*/[0-9]* loss [0-9]*'
BEGIN
    INSERT INTO train_loss(task_id, attempt_id, step, loss, t)
    SELECT a.task_id, NEW.attempt_id, CAST(substr(NEW.text, 6) AS INTEGER),
           CAST(substr(NEW.text, instr(NEW.text, ' loss ') + 6) AS REAL), NEW.t
    FROM attempt a WHERE a.id = NEW.attempt_id;
END;
CREATE TRIGGER train_loss_cap AFTER INSERT ON train_loss
WHEN (SELECT COUNT(*) FROM train_loss WHERE task_id = NEW.task_id) > 1000
BEGIN
    DELETE FROM train_loss WHERE id IN (
        SELECT id FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn
                        FROM train_loss WHERE task_id = NEW.task_id)
        WHERE rn % 2 = 0 AND id <> NEW.id);
END;
