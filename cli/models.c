/*
 * models.c: `rushes models` and `rushes submit removal` (cli_models.h).
 * The removal submit is two API calls because the queue's unit is a job of
 * one kind: training and inference run on different shards and the infer
 * job must not start before the model exists, which depends_on gives.
 */
#include "cli_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "watch.h"

const cli_opt_spec cli_models_opts[] = {
    {"project", CLI_OPT_VALUE},
    {NULL, 0},
};

static int usage(cli_ctx *c, const char *cmd, const char *msg)
{
    fprintf(c->err, "rushes: %s (see: rushes %s --help)\n", msg, cmd);
    return CLI_EXIT_USAGE;
}

static void model_row(const cJSON *m, char cells[7][128])
{
    snprintf(cells[0], 128, "%.0f", cli_json_num(m, "id", 0));
    snprintf(cells[1], 128, "%s", cli_json_str(m, "project") ? cli_json_str(m, "project") : "");
    snprintf(cells[2], 128, "%s", cli_json_str(m, "task_kind") ? cli_json_str(m, "task_kind") : "");
    snprintf(cells[3], 128, "%.0f", cli_json_num(m, "job_id", 0));
    const cJSON *met = cJSON_GetObjectItemCaseSensitive(m, "metrics");
    snprintf(cells[4], 128, "%.0f", cli_json_num(met, "steps", 0));
    snprintf(cells[5], 128, "%.5f", cli_json_num(met, "loss", 0));
    const cJSON *parent = cJSON_GetObjectItemCaseSensitive(m, "parent_id");
    if (cJSON_IsNumber(parent)) {
        snprintf(cells[6], 128, "%.0f", parent->valuedouble);
    } else {
        snprintf(cells[6], 128, "-");
    }
    for (int i = 0; i < 7; i++) {
        cli_sanitize(cells[i]);
    }
}

int cli_cmd_models(cli_ctx *c, const cli_args *a)
{
    char path[512];
    const char *project = cli_args_get(a, "project");
    if (a->npos >= 1) {
        int64_t id = 0;
        rs_error e;
        if (cli_parse_int("ID", a->pos[0], 1, INT64_C(9007199254740991), &id, &e) != RS_OK) {
            return usage(c, "models", rs_error_text(&e));
        }
        snprintf(path, sizeof path, "/api/v1/models/%lld", (long long)id);
    } else if (project != NULL) {
        char esc[256];
        cli_url_escape(project, esc, sizeof esc);
        snprintf(path, sizeof path, "/api/v1/models?project=%s", esc);
    } else {
        snprintf(path, sizeof path, "/api/v1/models");
    }
    rs_error e;
    rs_error_clear(&e);
    cJSON *doc = NULL;
    char *raw = NULL;
    if (cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
        int x = cli_fail(c, &e, raw);
        free(raw);
        return x;
    }
    if (c->json) {
        size_t n = strlen(raw);
        fprintf(c->out, "%s%s", raw, n > 0 && raw[n - 1] == '\n' ? "" : "\n");
    } else {
        static const char *const hdr[] = {"ID",    "PROJECT", "KIND",  "JOB",
                                          "STEPS", "LOSS",    "PARENT"};
        cli_table *t = NULL;
        if (cli_table_create(7, hdr, &t) == RS_OK) {
            const cJSON *one = cJSON_GetObjectItemCaseSensitive(doc, "model");
            const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "models");
            const cJSON *m = NULL;
            char cells[7][128];
            const char *ptrs[7];
            for (int i = 0; i < 7; i++) {
                ptrs[i] = cells[i];
            }
            if (one != NULL) {
                model_row(one, cells);
                cli_table_add(t, ptrs);
            }
            cJSON_ArrayForEach(m, list)
            {
                model_row(m, cells);
                cli_table_add(t, ptrs);
            }
            cli_table_print(t, c->out);
            cli_table_destroy(t);
        }
        const cJSON *one = cJSON_GetObjectItemCaseSensitive(doc, "model");
        if (one != NULL) {
            const char *h = cli_json_str(one, "checkpoint_hash");
            fprintf(c->out, "checkpoint_hash %s\n", h != NULL ? h : "");
        }
    }
    cJSON_Delete(doc);
    free(raw);
    return CLI_EXIT_OK;
}

/* POSTs body; on success *id is the new job's id and *job its summary. */
static int post_job(cli_ctx *c, const cJSON *body, int64_t *id, cJSON **job)
{
    char *text = cJSON_PrintUnformatted(body);
    if (text == NULL) {
        fprintf(c->err, "rushes: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    rs_error e;
    rs_error_clear(&e);
    cJSON *doc = NULL;
    char *raw = NULL;
    rs_err r = cli_api_call(c, "POST", "/api/v1/jobs", NULL, 0, text, &doc, &raw, &e);
    free(text);
    if (r != RS_OK) {
        int x = cli_fail(c, &e, raw);
        free(raw);
        return x;
    }
    free(raw);
    cJSON *j = cJSON_DetachItemFromObjectCaseSensitive(doc, "job");
    cJSON_Delete(doc);
    *id = (int64_t)cli_json_num(j, "id", 0);
    if (*id <= 0) {
        cJSON_Delete(j);
        fprintf(c->err, "rushes: the reply to POST /api/v1/jobs has no job id\n");
        return CLI_EXIT_FAIL;
    }
    *job = j;
    return CLI_EXIT_OK;
}

int cli_removal_submit(cli_ctx *c, const cli_args *a)
{
    rs_error e;
    rs_error_clear(&e);
    cJSON *train = NULL;
    if (cli_submit_body("removal_train", a, &train, &e) != RS_OK) {
        return usage(c, "submit", rs_error_text(&e));
    }
    cJSON *infer = cJSON_Duplicate(train, true);
    cJSON *tjob = NULL, *ijob = NULL;
    int rc = CLI_EXIT_OK;
    if (infer == NULL) {
        cJSON_Delete(train);
        fprintf(c->err, "rushes: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    /* The train job needs no output folder; the infer job no step count. */
    cJSON *tp = cJSON_GetObjectItemCaseSensitive(train, "params");
    cJSON_DeleteItemFromObjectCaseSensitive(tp, "output");
    cJSON *ip = cJSON_GetObjectItemCaseSensitive(infer, "params");
    cJSON_DeleteItemFromObjectCaseSensitive(ip, "steps");
    cJSON_DeleteItemFromObjectCaseSensitive(ip, "from");
    /* A --window is for the training; the infer job runs as soon as it may. */
    cJSON_DeleteItemFromObjectCaseSensitive(infer, "window");
    if (cJSON_GetObjectItemCaseSensitive(ip, "output") == NULL) {
        rc = usage(c, "submit", "removal: --param output=FOLDER is required");
        goto out;
    }
    int64_t tid = 0, iid = 0;
    rc = post_job(c, train, &tid, &tjob);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(infer, "kind", cJSON_CreateString("removal_infer"));
    cJSON_AddNumberToObject(ip, "train_job", (double)tid);
    cJSON *deps = cJSON_GetObjectItemCaseSensitive(infer, "depends_on");
    if (deps == NULL) {
        deps = cJSON_AddArrayToObject(infer, "depends_on");
    }
    cJSON_AddItemToArray(deps, cJSON_CreateNumber((double)tid));
    rc = post_job(c, infer, &iid, &ijob);
    if (rc != CLI_EXIT_OK) {
        fprintf(c->err, "rushes: train job %lld was submitted, the infer job was not\n",
                (long long)tid);
        goto out;
    }
    if (c->json && !cli_args_has(a, "wait")) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "train", tjob);
        cJSON_AddItemToObject(o, "infer", ijob);
        tjob = NULL;
        ijob = NULL;
        char *s = cJSON_PrintUnformatted(o);
        fprintf(c->out, "%s\n", s != NULL ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else if (!c->json) {
        fprintf(c->out, "train %lld\ninfer %lld\n", (long long)tid, (long long)iid);
    }
    if (cli_args_has(a, "wait")) {
        int64_t ids[2] = {tid, iid};
        cJSON *final = NULL;
        rc = cli_watch(c, ids, 2, CLI_WATCH_INTERVAL_MS, &final);
        if (c->json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "train", cJSON_DetachItemFromArray(final, 0));
            cJSON_AddItemToObject(o, "infer", cJSON_DetachItemFromArray(final, 0));
            char *s = cJSON_PrintUnformatted(o);
            fprintf(c->out, "%s\n", s != NULL ? s : "{}");
            free(s);
            cJSON_Delete(o);
        }
        cJSON_Delete(final);
    }
out:
    cJSON_Delete(train);
    cJSON_Delete(infer);
    cJSON_Delete(tjob);
    cJSON_Delete(ijob);
    return rc;
}
