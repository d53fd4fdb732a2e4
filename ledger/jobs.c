/*
 * jobs.c: what a finished job leaves in the ledger, called by rushesd when
 * it finalises a job (daemon/api_ledger.c), in the transaction that
 * completes it.
 *
 * An ingest job gets an "ingest" event binding its MHL by SHA-256 (the MHL
 * holds every file's xxh3). Any kind that alters footage lists its frames
 * in its job result as "alterations": [{"frame","source","output"[,"model"]}]
 * (audio files: {"audio": true, "source", "output"}) and each is recorded
 * through ledger_record_alteration (or ledger_record_audio_alteration), with the consents
 * its likeness gate used; if a frame cannot be recorded or a consent no
 * longer holds, the error fails the job rather than deliver unrecorded
 * alterations.
 *
 * The work is split (ledger_job_prepare / ledger_job_append) so rushesd
 * reads, decodes and diffs the frames on a worker thread and only appends
 * the events on the thread that owns the database; ledger_record_job does
 * the three steps in a row.
 */
#include "ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

sqlite3 *ledger_db(ledger *l);
rs_err ledger_project_id(sqlite3 *db, const char *project, bool create, int64_t now_ms, int64_t *id,
                         rs_error *e);

static const char *body_str(const cJSON *b, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The ingest event's fields: what the job result says, the MHL's SHA-256
 * (file work: done in the prepare step), the clips. */
static rs_err ingest_fields(const cJSON *job_result, const cJSON *clips, int64_t job_id,
                            cJSON **out, rs_error *e)
{
    cJSON *f = cJSON_CreateObject();
    if (f == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON_AddNumberToObject(f, "job", (double)job_id);
    static const char *const keep[] = {"root", "files", "bytes", "mhl"};
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(job_result, keep[i]);
        if (v != NULL) {
            cJSON_AddItemToObject(f, keep[i], cJSON_Duplicate(v, true));
        }
    }
    const char *mhl = body_str(job_result, "mhl");
    if (mhl != NULL) {
        char h[LEDGER_HEX];
        rs_err rc = ledger_hash_file(mhl, h, e);
        if (rc != RS_OK) {
            cJSON_Delete(f);
            return rc;
        }
        cJSON_AddStringToObject(f, "mhl_sha256", h);
    }
    cJSON *arr = cJSON_AddArrayToObject(f, "clips");
    const cJSON *c = NULL;
    cJSON_ArrayForEach(c, clips)
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", body_str(c, "name") != NULL ? body_str(c, "name") : "");
        cJSON_AddStringToObject(o, "path", body_str(c, "path") != NULL ? body_str(c, "path") : "");
        cJSON_AddStringToObject(o, "hash", body_str(c, "hash") != NULL ? body_str(c, "hash") : "");
        cJSON_AddItemToArray(arr, o);
    }
    *out = f;
    return RS_OK;
}

#define AUTH_TYPE "alteration_authorised"

rs_err ledger_job_authorisation(ledger *l, const char *project, int64_t job_id, int64_t since_ms,
                                char hash[LEDGER_HEX], bool *found, rs_error *e)
{
    *found = false;
    sqlite3 *db = ledger_db(l);
    int64_t pid = 0;
    rs_err rc = ledger_project_id(db, project, false, 0, &pid, e);
    if (rc == RS_ENOENT) {
        return RS_OK; /* no project yet, so no events */
    }
    if (rc != RS_OK) {
        return rc;
    }
    /* Newest first, stopping at events older than the job: the search costs
     * what the project logged since the job was submitted, not its whole
     * history (the table has no index on payload fields). */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT hash, created_at, json_extract(payload, '$.type'), "
                           "json_extract(payload, '$.job') FROM ledger_event "
                           "WHERE project_id = ? ORDER BY seq DESC",
                           -1, &st, NULL) != SQLITE_OK) {
        return rs_error_set(e, RS_EDB, "ledger: authorisation: %s", sqlite3_errmsg(db));
    }
    sqlite3_bind_int64(st, 1, pid);
    int r = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_int64(st, 1) < since_ms) {
            break;
        }
        const char *type = (const char *)sqlite3_column_text(st, 2);
        if (type == NULL || strcmp(type, AUTH_TYPE) != 0 || sqlite3_column_int64(st, 3) != job_id) {
            continue;
        }
        snprintf(hash, LEDGER_HEX, "%s", (const char *)sqlite3_column_text(st, 0));
        *found = true;
        break;
    }
    if (r != SQLITE_ROW && r != SQLITE_DONE) {
        rc = rs_error_set(e, RS_EDB, "ledger: authorisation: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

rs_err ledger_job_authorise(ledger *l, const ledger_authorisation *a, int64_t now_ms,
                            char hash[LEDGER_HEX], bool *created, rs_error *e)
{
    bool found = false;
    if (created != NULL) {
        *created = false;
    }
    rs_err rc = ledger_job_authorisation(l, a->project, a->job_id, a->since_ms, hash, &found, e);
    if (rc != RS_OK || found) {
        return rc;
    }
    cJSON *f = cJSON_CreateObject();
    char *canon = ledger_json_canonical(a->params != NULL ? a->params : f);
    if (f == NULL || canon == NULL) {
        cJSON_Delete(f);
        free(canon);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    char ph[LEDGER_HEX];
    ledger_hash_bytes(canon, strlen(canon), ph);
    free(canon);
    cJSON_AddNumberToObject(f, "job", (double)a->job_id);
    cJSON_AddStringToObject(f, "kind", a->kind != NULL ? a->kind : "");
    cJSON_AddStringToObject(f, "model", a->model != NULL ? a->model : "");
    cJSON_AddStringToObject(f, "params_sha256", ph);
    const cJSON *perf = cJSON_GetObjectItemCaseSensitive(a->params, "performers");
    cJSON_AddItemToObject(f, "performers",
                          cJSON_IsArray(perf) ? cJSON_Duplicate(perf, true) : cJSON_CreateArray());
    cJSON_AddItemToObject(f, "consent",
                          cJSON_IsArray(a->consents) ? cJSON_Duplicate(a->consents, true)
                                                     : cJSON_CreateNull());
    rc = ledger_append(l, a->project, AUTH_TYPE, f, now_ms, NULL, hash, e);
    cJSON_Delete(f);
    if (rc == RS_OK && created != NULL) {
        *created = true;
    }
    return rc;
}

/* What ledger_job_prepare found, for ledger_job_append. */
struct ledger_job_prep {
    cJSON *ingest;                /* the ingest event's fields, or NULL */
    cJSON *entries;               /* copy of result.alterations, or NULL */
    ledger_alteration_prep *alts; /* one per entry */
    size_t nalts;
    bool have_auth;
    char auth[LEDGER_HEX];
};

void ledger_job_prep_destroy(ledger_job_prep *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->nalts; i++) {
        ledger_alteration_prep_clear(&p->alts[i]);
    }
    free(p->alts);
    cJSON_Delete(p->ingest);
    cJSON_Delete(p->entries);
    free(p);
}

/* Entry it of result.alterations as an alteration (paths borrowed from it). */
static rs_err entry_alteration(const ledger_job_spec *j, const cJSON *it, const char *auth,
                               const cJSON *consents, ledger_alteration *a, bool *audio,
                               rs_error *e)
{
    const cJSON *fr = cJSON_GetObjectItemCaseSensitive(it, "frame");
    const char *model = body_str(it, "model");
    *a = (ledger_alteration){
        .project = j->project,
        .job_id = j->job_id,
        .kind = j->kind,
        .model = model != NULL ? model : "",
        .frame = cJSON_IsNumber(fr) ? (int64_t)fr->valuedouble : -1,
        .source_path = body_str(it, "source"),
        .output_path = body_str(it, "output"),
        .consents = cJSON_GetArraySize(consents) > 0 ? consents : NULL,
        .authorised_by = auth,
    };
    *audio = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "audio"));
    if (a->source_path == NULL || a->output_path == NULL || (!*audio && !cJSON_IsNumber(fr))) {
        return rs_error_set(e, RS_EINVAL,
                            "result.alterations: each needs frame (or \"audio\": true), "
                            "source and output");
    }
    return RS_OK;
}

rs_err ledger_job_prepare(const char *data_dir, const ledger_job_spec *j, const char *authorised_by,
                          bool (*stop)(void *ud), void *stop_ud, ledger_job_prep **out, rs_error *e)
{
    ledger_job_prep *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    if (authorised_by != NULL) {
        p->have_auth = true;
        snprintf(p->auth, sizeof p->auth, "%s", authorised_by);
    }
    rs_err rc = RS_OK;
    const cJSON *alts = cJSON_GetObjectItemCaseSensitive(j->result, "alterations");
    if (strcmp(j->kind, "ingest") == 0) {
        rc = ingest_fields(j->result, j->clips, j->job_id, &p->ingest, e);
        goto out;
    }
    if (alts == NULL) {
        goto out;
    }
    if (!cJSON_IsArray(alts)) {
        rc = rs_error_set(e, RS_EINVAL, "result.alterations: must be an array");
        goto out;
    }
    p->entries = cJSON_Duplicate(alts, true);
    int n = cJSON_GetArraySize(alts);
    p->alts = calloc(n > 0 ? (size_t)n : 1, sizeof *p->alts);
    if (p->entries == NULL || p->alts == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    /* Every entry is checked before any frame is read. */
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, p->entries)
    {
        ledger_alteration a;
        bool audio = false;
        rc = entry_alteration(j, it, NULL, NULL, &a, &audio, e);
        if (rc != RS_OK) {
            goto out;
        }
    }
    cJSON_ArrayForEach(it, p->entries)
    {
        if (stop != NULL && stop(stop_ud)) {
            rc = rs_error_set(e, RS_ECANCELED, "job %" PRId64 ": ledger work abandoned", j->job_id);
            goto out;
        }
        ledger_alteration a;
        bool audio = false;
        rc = entry_alteration(j, it, p->have_auth ? p->auth : NULL, NULL, &a, &audio, e);
        if (rc == RS_OK) {
            rc = audio ? ledger_audio_alteration_prepare(&a, &p->alts[p->nalts], e)
                       : ledger_alteration_prepare(data_dir, &a, &p->alts[p->nalts], e);
        }
        if (rc != RS_OK) {
            goto out;
        }
        p->nalts++;
    }
out:
    if (rc != RS_OK) {
        ledger_job_prep_destroy(p);
        return rc;
    }
    *out = p;
    return RS_OK;
}

rs_err ledger_job_append(ledger *l, const ledger_job_spec *j, const ledger_job_prep *p,
                         int64_t now_ms, rs_error *e)
{
    if (p->ingest != NULL) {
        return ledger_append(l, j->project, "ingest", p->ingest, now_ms, NULL, NULL, e);
    }
    if (p->entries == NULL) {
        return RS_OK;
    }
    cJSON *consents = NULL;
    rs_err rc = ledger_consent_gate(l, j->project, j->likeness, j->params, now_ms, &consents, e);
    if (rc != RS_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", rs_error_text(e));
        return rs_error_set(e, rc, "consent no longer holds, outputs not recorded: %s", why);
    }
    size_t i = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, p->entries)
    {
        if (i >= p->nalts) {
            rc = rs_error_set(e, RS_EINVAL, "job %" PRId64 ": ledger work incomplete", j->job_id);
            break;
        }
        ledger_alteration a;
        bool audio = false;
        rc = entry_alteration(j, it, p->have_auth ? p->auth : NULL, consents, &a, &audio, e);
        if (rc == RS_OK) {
            rc = ledger_alteration_append(l, &a, &p->alts[i], now_ms, NULL, NULL, e);
        }
        if (rc != RS_OK) {
            break;
        }
        i++;
    }
    cJSON_Delete(consents);
    return rc;
}

rs_err ledger_record_job(ledger *l, const ledger_job_spec *j, int64_t now_ms, rs_error *e)
{
    const cJSON *alts = cJSON_GetObjectItemCaseSensitive(j->result, "alterations");
    bool ingest = strcmp(j->kind, "ingest") == 0;
    if (!ingest && alts == NULL) {
        return RS_OK;
    }
    char auth[LEDGER_HEX] = "";
    bool have_auth = false;
    rs_err rc = RS_OK;
    if (!ingest && cJSON_IsArray(alts)) {
        /* The gate first, as before the split: a revoked consent fails the
         * job without reading its frames. ledger_job_append checks again. */
        rc = ledger_consent_gate(l, j->project, j->likeness, j->params, now_ms, NULL, e);
        if (rc != RS_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", rs_error_text(e));
            return rs_error_set(e, rc, "consent no longer holds, outputs not recorded: %s", why);
        }
        /* Outputs written under an authorisation carry its hash in their
         * labels; each alteration event names it so the audit can tie the
         * two. */
        rc = ledger_job_authorisation(l, j->project, j->job_id, j->since_ms, auth, &have_auth, e);
        if (rc != RS_OK) {
            return rc;
        }
    }
    ledger_job_prep *p = NULL;
    rc = ledger_job_prepare(ledger_data_dir(l), j, have_auth ? auth : NULL, NULL, NULL, &p, e);
    if (rc == RS_OK) {
        rc = ledger_job_append(l, j, p, now_ms, e);
    }
    ledger_job_prep_destroy(p);
    return rc;
}
