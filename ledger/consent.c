/*
 * consent.c: the performer consent registry and the likeness gate.
 *
 * A consent covers one performer in one project for a set of likeness kinds
 * (face, eyes, voice, body), a use and a territory, until an optional
 * expiry; it is revoked, never deleted. Grants and revocations are ledger
 * events too, so the chain proves which consent stood when a job ran. The
 * gate is called at submit and again at dispatch, so a revocation between
 * the two stops the job before any pixel is touched.
 */
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"

rs_err ledger_sp_begin(sqlite3 *db, rs_error *e);
rs_err ledger_sp_end(sqlite3 *db, rs_err rc, rs_error *e);
rs_err ledger_project_id(sqlite3 *db, const char *project, bool create, int64_t now_ms, int64_t *id,
                         rs_error *e);
sqlite3 *ledger_db(ledger *l);

static const char *const likeness_names[] = {"face", "eyes", "voice", "body"};

unsigned ledger_likeness_parse(const char *name)
{
    for (unsigned i = 0; i < 4; i++) {
        if (name != NULL && strcmp(name, likeness_names[i]) == 0) {
            return 1u << i;
        }
    }
    return 0;
}

static cJSON *kinds_json(unsigned kinds)
{
    cJSON *a = cJSON_CreateArray();
    for (unsigned i = 0; i < 4; i++) {
        if (kinds & (1u << i)) {
            cJSON_AddItemToArray(a, cJSON_CreateString(likeness_names[i]));
        }
    }
    return a;
}

static unsigned kinds_parse_text(const char *json)
{
    cJSON *a = cJSON_Parse(json != NULL ? json : "[]");
    unsigned k = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, a)
    {
        if (cJSON_IsString(it)) {
            k |= ledger_likeness_parse(it->valuestring);
        }
    }
    cJSON_Delete(a);
    return k;
}

static bool text_ok(const char *s, size_t max)
{
    if (s == NULL) {
        return true;
    }
    size_t n = strlen(s);
    if (n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20) {
            return false;
        }
    }
    return true;
}

static rs_err performer_id(sqlite3 *db, const char *name, bool create, int64_t now_ms, int64_t *id,
                           rs_error *e)
{
    sqlite3_stmt *st = NULL;
    if (create) {
        sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO performer(name, created_at) VALUES(?, ?)", -1,
                           &st, NULL);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        int r = sqlite3_step(st);
        sqlite3_finalize(st);
        if (r != SQLITE_DONE) {
            return rs_error_set(e, RS_EDB, "performer %s: %s", name, sqlite3_errmsg(db));
        }
    }
    if (sqlite3_prepare_v2(db, "SELECT id FROM performer WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        return rs_error_set(e, RS_EDB, "performer: %s", sqlite3_errmsg(db));
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    rs_err rc = RS_OK;
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
    } else {
        rc = rs_error_set(e, RS_ENOENT, "performer '%s': not registered", name);
    }
    sqlite3_finalize(st);
    return rc;
}

rs_err ledger_consent_add(ledger *l, const ledger_consent_spec *c, int64_t now_ms, int64_t *id,
                          rs_error *e)
{
    sqlite3 *db = ledger_db(l);
    if (c->performer == NULL || c->performer[0] == '\0' || !text_ok(c->performer, 200)) {
        return rs_error_set(e, RS_EINVAL, "performer: 1-200 printable characters required");
    }
    if (c->kinds == 0 || c->kinds > 15) {
        return rs_error_set(e, RS_EINVAL, "kinds: at least one of face, eyes, voice, body");
    }
    if (c->document_hash == NULL || c->document_hash[0] == '\0' ||
        !text_ok(c->document_hash, 200)) {
        return rs_error_set(e, RS_EINVAL,
                            "document_hash: the hash of the signed consent document is required");
    }
    if (!text_ok(c->use, 500) || !text_ok(c->territory, 200)) {
        return rs_error_set(e, RS_EINVAL, "use/territory: printable text, at most 500/200");
    }
    if (c->expires_at < 0) {
        return rs_error_set(e, RS_EINVAL, "expires_at: must be >= 0 (0 = never)");
    }
    rs_err rc = ledger_sp_begin(db, e);
    if (rc != RS_OK) {
        return rc;
    }
    int64_t pid = 0, perf = 0, cid = 0;
    sqlite3_stmt *st = NULL;
    cJSON *f = NULL;
    char *kinds = NULL;
    rc = ledger_project_id(db, c->project, true, now_ms, &pid, e);
    if (rc == RS_OK) {
        rc = performer_id(db, c->performer, true, now_ms, &perf, e);
    }
    if (rc != RS_OK) {
        goto out;
    }
    cJSON *kj = kinds_json(c->kinds);
    kinds = cJSON_PrintUnformatted(kj);
    cJSON_Delete(kj);
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO consent(performer_id, project_id, kinds, use, territory, "
                           "expires_at, document_hash, granted_at) VALUES(?,?,?,?,?,?,?,?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_int64(st, 1, perf);
    sqlite3_bind_int64(st, 2, pid);
    sqlite3_bind_text(st, 3, kinds, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->use != NULL ? c->use : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, c->territory != NULL ? c->territory : "", -1, SQLITE_STATIC);
    if (c->expires_at > 0) {
        sqlite3_bind_int64(st, 6, c->expires_at);
    } else {
        sqlite3_bind_null(st, 6);
    }
    sqlite3_bind_text(st, 7, c->document_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
        goto out;
    }
    cid = sqlite3_last_insert_rowid(db);
    f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "consent", (double)cid);
    cJSON_AddStringToObject(f, "performer", c->performer);
    cJSON_AddItemToObject(f, "kinds", kinds_json(c->kinds));
    cJSON_AddStringToObject(f, "use", c->use != NULL ? c->use : "");
    cJSON_AddStringToObject(f, "territory", c->territory != NULL ? c->territory : "");
    cJSON_AddItemToObject(f, "expires_at",
                          c->expires_at > 0 ? cJSON_CreateNumber((double)c->expires_at)
                                            : cJSON_CreateNull());
    cJSON_AddStringToObject(f, "document_hash", c->document_hash);
    rc = ledger_append(l, c->project, "consent_granted", f, now_ms, NULL, NULL, e);
out:
    sqlite3_finalize(st);
    cJSON_Delete(f);
    cJSON_free(kinds);
    rc = ledger_sp_end(db, rc, e);
    if (rc == RS_OK && id != NULL) {
        *id = cid;
    }
    return rc;
}

static const char *state_of(sqlite3_stmt *st, int revoked_col, int expires_col, int64_t now_ms)
{
    if (sqlite3_column_type(st, revoked_col) != SQLITE_NULL) {
        return "revoked";
    }
    if (sqlite3_column_type(st, expires_col) != SQLITE_NULL &&
        sqlite3_column_int64(st, expires_col) <= now_ms) {
        return "expired";
    }
    return "valid";
}

#define CONSENT_COLS                                                                               \
    "SELECT c.id, pf.name, pj.name, c.kinds, c.use, c.territory, c.expires_at, "                   \
    "c.document_hash, c.granted_at, c.revoked_at, c.revoke_reason FROM consent c "                 \
    "JOIN performer pf ON pf.id = c.performer_id JOIN project pj ON pj.id = c.project_id "

static cJSON *consent_row(sqlite3_stmt *st, int64_t now_ms)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
    cJSON_AddStringToObject(o, "performer", (const char *)sqlite3_column_text(st, 1));
    cJSON_AddStringToObject(o, "project", (const char *)sqlite3_column_text(st, 2));
    cJSON *k = cJSON_Parse((const char *)sqlite3_column_text(st, 3));
    cJSON_AddItemToObject(o, "kinds", k != NULL ? k : cJSON_CreateArray());
    cJSON_AddStringToObject(o, "use", (const char *)sqlite3_column_text(st, 4));
    cJSON_AddStringToObject(o, "territory", (const char *)sqlite3_column_text(st, 5));
    if (sqlite3_column_type(st, 6) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, "expires_at");
    } else {
        cJSON_AddNumberToObject(o, "expires_at", (double)sqlite3_column_int64(st, 6));
    }
    cJSON_AddStringToObject(o, "document_hash", (const char *)sqlite3_column_text(st, 7));
    cJSON_AddNumberToObject(o, "granted_at", (double)sqlite3_column_int64(st, 8));
    if (sqlite3_column_type(st, 9) == SQLITE_NULL) {
        cJSON_AddNullToObject(o, "revoked_at");
    } else {
        cJSON_AddNumberToObject(o, "revoked_at", (double)sqlite3_column_int64(st, 9));
        const char *why = (const char *)sqlite3_column_text(st, 10);
        cJSON_AddStringToObject(o, "revoke_reason", why != NULL ? why : "");
    }
    cJSON_AddStringToObject(o, "state", state_of(st, 9, 6, now_ms));
    return o;
}

rs_err ledger_consent_get(ledger *l, int64_t id, int64_t now_ms, cJSON **out, rs_error *e)
{
    sqlite3 *db = ledger_db(l);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, CONSENT_COLS "WHERE c.id = ?", -1, &st, NULL) != SQLITE_OK) {
        return rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
    }
    sqlite3_bind_int64(st, 1, id);
    rs_err rc = RS_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *out = consent_row(st, now_ms);
    } else {
        rc = rs_error_set(e, RS_ENOENT, "consent %" PRId64 ": no such consent", id);
    }
    sqlite3_finalize(st);
    return rc;
}

rs_err ledger_consent_revoke(ledger *l, int64_t id, const char *reason, int64_t now_ms, rs_error *e)
{
    sqlite3 *db = ledger_db(l);
    if (!text_ok(reason, 500)) {
        return rs_error_set(e, RS_EINVAL, "reason: printable text, at most 500 bytes");
    }
    cJSON *c = NULL;
    rs_err rc = ledger_consent_get(l, id, now_ms, &c, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *f = NULL;
    sqlite3_stmt *st = NULL;
    if (!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(c, "revoked_at"))) {
        cJSON_Delete(c);
        return rs_error_set(e, RS_ESTATE, "consent %" PRId64 ": already revoked", id);
    }
    rc = ledger_sp_begin(db, e);
    if (rc != RS_OK) {
        cJSON_Delete(c);
        return rc;
    }
    if (sqlite3_prepare_v2(db, "UPDATE consent SET revoked_at = ?, revoke_reason = ? WHERE id = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
        goto out;
    }
    sqlite3_bind_int64(st, 1, now_ms);
    sqlite3_bind_text(st, 2, reason != NULL ? reason : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
        goto out;
    }
    f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "consent", (double)id);
    cJSON_AddStringToObject(f, "performer",
                            cJSON_GetObjectItemCaseSensitive(c, "performer")->valuestring);
    cJSON_AddStringToObject(f, "reason", reason != NULL ? reason : "");
    rc = ledger_append(l, cJSON_GetObjectItemCaseSensitive(c, "project")->valuestring,
                       "consent_revoked", f, now_ms, NULL, NULL, e);
out:
    sqlite3_finalize(st);
    cJSON_Delete(f);
    cJSON_Delete(c);
    return ledger_sp_end(db, rc, e);
}

rs_err ledger_consent_list(ledger *l, const char *project, const char *performer, int64_t now_ms,
                           cJSON **out_array, rs_error *e)
{
    sqlite3 *db = ledger_db(l);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           CONSENT_COLS "WHERE (?1 IS NULL OR pj.name = ?1) AND "
                                        "(?2 IS NULL OR pf.name = ?2) ORDER BY c.id DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        return rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
    }
    if (project != NULL) {
        sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    }
    if (performer != NULL) {
        sqlite3_bind_text(st, 2, performer, -1, SQLITE_STATIC);
    }
    cJSON *arr = cJSON_CreateArray();
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON_AddItemToArray(arr, consent_row(st, now_ms));
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        cJSON_Delete(arr);
        return rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
    }
    *out_array = arr;
    return RS_OK;
}

/* Why performer has no consent covering need in project: "" if it has. */
static rs_err performer_check(sqlite3 *db, const char *project, const char *name, unsigned need,
                              int64_t now_ms, int64_t *used, char *why, size_t whylen, rs_error *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT c.id, c.kinds, c.expires_at, c.revoked_at FROM consent c "
                           "JOIN performer pf ON pf.id = c.performer_id "
                           "JOIN project pj ON pj.id = c.project_id "
                           "WHERE pf.name = ? AND pj.name = ? ORDER BY c.id DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        return rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, project, -1, SQLITE_STATIC);
    unsigned covered = 0;
    bool any = false, revoked = false, expired = false;
    int r;
    snprintf(why, whylen, "%s", "");
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        any = true;
        const char *s = state_of(st, 3, 2, now_ms);
        if (strcmp(s, "revoked") == 0) {
            revoked = true;
            continue;
        }
        if (strcmp(s, "expired") == 0) {
            expired = true;
            continue;
        }
        unsigned k = kinds_parse_text((const char *)sqlite3_column_text(st, 1));
        if (covered == 0 || (k & need) == need) {
            *used = sqlite3_column_int64(st, 0);
        }
        covered |= k;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        return rs_error_set(e, RS_EDB, "consent: %s", sqlite3_errmsg(db));
    }
    if ((covered & need) == need) {
        return RS_OK;
    }
    char missing[64] = "";
    for (unsigned i = 0; i < 4; i++) {
        if ((need & ~covered) & (1u << i)) {
            strncat(missing, missing[0] != '\0' ? "," : "", sizeof missing - strlen(missing) - 1);
            strncat(missing, likeness_names[i], sizeof missing - strlen(missing) - 1);
        }
    }
    const char *state = !any                  ? "no consent on record"
                        : covered             ? "valid consent does not cover it"
                        : revoked && !expired ? "consent revoked"
                        : expired && !revoked ? "consent expired"
                        : revoked             ? "consent revoked or expired"
                                              : "no valid consent";
    snprintf(why, whylen, "performer '%s' has no valid consent for %s in project %s (%s)", name,
             missing, project, state);
    return RS_OK;
}

rs_err ledger_consent_gate(ledger *l, const char *project, unsigned likeness, const cJSON *params,
                           int64_t now_ms, cJSON **consents, rs_error *e)
{
    const cJSON *perf = cJSON_GetObjectItemCaseSensitive(params, "performers");
    if (perf != NULL && !cJSON_IsArray(perf)) {
        return rs_error_set(e, RS_EINVAL, "params.performers: must be an array of names");
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, perf)
    {
        if (!cJSON_IsString(it) || it->valuestring[0] == '\0' || !text_ok(it->valuestring, 200)) {
            return rs_error_set(e, RS_EINVAL, "params.performers: must be an array of names");
        }
    }
    cJSON *used = cJSON_CreateArray();
    if (likeness == 0) {
        if (consents != NULL) {
            *consents = used;
        } else {
            cJSON_Delete(used);
        }
        return RS_OK;
    }
    if (cJSON_GetArraySize(perf) == 0) {
        cJSON_Delete(used);
        return rs_error_set(e, RS_EPERM,
                            "params.performers: this job alters a likeness; name every performer "
                            "it touches");
    }
    cJSON_ArrayForEach(it, perf)
    {
        char why[512];
        int64_t id = 0;
        rs_err rc = performer_check(ledger_db(l), project, it->valuestring, likeness, now_ms, &id,
                                    why, sizeof why, e);
        if (rc != RS_OK) {
            cJSON_Delete(used);
            return rc;
        }
        if (why[0] != '\0') {
            cJSON_Delete(used);
            return rs_error_set(e, RS_EPERM, "%s", why);
        }
        cJSON_AddItemToArray(used, cJSON_CreateNumber((double)id));
    }
    if (consents != NULL) {
        *consents = used;
    } else {
        cJSON_Delete(used);
    }
    return RS_OK;
}
