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
 */
#include "ledger.h"

#include <stdio.h>
#include <string.h>

static const char *body_str(const cJSON *b, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static rs_err record_ingest(ledger *l, const char *project, int64_t job_id, const cJSON *job_result,
                            const cJSON *clips, int64_t now_ms, rs_error *e)
{
    cJSON *f = cJSON_CreateObject();
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
    rs_err rc = ledger_append(l, project, "ingest", f, now_ms, NULL, NULL, e);
    cJSON_Delete(f);
    return rc;
}

rs_err ledger_record_job(ledger *l, const ledger_job_spec *j, int64_t now_ms, rs_error *e)
{
    const cJSON *alts = cJSON_GetObjectItemCaseSensitive(j->result, "alterations");
    if (strcmp(j->kind, "ingest") == 0) {
        return record_ingest(l, j->project, j->job_id, j->result, j->clips, now_ms, e);
    }
    if (alts == NULL) {
        return RS_OK;
    }
    if (!cJSON_IsArray(alts)) {
        return rs_error_set(e, RS_EINVAL, "result.alterations: must be an array");
    }
    cJSON *consents = NULL;
    rs_err rc = ledger_consent_gate(l, j->project, j->likeness, j->params, now_ms, &consents, e);
    if (rc != RS_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", rs_error_text(e));
        return rs_error_set(e, rc, "consent no longer holds, outputs not recorded: %s", why);
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, alts)
    {
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(it, "frame");
        const char *model = body_str(it, "model");
        ledger_alteration a = {
            .project = j->project,
            .job_id = j->job_id,
            .kind = j->kind,
            .model = model != NULL ? model : "",
            .frame = cJSON_IsNumber(fr) ? (int64_t)fr->valuedouble : -1,
            .source_path = body_str(it, "source"),
            .output_path = body_str(it, "output"),
            .consents = cJSON_GetArraySize(consents) > 0 ? consents : NULL,
        };
        bool audio = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "audio"));
        if (a.source_path == NULL || a.output_path == NULL || (!audio && !cJSON_IsNumber(fr))) {
            rc = rs_error_set(e, RS_EINVAL,
                              "result.alterations: each needs frame (or \"audio\": true), "
                              "source and output");
            break;
        }
        rc = audio ? ledger_record_audio_alteration(l, &a, now_ms, NULL, e)
                   : ledger_record_alteration(l, &a, now_ms, NULL, e);
        if (rc != RS_OK) {
            break;
        }
    }
    cJSON_Delete(consents);
    return rc;
}
