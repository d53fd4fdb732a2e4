-- 0003_ledger.sql: the compliance ledger's consent registry (ledger/).
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
