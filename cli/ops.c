/*
 * ops.c: the operator commands of `rushes` (docs/CLI.md "Operating"):
 * token create|ls|revoke, schedule add|ls|rm, admin backup, drain/undrain,
 * priority, limit. Each is one API call (docs/API.md); --json prints the
 * API's document, otherwise a short table or line.
 */
#include "cli_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"

/* One call; prints --json raw or hands the document to show(). */
static int call(cli_ctx *c, const char *method, const char *path, const cJSON *body,
                void (*show)(cli_ctx *c, const cJSON *doc))
{
    rs_error e;
    rs_error_clear(&e);
    cJSON *doc = NULL;
    char *raw = NULL;
    char *text = body != NULL ? cJSON_PrintUnformatted(body) : NULL;
    rs_err rc = cli_api_call(c, method, path, NULL, 0, text, &doc, &raw, &e);
    free(text);
    if (rc != RS_OK) {
        int x = cli_fail(c, &e, raw);
        free(raw);
        return x;
    }
    if (c->json) {
        size_t n = strlen(raw);
        fprintf(c->out, "%s%s", raw, n > 0 && raw[n - 1] == '\n' ? "" : "\n");
    } else {
        show(c, doc);
    }
    cJSON_Delete(doc);
    free(raw);
    return CLI_EXIT_OK;
}

static int usage(cli_ctx *c, const char *cmd, const char *msg)
{
    fprintf(c->err, "rushes: %s (see: rushes %s --help)\n", msg, cmd);
    return CLI_EXIT_USAGE;
}

static int parse_pos_id(cli_ctx *c, const char *cmd, const char *what, const char *s, int64_t *id)
{
    rs_error e;
    if (cli_parse_int(what, s, 1, INT64_C(9007199254740991), id, &e) != RS_OK) {
        return usage(c, cmd, rs_error_text(&e));
    }
    return CLI_EXIT_OK;
}

static const char *str_or(const cJSON *o, const char *key, const char *dflt)
{
    const char *s = cli_json_str(o, key);
    return s != NULL ? s : dflt;
}

/* ---- token ------------------------------------------------------------------ */

const cli_opt_spec cli_token_opts[] = {
    {"tenant", CLI_OPT_VALUE},
    {"role", CLI_OPT_VALUE},
    {"name", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

static void show_token_created(cli_ctx *c, const cJSON *doc)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "token");
    /* The secret on stdout alone, so `T=$(rushes token create ...)` works;
     * the rest on stderr. */
    fprintf(c->out, "%s\n", str_or(t, "token", ""));
    fprintf(c->err, "token %lld: tenant %s, role %s (shown once; store it now)\n",
            (long long)cli_json_num(t, "id", 0), str_or(t, "tenant", "?"), str_or(t, "role", "?"));
}

static void show_tokens(cli_ctx *c, const cJSON *doc)
{
    static const char *const hdr[] = {"ID",      "TENANT",  "ROLE",     "NAME",
                                      "CREATED", "REVOKED", "LAST USED"};
    cli_table *t = NULL;
    if (cli_table_create(7, hdr, &t) != RS_OK) {
        return;
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "tokens"))
    {
        char id[32];
        snprintf(id, sizeof id, "%lld", (long long)cli_json_num(it, "id", 0));
        const char *row[] = {id,
                             str_or(it, "tenant", ""),
                             str_or(it, "role", ""),
                             str_or(it, "name", ""),
                             str_or(it, "created_at", "-"),
                             str_or(it, "revoked_at", "-"),
                             str_or(it, "last_used_at", "-")};
        cli_table_add(t, row);
    }
    cli_table_print(t, c->out);
    cli_table_destroy(t);
}

static void show_done(cli_ctx *c, const cJSON *doc)
{
    const cJSON *o = doc->child;
    fprintf(c->out, "%s %lld: done\n", o != NULL && o->string != NULL ? o->string : "ok",
            (long long)cli_json_num(o, "id", 0));
}

int cli_cmd_token(cli_ctx *c, const cli_args *a)
{
    const char *sub = a->pos[0];
    if (strcmp(sub, "create") == 0 && a->npos == 1) {
        const char *tenant = cli_args_get(a, "tenant");
        const char *role = cli_args_get(a, "role");
        if (tenant == NULL || role == NULL) {
            return usage(c, "token", "token create needs --tenant T (or '*') and --role R");
        }
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "tenant", tenant);
        cJSON_AddStringToObject(b, "role", role);
        if (cli_args_get(a, "name") != NULL) {
            cJSON_AddStringToObject(b, "name", cli_args_get(a, "name"));
        }
        int rc = call(c, "POST", "/api/v1/tokens", b, show_token_created);
        cJSON_Delete(b);
        return rc;
    }
    if (strcmp(sub, "ls") == 0 && a->npos == 1) {
        return call(c, "GET", "/api/v1/tokens", NULL, show_tokens);
    }
    if (strcmp(sub, "revoke") == 0 && a->npos == 2) {
        int64_t id = 0;
        if (parse_pos_id(c, "token", "token ID", a->pos[1], &id) != CLI_EXIT_OK) {
            return CLI_EXIT_USAGE;
        }
        char path[64];
        snprintf(path, sizeof path, "/api/v1/tokens/%lld", (long long)id);
        return call(c, "DELETE", path, NULL, show_done);
    }
    return usage(c, "token", "expected: token create|ls|revoke ID");
}

/* ---- schedule ----------------------------------------------------------------- */

const cli_opt_spec cli_schedule_opts[] = {
    {"cron", CLI_OPT_VALUE},       {"tz", CLI_OPT_VALUE},
    {"project", CLI_OPT_VALUE},    {"param", CLI_OPT_MULTI},
    {"params", CLI_OPT_VALUE},     {"params-file", CLI_OPT_VALUE},
    {"priority", CLI_OPT_VALUE},   {"max-attempts", CLI_OPT_VALUE},
    {"pool", CLI_OPT_VALUE},       {"min-memory-mb", CLI_OPT_VALUE},
    {"window", CLI_OPT_VALUE},     {"window-hours", CLI_OPT_VALUE},
    {"window-min", CLI_OPT_VALUE}, {NULL, CLI_OPT_FLAG},
};

static void show_schedules(cli_ctx *c, const cJSON *doc)
{
    static const char *const hdr[] = {"ID", "PROJECT", "NAME", "CRON",
                                      "TZ", "KIND",    "NEXT", "LAST JOB"};
    cli_table *t = NULL;
    if (cli_table_create(8, hdr, &t) != RS_OK) {
        return;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "schedules");
    cJSON *one = NULL;
    if (list == NULL) {
        /* schedule add answers {"schedule": {...}}: show it as a table of one. */
        one = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(one, cJSON_GetObjectItemCaseSensitive(doc, "schedule"));
        list = one;
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, list)
    {
        char id[32];
        char last[32];
        snprintf(id, sizeof id, "%lld", (long long)cli_json_num(it, "id", 0));
        double lj = cli_json_num(it, "last_job_id", 0);
        snprintf(last, sizeof last, lj > 0 ? "%.0f" : "-", lj);
        const char *row[] = {id,
                             str_or(it, "project", ""),
                             str_or(it, "name", ""),
                             str_or(it, "cron", ""),
                             str_or(it, "tz", ""),
                             str_or(cJSON_GetObjectItemCaseSensitive(it, "job"), "kind", ""),
                             str_or(it, "next_at", "-"),
                             last};
        cli_table_add(t, row);
    }
    cli_table_print(t, c->out);
    cli_table_destroy(t);
    cJSON_Delete(one);
}

int cli_cmd_schedule(cli_ctx *c, const cli_args *a)
{
    const char *sub = a->pos[0];
    if (strcmp(sub, "add") == 0 && a->npos == 3) {
        const char *cron = cli_args_get(a, "cron");
        if (cron == NULL) {
            return usage(c, "schedule", "schedule add needs --cron 'M H DOM MON DOW'");
        }
        cJSON *job = NULL;
        rs_error e;
        rs_error_clear(&e);
        if (cli_submit_body(a->pos[2], a, &job, &e) != RS_OK) {
            return usage(c, "schedule", rs_error_text(&e));
        }
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "project", str_or(job, "project", ""));
        cJSON_DeleteItemFromObjectCaseSensitive(job, "project");
        cJSON_AddStringToObject(b, "name", a->pos[1]);
        cJSON_AddStringToObject(b, "cron", cron);
        if (cli_args_get(a, "tz") != NULL) {
            cJSON_AddStringToObject(b, "tz", cli_args_get(a, "tz"));
        }
        cJSON_AddItemToObject(b, "job", job);
        int rc = call(c, "POST", "/api/v1/schedules", b, show_schedules);
        cJSON_Delete(b);
        return rc;
    }
    if (strcmp(sub, "ls") == 0 && a->npos == 1) {
        return call(c, "GET", "/api/v1/schedules", NULL, show_schedules);
    }
    if (strcmp(sub, "rm") == 0 && a->npos == 2) {
        int64_t id = 0;
        if (parse_pos_id(c, "schedule", "schedule ID", a->pos[1], &id) != CLI_EXIT_OK) {
            return CLI_EXIT_USAGE;
        }
        char path[64];
        snprintf(path, sizeof path, "/api/v1/schedules/%lld", (long long)id);
        return call(c, "DELETE", path, NULL, show_done);
    }
    return usage(c, "schedule",
                 "expected: schedule add NAME KIND --project P --cron EXPR [--tz TZ] | ls | rm ID");
}

/* ---- admin, workers, priority, limits ------------------------------------------ */

const cli_opt_spec cli_admin_opts[] = {
    {"name", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

static void show_backup(cli_ctx *c, const cJSON *doc)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(doc, "backup");
    fprintf(c->out, "%s\n", str_or(b, "path", "?"));
}

int cli_cmd_admin(cli_ctx *c, const cli_args *a)
{
    if (strcmp(a->pos[0], "backup") != 0 || a->npos != 1) {
        return usage(c, "admin", "expected: admin backup [--name FILE]");
    }
    cJSON *b = NULL;
    if (cli_args_get(a, "name") != NULL) {
        b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "name", cli_args_get(a, "name"));
    }
    int rc = call(c, "POST", "/api/v1/admin/backup", b, show_backup);
    cJSON_Delete(b);
    return rc;
}

static void show_worker(cli_ctx *c, const cJSON *doc)
{
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(doc, "worker");
    fprintf(c->out, "worker %lld %s\n", (long long)cli_json_num(w, "id", 0),
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "drained")) ? "drained" : "undrained");
}

static int drain(cli_ctx *c, const cli_args *a, const char *what)
{
    int64_t id = 0;
    if (parse_pos_id(c, what, "worker ID", a->pos[0], &id) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    char path[80];
    snprintf(path, sizeof path, "/api/v1/workers/%lld/%s", (long long)id, what);
    return call(c, "POST", path, NULL, show_worker);
}

int cli_cmd_drain(cli_ctx *c, const cli_args *a)
{
    return drain(c, a, "drain");
}

int cli_cmd_undrain(cli_ctx *c, const cli_args *a)
{
    return drain(c, a, "undrain");
}

static void show_job_priority(cli_ctx *c, const cJSON *doc)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(doc, "job");
    fprintf(c->out, "job %lld priority %lld\n", (long long)cli_json_num(j, "id", 0),
            (long long)cli_json_num(j, "priority", 0));
}

int cli_cmd_priority(cli_ctx *c, const cli_args *a)
{
    int64_t id = 0;
    int64_t p = 0;
    rs_error e;
    if (parse_pos_id(c, "priority", "job ID", a->pos[0], &id) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    if (cli_parse_int("priority", a->pos[1], -100, 100, &p, &e) != RS_OK) {
        return usage(c, "priority", rs_error_text(&e));
    }
    char path[80];
    snprintf(path, sizeof path, "/api/v1/jobs/%lld/priority", (long long)id);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddNumberToObject(b, "priority", (double)p);
    int rc = call(c, "POST", path, b, show_job_priority);
    cJSON_Delete(b);
    return rc;
}

static void show_limit(cli_ctx *c, const cJSON *doc)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "project");
    fprintf(c->out, "project %s max_running %lld\n", str_or(p, "name", "?"),
            (long long)cli_json_num(p, "max_running", 0));
}

int cli_cmd_limit(cli_ctx *c, const cli_args *a)
{
    int64_t n = 0;
    rs_error e;
    if (cli_parse_int("max running", a->pos[1], 0, 100000, &n, &e) != RS_OK) {
        return usage(c, "limit", rs_error_text(&e));
    }
    char esc[200];
    cli_url_escape(a->pos[0], esc, sizeof esc);
    char path[256];
    snprintf(path, sizeof path, "/api/v1/projects/%s/limits", esc);
    cJSON *b = cJSON_CreateObject();
    cJSON_AddNumberToObject(b, "max_running", (double)n);
    int rc = call(c, "PUT", path, b, show_limit);
    cJSON_Delete(b);
    return rc;
}
