/*
 * commands.c: every `rushes` command and cli_run, the dispatcher.
 *
 * Each command parses its own options (plus the global ones), makes one or a
 * few API calls through cli_api_call, and prints either a human table/text
 * or, with --json, the API's JSON as one document. Output formats are
 * documented in docs/CLI.md and are relied on by scripts and tests: change
 * them there too.
 */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli_eval.h"
#include "cli_ledger.h"
#include "cli_models.h"
#include "cli_ops.h"
#include "cli_probe.h"
#include "clock.h"
#include "output.h"
#include "watch.h"

#define DEFAULT_SERVER "http://127.0.0.1:8640"
#define LOG_POLL_MS 500

typedef int (*cmd_fn)(cli_ctx *c, const cli_args *a);

typedef struct command {
    const char *name;
    const cli_opt_spec *spec;
    cmd_fn run;
    int min_pos;
    int max_pos; /* -1: any number */
    const char *usage;
} command;

/* ---- API plumbing ------------------------------------------------------ */

void cli_url_escape(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        size_t need = plain ? 1 : 3;
        if (o + need >= outlen) {
            if (outlen > 0) {
                out[0] = '\0';
            }
            return;
        }
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (outlen > 0) {
        out[o] = '\0';
    }
}

/* Appends "&key=value" (or "?key=value") to path when value is set. */
static void query_add(char *path, size_t len, const char *key, const char *value)
{
    if (value == NULL) {
        return;
    }
    char esc[512];
    cli_url_escape(value, esc, sizeof esc);
    size_t n = strlen(path);
    snprintf(path + n, len - n, "%c%s=%s", strchr(path, '?') != NULL ? '&' : '?', key, esc);
}

rs_err cli_api_call(const cli_ctx *c, const char *method, const char *path,
                    const cli_http_header *headers, size_t nheaders, const char *body, cJSON **doc,
                    char **raw, rs_error *e)
{
    int status = 0;
    char *text = NULL;
    if (raw != NULL) {
        *raw = NULL;
    }
    rs_err rc = cli_http_request(&c->server, method, path, headers, nheaders, body, &status, &text,
                                 NULL, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *j = cJSON_Parse(text);
    if (status < 200 || status > 299) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        const char *code = cli_json_str(err, "code");
        const char *msg = cli_json_str(err, "message");
        if (msg != NULL) {
            rc = rs_error_set(e, status == 404 ? RS_ENOENT : RS_EPROTO, "%d %s: %s", status,
                              code != NULL ? code : "error", msg);
        } else {
            /* Not the API's error shape (a proxy page?): its first line. */
            char first[160];
            snprintf(first, sizeof first, "%s", text);
            first[strcspn(first, "\r\n")] = '\0';
            rc = rs_error_set(e, status == 404 ? RS_ENOENT : RS_EPROTO, "%d http_error: %s", status,
                              first[0] != '\0' ? first : "(no message)");
        }
        cli_sanitize(e->msg);
        cJSON_Delete(j);
        if (raw != NULL && j != NULL) {
            *raw = text;
            text = NULL;
        }
        free(text);
        return rc;
    }
    if (j == NULL) {
        free(text);
        return rs_error_set(e, RS_EPROTO, "%s %s: the reply is not JSON", method, path);
    }
    *doc = j;
    if (raw != NULL) {
        *raw = text;
    } else {
        free(text);
    }
    return RS_OK;
}

int cli_fail(const cli_ctx *c, const rs_error *e, const char *raw)
{
    fprintf(c->err, "rushes: %s\n", rs_error_text(e));
    if (c->json) {
        if (raw != NULL) {
            fprintf(c->out, "%s\n", raw);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON *err = cJSON_AddObjectToObject(o, "error");
            cJSON_AddStringToObject(err, "code",
                                    e->code == RS_ENET || e->code == RS_ETIMEDOUT ? "unreachable"
                                                                                  : "client");
            cJSON_AddStringToObject(err, "message", rs_error_text(e));
            char *s = cJSON_PrintUnformatted(o);
            if (s != NULL) {
                fprintf(c->out, "%s\n", s);
            }
            free(s);
            cJSON_Delete(o);
        }
    }
    return CLI_EXIT_FAIL;
}

/* Prints the raw API body as the --json document. */
static void print_raw(const cli_ctx *c, const char *raw)
{
    size_t n = strlen(raw);
    fprintf(c->out, "%s%s", raw, n > 0 && raw[n - 1] == '\n' ? "" : "\n");
}

static void print_json(const cli_ctx *c, const cJSON *doc)
{
    char *s = cJSON_Print(doc);
    if (s != NULL) {
        fprintf(c->out, "%s\n", s);
    }
    free(s);
}

static int usage_error(const cli_ctx *c, const char *cmd, const char *msg)
{
    fprintf(c->err, "rushes: %s (see: rushes %s%s--help)\n", msg, cmd != NULL ? cmd : "",
            cmd != NULL ? " " : "");
    return CLI_EXIT_USAGE;
}

static int parse_id(const cli_ctx *c, const char *cmd, const char *s, int64_t *id)
{
    rs_error e;
    if (cli_parse_int("job ID", s, 1, INT64_C(9007199254740991), id, &e) != RS_OK) {
        return usage_error(c, cmd, rs_error_text(&e));
    }
    return CLI_EXIT_OK;
}

static void fmt_time(const cJSON *o, const char *key, int64_t now, char *buf, size_t len)
{
    const char *t = cli_json_str(o, key);
    if (t == NULL) {
        snprintf(buf, len, "-");
        return;
    }
    char age[32];
    cli_age_format(t, now, age, sizeof age);
    snprintf(buf, len, "%s (%s ago)", t, age);
}

/* ---- submit / ingest --------------------------------------------------- */

static int submit_kind(cli_ctx *c, const cli_args *a, const char *kind, const char *cmd,
                       const char *ingest_path)
{
    rs_error e;
    rs_error_clear(&e);
    cJSON *body = NULL;
    if (cli_submit_body(kind, a, &body, &e) != RS_OK) {
        return usage_error(c, cmd, rs_error_text(&e));
    }
    if (ingest_path != NULL) {
        cJSON *params = cJSON_GetObjectItemCaseSensitive(body, "params");
        cJSON_DeleteItemFromObjectCaseSensitive(params, "path");
        cJSON_AddStringToObject(params, "path", ingest_path);
    }
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (text == NULL) {
        fprintf(c->err, "rushes: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    cli_http_header h[1];
    size_t nh = 0;
    const char *key = cli_args_get(a, "idempotency-key");
    if (key != NULL) {
        h[nh].name = "Idempotency-Key";
        h[nh].value = key;
        nh++;
    }
    cJSON *doc = NULL;
    char *raw = NULL;
    rs_err r = cli_api_call(c, "POST", "/api/v1/jobs", h, nh, text, &doc, &raw, &e);
    free(text);
    if (r != RS_OK) {
        int rc = cli_fail(c, &e, raw);
        free(raw);
        return rc;
    }
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(doc, "job");
    int64_t id = (int64_t)cli_json_num(job, "id", 0);
    int rc = CLI_EXIT_OK;
    if (id <= 0) {
        fprintf(c->err, "rushes: the reply to POST /api/v1/jobs has no job id\n");
        rc = CLI_EXIT_FAIL;
    } else if (!cli_args_has(a, "wait")) {
        if (c->json) {
            print_raw(c, raw);
        } else {
            fprintf(c->out, "%lld\n", (long long)id);
        }
    } else {
        if (!c->json && !c->tty) {
            fprintf(c->out, "%lld\n", (long long)id);
        }
        cJSON *final = NULL;
        rc = cli_watch(c, &id, 1, CLI_WATCH_INTERVAL_MS, &final);
        if (c->json && cJSON_GetArraySize(final) == 1) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "job", cJSON_DetachItemFromArray(final, 0));
            print_json(c, o);
            cJSON_Delete(o);
        }
        cJSON_Delete(final);
    }
    cJSON_Delete(doc);
    free(raw);
    return rc;
}

static int cmd_submit(cli_ctx *c, const cli_args *a)
{
    if (strcmp(a->pos[0], "removal") == 0) {
        return cli_removal_submit(c, a); /* two jobs: train, then infer (cli/models.c) */
    }
    return submit_kind(c, a, a->pos[0], "submit", NULL);
}

static int cmd_ingest(cli_ctx *c, const cli_args *a)
{
    /* The daemon resolves paths on its own host: send an absolute one. A
     * pattern ("shot.%04d.png") does not exist as a file, so fall back to
     * prefixing the working folder. */
    const char *path = a->pos[0];
    char abs[PATH_MAX];
    if (realpath(path, abs) == NULL) {
        if (path[0] == '/') {
            snprintf(abs, sizeof abs, "%s", path);
        } else {
            char cwd[PATH_MAX];
            if (getcwd(cwd, sizeof cwd) == NULL) {
                return usage_error(c, "ingest", "cannot resolve PATH: no working folder");
            }
            const char *rel = strncmp(path, "./", 2) == 0 ? path + 2 : path;
            int n = snprintf(abs, sizeof abs, "%s/%s", cwd, rel);
            if (n < 0 || (size_t)n >= sizeof abs) {
                return usage_error(c, "ingest", "PATH is too long");
            }
        }
    }
    return submit_kind(c, a, "ingest", "ingest", abs);
}

/* ---- ls / show --------------------------------------------------------- */

static const cli_opt_spec ls_opts[] = {
    {"state", CLI_OPT_VALUE},
    {"project", CLI_OPT_VALUE},
    {"limit", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

static int cmd_ls(cli_ctx *c, const cli_args *a)
{
    char path[2048] = "/api/v1/jobs";
    rs_error e;
    rs_error_clear(&e);
    const char *limit = cli_args_get(a, "limit");
    if (limit != NULL) {
        int64_t n;
        if (cli_parse_int("--limit", limit, 1, 1000, &n, &e) != RS_OK) {
            return usage_error(c, "ls", rs_error_text(&e));
        }
    }
    query_add(path, sizeof path, "state", cli_args_get(a, "state"));
    query_add(path, sizeof path, "project", cli_args_get(a, "project"));
    query_add(path, sizeof path, "limit", limit);
    cJSON *doc = NULL;
    char *raw = NULL;
    if (cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
        int rc = cli_fail(c, &e, raw);
        free(raw);
        return rc;
    }
    if (c->json) {
        print_raw(c, raw);
    } else {
        static const char *const hdr[] = {"ID",       "PROJECT", "KIND", "STATE",
                                          "PROGRESS", "AGE",     "ERROR"};
        cli_table *t = NULL;
        if (cli_table_create(7, hdr, &t) == RS_OK) {
            int64_t now = rs_clock_wall_ms();
            const cJSON *job;
            cJSON_ArrayForEach(job, cJSON_GetObjectItemCaseSensitive(doc, "jobs"))
            {
                char id[32], prog[48], age[32], err[96];
                snprintf(id, sizeof id, "%lld", (long long)cli_json_num(job, "id", 0));
                snprintf(prog, sizeof prog, "%d%% %lld/%lld",
                         cli_percent(cli_json_num(job, "progress", 0)),
                         (long long)cli_json_num(job, "tasks_done", 0),
                         (long long)cli_json_num(job, "tasks_total", 0));
                cli_age_format(cli_json_str(job, "created_at"), now, age, sizeof age);
                const char *je = cli_json_str(job, "error");
                snprintf(err, sizeof err, "%s", je != NULL ? je : "");
                cli_truncate(err, 60);
                const char *row[] = {id,
                                     cli_json_str(job, "project"),
                                     cli_json_str(job, "kind"),
                                     cli_json_str(job, "state"),
                                     prog,
                                     age,
                                     err};
                cli_table_add(t, row);
            }
            cli_table_print(t, c->out);
            cli_table_destroy(t);
        }
    }
    cJSON_Delete(doc);
    free(raw);
    return CLI_EXIT_OK;
}

static void print_value_line(const cli_ctx *c, const char *label, const cJSON *v)
{
    if (v == NULL || cJSON_IsNull(v)) {
        fprintf(c->out, "%-12s -\n", label);
        return;
    }
    char *s = cJSON_PrintUnformatted(v);
    if (s != NULL) {
        cli_sanitize(s);
        fprintf(c->out, "%-12s %s\n", label, s);
    }
    free(s);
}

static void show_tasks(const cli_ctx *c, const cJSON *tasks, int64_t now)
{
    static const char *const thdr[] = {"TASK",     "INDEX",  "STATE", "PROGRESS",
                                       "ATTEMPTS", "WORKER", "ERROR"};
    static const char *const ahdr[] = {"ATTEMPT", "TASK", "WORKER", "STATE",
                                       "STARTED", "TOOK", "EXIT",   "ERROR"};
    cli_table *t = NULL;
    cli_table *at = NULL;
    if (cli_table_create(7, thdr, &t) != RS_OK || cli_table_create(8, ahdr, &at) != RS_OK) {
        cli_table_destroy(t);
        return;
    }
    size_t nattempts = 0;
    const cJSON *task;
    cJSON_ArrayForEach(task, tasks)
    {
        char id[32], idx[32], prog[16], used[32];
        long long tid = (long long)cli_json_num(task, "id", 0);
        snprintf(id, sizeof id, "%lld", tid);
        snprintf(idx, sizeof idx, "%lld", (long long)cli_json_num(task, "index", 0));
        snprintf(prog, sizeof prog, "%d%%", cli_percent(cli_json_num(task, "progress", 0)));
        snprintf(used, sizeof used, "%lld", (long long)cli_json_num(task, "attempts_used", 0));
        const cJSON *attempts = cJSON_GetObjectItemCaseSensitive(task, "attempts");
        const char *worker = NULL;
        const cJSON *att;
        cJSON_ArrayForEach(att, attempts)
        {
            worker = cli_json_str(att, "worker");
            char aid[32], took[32], exitbuf[32];
            snprintf(aid, sizeof aid, "%lld", (long long)cli_json_num(att, "id", 0));
            int64_t t0, t1;
            took[0] = '\0';
            if (cli_time_parse(cli_json_str(att, "started_at"), &t0)) {
                if (!cli_time_parse(cli_json_str(att, "finished_at"), &t1)) {
                    t1 = now;
                }
                cli_duration_format(t1 - t0, took, sizeof took);
            }
            exitbuf[0] = '\0';
            if (!cli_json_is_null_or_missing(att, "signal") &&
                cli_json_num(att, "signal", 0) != 0) {
                snprintf(exitbuf, sizeof exitbuf, "sig %lld",
                         (long long)cli_json_num(att, "signal", 0));
            } else if (!cli_json_is_null_or_missing(att, "exit_code")) {
                snprintf(exitbuf, sizeof exitbuf, "%lld",
                         (long long)cli_json_num(att, "exit_code", 0));
            }
            char aerr[96];
            const char *ae = cli_json_str(att, "error");
            snprintf(aerr, sizeof aerr, "%s", ae != NULL ? ae : "");
            cli_truncate(aerr, 60);
            const char *arow[] = {
                aid,  id,      worker, cli_json_str(att, "state"), cli_json_str(att, "started_at"),
                took, exitbuf, aerr};
            cli_table_add(at, arow);
            nattempts++;
        }
        char terr[96];
        const char *te = cli_json_str(task, "error");
        snprintf(terr, sizeof terr, "%s", te != NULL ? te : "");
        cli_truncate(terr, 60);
        const char *row[] = {id, idx, cli_json_str(task, "state"), prog, used, worker, terr};
        cli_table_add(t, row);
    }
    fprintf(c->out, "\ntasks\n");
    cli_table_print(t, c->out);
    if (nattempts > 0) {
        fprintf(c->out, "\nattempts\n");
        cli_table_print(at, c->out);
    }
    cli_table_destroy(t);
    cli_table_destroy(at);
}

static void print_clips_table(const cli_ctx *c, const cJSON *clips)
{
    static const char *const hdr[] = {"ID",     "JOB", "NAME",  "RESOLUTION",
                                      "FRAMES", "FPS", "CODEC", "HASH"};
    cli_table *t = NULL;
    if (cli_table_create(8, hdr, &t) != RS_OK) {
        return;
    }
    const cJSON *clip;
    cJSON_ArrayForEach(clip, clips)
    {
        char id[32], job[32], res[32], frames[32], fps[32], codec[32];
        snprintf(id, sizeof id, "%lld", (long long)cli_json_num(clip, "id", 0));
        snprintf(job, sizeof job, "%lld", (long long)cli_json_num(clip, "job_id", 0));
        cli_clip_fields(clip, res, frames, fps, codec, 32);
        const char *name = cli_json_str(clip, "name");
        if (name == NULL) {
            name = cli_json_str(clip, "path");
        }
        const char *row[] = {id, job, name, res, frames, fps, codec, cli_json_str(clip, "hash")};
        cli_table_add(t, row);
    }
    cli_table_print(t, c->out);
    cli_table_destroy(t);
}

static int cmd_show(cli_ctx *c, const cli_args *a)
{
    int64_t id;
    if (parse_id(c, "show", a->pos[0], &id) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    char path[64];
    snprintf(path, sizeof path, "/api/v1/jobs/%lld", (long long)id);
    rs_error e;
    rs_error_clear(&e);
    cJSON *doc = NULL;
    char *raw = NULL;
    if (cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
        int rc = cli_fail(c, &e, raw);
        free(raw);
        return rc;
    }
    if (c->json) {
        print_raw(c, raw);
        cJSON_Delete(doc);
        free(raw);
        return CLI_EXIT_OK;
    }
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(doc, "job");
    int64_t now = rs_clock_wall_ms();
    char buf[512];
    fprintf(c->out, "job %lld\n", (long long)cli_json_num(job, "id", 0));
    const char *kind = cli_json_str(job, "kind");
    const char *project = cli_json_str(job, "project");
    const char *pool = cli_json_str(job, "pool");
    fprintf(c->out, "%-12s %s\n", "kind", kind != NULL ? kind : "-");
    fprintf(c->out, "%-12s %s\n", "project", project != NULL ? project : "-");
    const char *state = cli_json_str(job, "state");
    fprintf(c->out, "%-12s %s %d%% (%lld/%lld tasks)\n", "state", state != NULL ? state : "-",
            cli_percent(cli_json_num(job, "progress", 0)),
            (long long)cli_json_num(job, "tasks_done", 0),
            (long long)cli_json_num(job, "tasks_total", 0));
    fprintf(c->out, "%-12s %lld\n", "priority", (long long)cli_json_num(job, "priority", 0));
    fprintf(c->out, "%-12s %lld\n", "max attempts",
            (long long)cli_json_num(job, "max_attempts", 0));
    fprintf(c->out, "%-12s %s\n", "pool", pool != NULL && pool[0] != '\0' ? pool : "-");
    print_value_line(c, "depends on", cJSON_GetObjectItemCaseSensitive(job, "depends_on"));
    print_value_line(c, "idempotency", cJSON_GetObjectItemCaseSensitive(job, "idempotency_key"));
    fmt_time(job, "created_at", now, buf, sizeof buf);
    fprintf(c->out, "%-12s %s\n", "created", buf);
    fmt_time(job, "started_at", now, buf, sizeof buf);
    fprintf(c->out, "%-12s %s\n", "started", buf);
    fmt_time(job, "finished_at", now, buf, sizeof buf);
    fprintf(c->out, "%-12s %s\n", "finished", buf);
    print_value_line(c, "params", cJSON_GetObjectItemCaseSensitive(job, "params"));
    print_value_line(c, "result", cJSON_GetObjectItemCaseSensitive(job, "result"));
    const char *err = cli_json_str(job, "error");
    if (err != NULL) {
        snprintf(buf, sizeof buf, "%s", err);
        cli_sanitize(buf);
        fprintf(c->out, "%-12s %s\n", "error", buf);
    }
    show_tasks(c, cJSON_GetObjectItemCaseSensitive(job, "tasks"), now);
    const cJSON *clips = cJSON_GetObjectItemCaseSensitive(job, "clips");
    if (cJSON_GetArraySize(clips) > 0) {
        fprintf(c->out, "\nclips\n");
        print_clips_table(c, clips);
    }
    cJSON_Delete(doc);
    free(raw);
    return CLI_EXIT_OK;
}

/* ---- watch ------------------------------------------------------------- */

static const cli_opt_spec watch_opts[] = {
    {"interval-ms", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

static int cmd_watch(cli_ctx *c, const cli_args *a)
{
    rs_error e;
    rs_error_clear(&e);
    int64_t interval = CLI_WATCH_INTERVAL_MS;
    const char *iv = cli_args_get(a, "interval-ms");
    if (iv != NULL && cli_parse_int("--interval-ms", iv, 10, 60000, &interval, &e) != RS_OK) {
        return usage_error(c, "watch", rs_error_text(&e));
    }
    int64_t *ids = calloc((size_t)(a->npos > 0 ? a->npos : 1000), sizeof *ids);
    if (ids == NULL) {
        fprintf(c->err, "rushes: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    size_t n = 0;
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < a->npos; i++) {
        if (parse_id(c, "watch", a->pos[i], &ids[n]) != CLI_EXIT_OK) {
            free(ids);
            return CLI_EXIT_USAGE;
        }
        n++;
    }
    if (a->npos == 0) {
        /* Every unfinished job, oldest first so the list reads in order. */
        static const char *const states[] = {"queued", "running"};
        for (int s = 0; s < 2; s++) {
            char path[128];
            snprintf(path, sizeof path, "/api/v1/jobs?state=%s&limit=1000", states[s]);
            cJSON *doc = NULL;
            char *raw = NULL;
            if (cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
                rc = cli_fail(c, &e, raw);
                free(raw);
                free(ids);
                return rc;
            }
            free(raw);
            const cJSON *job;
            cJSON_ArrayForEach(job, cJSON_GetObjectItemCaseSensitive(doc, "jobs"))
            {
                int64_t id = (int64_t)cli_json_num(job, "id", 0);
                bool seen = false;
                for (size_t k = 0; k < n; k++) {
                    seen = seen || ids[k] == id;
                }
                if (id > 0 && !seen && n < 1000) {
                    ids[n++] = id;
                }
            }
            cJSON_Delete(doc);
        }
        for (size_t i = 1; i < n; i++) {
            for (size_t k = i; k > 0 && ids[k - 1] > ids[k]; k--) {
                int64_t tmp = ids[k];
                ids[k] = ids[k - 1];
                ids[k - 1] = tmp;
            }
        }
        if (n == 0) {
            if (c->json) {
                fprintf(c->out, "{\"jobs\":[]}\n");
            } else {
                fprintf(c->out, "no unfinished jobs\n");
            }
            free(ids);
            return CLI_EXIT_OK;
        }
    }
    cJSON *final = NULL;
    rc = cli_watch(c, ids, n, (int)interval, c->json ? &final : NULL);
    if (c->json && final != NULL) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "jobs", final);
        print_json(c, o);
        cJSON_Delete(o);
    }
    free(ids);
    return rc;
}

/* ---- logs -------------------------------------------------------------- */

static const cli_opt_spec logs_opts[] = {
    {"follow", CLI_OPT_FLAG},
    {"limit", CLI_OPT_VALUE},
    {"interval-ms", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

static void log_line_text(const cJSON *line, char *buf, size_t len)
{
    char t[40];
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(line, "t");
    if (cJSON_IsString(tv)) {
        snprintf(t, sizeof t, "%s", tv->valuestring);
    } else if (cJSON_IsNumber(tv)) {
        rs_clock_iso8601((int64_t)tv->valuedouble, t, sizeof t);
    } else {
        snprintf(t, sizeof t, "-");
    }
    const char *text = cli_json_str(line, "text");
    snprintf(buf, len, "%s task %lld attempt %lld: %s", t, (long long)cli_json_num(line, "task", 0),
             (long long)cli_json_num(line, "attempt", 0), text != NULL ? text : "");
    cli_sanitize(buf);
}

static int cmd_logs(cli_ctx *c, const cli_args *a)
{
    int64_t id;
    if (parse_id(c, "logs", a->pos[0], &id) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    rs_error e;
    rs_error_clear(&e);
    int64_t limit = 1000;
    int64_t interval = LOG_POLL_MS;
    const char *v = cli_args_get(a, "limit");
    if (v != NULL && cli_parse_int("--limit", v, 1, 10000, &limit, &e) != RS_OK) {
        return usage_error(c, "logs", rs_error_text(&e));
    }
    v = cli_args_get(a, "interval-ms");
    if (v != NULL && cli_parse_int("--interval-ms", v, 10, 60000, &interval, &e) != RS_OK) {
        return usage_error(c, "logs", rs_error_text(&e));
    }
    bool follow = cli_args_has(a, "follow");
    char path[128];
    snprintf(path, sizeof path, "/api/v1/jobs/%lld/log?limit=%lld", (long long)id,
             (long long)limit);
    char jpath[64];
    snprintf(jpath, sizeof jpath, "/api/v1/jobs/%lld", (long long)id);
    /* The last line printed, as its full text; the next poll prints what
     * comes after it (or everything, if it scrolled out of the window). */
    char last[2048] = "";
    int rc = CLI_EXIT_OK;
    for (;;) {
        bool finished = true;
        if (follow) {
            /* State first: a job seen finished before its log is read
             * cannot log anything after that read. */
            cJSON *jd = NULL;
            if (cli_api_call(c, "GET", jpath, NULL, 0, NULL, &jd, NULL, &e) != RS_OK) {
                return cli_fail(c, &e, NULL);
            }
            finished = cli_state_finished(
                cli_json_str(cJSON_GetObjectItemCaseSensitive(jd, "job"), "state"));
            cJSON_Delete(jd);
        }
        cJSON *doc = NULL;
        char *raw = NULL;
        if (cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
            rc = cli_fail(c, &e, raw);
            free(raw);
            return rc;
        }
        const cJSON *lines = cJSON_GetObjectItemCaseSensitive(doc, "lines");
        if (c->json && !follow) {
            print_raw(c, raw);
        } else {
            int n = cJSON_GetArraySize(lines);
            int start = 0;
            if (last[0] != '\0') {
                for (int i = n - 1; i >= 0; i--) {
                    char buf[2048];
                    log_line_text(cJSON_GetArrayItem(lines, i), buf, sizeof buf);
                    if (strcmp(buf, last) == 0) {
                        start = i + 1;
                        break;
                    }
                }
            }
            for (int i = start; i < n; i++) {
                const cJSON *line = cJSON_GetArrayItem(lines, i);
                char buf[2048];
                log_line_text(line, buf, sizeof buf);
                if (c->json) {
                    char *s = cJSON_PrintUnformatted(line);
                    if (s != NULL) {
                        fprintf(c->out, "%s\n", s);
                    }
                    free(s);
                } else {
                    fprintf(c->out, "%s\n", buf);
                }
                snprintf(last, sizeof last, "%s", buf);
            }
            fflush(c->out);
        }
        cJSON_Delete(doc);
        free(raw);
        if (!follow || finished) {
            break;
        }
        struct timespec ts = {.tv_sec = interval / 1000,
                              .tv_nsec = (long)(interval % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rc;
}

/* ---- cancel / retry ---------------------------------------------------- */

static int job_action(cli_ctx *c, const cli_args *a, const char *cmd)
{
    int64_t id;
    if (parse_id(c, cmd, a->pos[0], &id) != CLI_EXIT_OK) {
        return CLI_EXIT_USAGE;
    }
    char path[96];
    snprintf(path, sizeof path, "/api/v1/jobs/%lld/%s", (long long)id, cmd);
    rs_error e;
    rs_error_clear(&e);
    cJSON *doc = NULL;
    char *raw = NULL;
    if (cli_api_call(c, "POST", path, NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
        int rc = cli_fail(c, &e, raw);
        free(raw);
        return rc;
    }
    if (c->json) {
        print_raw(c, raw);
    } else {
        const char *state = cli_json_str(cJSON_GetObjectItemCaseSensitive(doc, "job"), "state");
        fprintf(c->out, "job %lld %s\n", (long long)id, state != NULL ? state : "?");
    }
    cJSON_Delete(doc);
    free(raw);
    return CLI_EXIT_OK;
}

static int cmd_cancel(cli_ctx *c, const cli_args *a)
{
    return job_action(c, a, "cancel");
}

static int cmd_retry(cli_ctx *c, const cli_args *a)
{
    return job_action(c, a, "retry");
}

/* ---- workers / clips --------------------------------------------------- */

static void join_list(const cJSON *arr, char *buf, size_t len)
{
    buf[0] = '\0';
    size_t off = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        char one[128];
        if (cJSON_IsString(it)) {
            snprintf(one, sizeof one, "%s", it->valuestring);
        } else if (cJSON_IsNumber(it)) {
            snprintf(one, sizeof one, "%lld", (long long)it->valuedouble);
        } else if (cli_json_str(it, "name") != NULL) {
            snprintf(one, sizeof one, "%s", cli_json_str(it, "name"));
        } else {
            snprintf(one, sizeof one, "?");
        }
        int n = snprintf(buf + off, len - off, "%s%s", off > 0 ? "," : "", one);
        if (n < 0 || (size_t)n >= len - off) {
            cli_truncate(buf, len > 4 ? len - 1 : 0);
            return;
        }
        off += (size_t)n;
    }
}

static int cmd_workers(cli_ctx *c, const cli_args *a)
{
    rs_error e;
    rs_error_clear(&e);
    cJSON *doc = NULL;
    char *raw = NULL;
    if (cli_api_call(c, "GET", "/api/v1/workers", NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
        int rc = cli_fail(c, &e, raw);
        free(raw);
        return rc;
    }
    if (c->json) {
        print_raw(c, raw);
    } else {
        static const char *const hdr[] = {"ID",        "NAME",    "POOL",   "STATE",
                                          "HEARTBEAT", "DEVICES", "RUNNING"};
        cli_table *t = NULL;
        if (cli_table_create(7, hdr, &t) == RS_OK) {
            const cJSON *w;
            cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(doc, "workers"))
            {
                char id[32], hb[32], devs[256], running[256];
                snprintf(id, sizeof id, "%lld", (long long)cli_json_num(w, "id", 0));
                double age = cli_json_num(w, "heartbeat_age_ms", -1);
                if (age >= 0) {
                    cli_duration_format((int64_t)age, hb, sizeof hb);
                } else {
                    snprintf(hb, sizeof hb, "-");
                }
                join_list(cJSON_GetObjectItemCaseSensitive(w, "devices"), devs, sizeof devs);
                join_list(cJSON_GetObjectItemCaseSensitive(w, "running"), running, sizeof running);
                const char *row[] = {id,
                                     cli_json_str(w, "name"),
                                     cli_json_str(w, "pool"),
                                     cli_json_str(w, "state"),
                                     hb,
                                     devs,
                                     running};
                cli_table_add(t, row);
            }
            cli_table_print(t, c->out);
            cli_table_destroy(t);
        }
    }
    cJSON_Delete(doc);
    free(raw);
    return CLI_EXIT_OK;
}

static const cli_opt_spec clips_opts[] = {
    {"project", CLI_OPT_VALUE},
    {"job", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

static int cmd_clips(cli_ctx *c, const cli_args *a)
{
    rs_error e;
    rs_error_clear(&e);
    const char *job = cli_args_get(a, "job");
    if (job != NULL) {
        int64_t id;
        if (cli_parse_int("--job", job, 1, INT64_C(9007199254740991), &id, &e) != RS_OK) {
            return usage_error(c, "clips", rs_error_text(&e));
        }
    }
    char path[1024] = "/api/v1/clips";
    query_add(path, sizeof path, "project", cli_args_get(a, "project"));
    query_add(path, sizeof path, "job", job);
    cJSON *doc = NULL;
    char *raw = NULL;
    if (cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
        int rc = cli_fail(c, &e, raw);
        free(raw);
        return rc;
    }
    if (c->json) {
        print_raw(c, raw);
    } else {
        print_clips_table(c, cJSON_GetObjectItemCaseSensitive(doc, "clips"));
    }
    cJSON_Delete(doc);
    free(raw);
    return CLI_EXIT_OK;
}

/* ---- mhl verify -------------------------------------------------------- */

static const cli_opt_spec mhl_opts[] = {
    {"root", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

static int cmd_mhl(cli_ctx *c, const cli_args *a)
{
    if (strcmp(a->pos[0], "verify") != 0) {
        return usage_error(c, "mhl", "unknown mhl subcommand (only 'verify')");
    }
    if (a->npos != 2) {
        return usage_error(c, "mhl", "usage: rushes mhl verify MHL_FILE --root DIR");
    }
    const char *root = cli_args_get(a, "root");
    if (root == NULL || root[0] == '\0') {
        return usage_error(c, "mhl", "--root is required");
    }
#ifdef RUSHES_CLI_HAVE_MHL_VERIFY
    return cli_mhl_verify(c, a->pos[1], root);
#else
    /* Built without the ingest module's mhl_verify (see cli/CMakeLists.txt). */
    fprintf(c->err, "rushes: mhl verify: not built\n");
    return CLI_EXIT_USAGE;
#endif
}

/* ---- dispatch ---------------------------------------------------------- */

static const command commands[] = {
    {"submit", cli_submit_opts, cmd_submit, 1, 1,
     "submit KIND --project P [--param key=value ...] [--params JSON | --params-file FILE]\n"
     "         [--priority N] [--depends-on ID[,ID]] [--max-attempts N] [--pool NAME]\n"
     "         [--min-memory-mb N] [--idempotency-key K] [--wait]\n"
     "         [--window 'M H DOM MON DOW' --window-hours N|--window-min N [--tz ZONE]]\n"
     "         submit removal --project P --param frames=F --param masks=M --param output=O\n"
     "         [--param steps=N] [--param from=MODEL]  (a train job + an infer job)"},
    {"ingest", cli_submit_opts, cmd_ingest, 1, 1, "ingest PATH --project P [submit options]"},
    {"ls", ls_opts, cmd_ls, 0, 0, "ls [--state S] [--project P] [--limit N]"},
    {"show", NULL, cmd_show, 1, 1, "show ID"},
    {"watch", watch_opts, cmd_watch, 0, -1, "watch [ID ...] [--interval-ms N]"},
    {"logs", logs_opts, cmd_logs, 1, 1, "logs ID [--follow] [--limit N] [--interval-ms N]"},
    {"cancel", NULL, cmd_cancel, 1, 1, "cancel ID"},
    {"retry", NULL, cmd_retry, 1, 1, "retry ID"},
    {"workers", NULL, cmd_workers, 0, 0, "workers"},
    {"clips", clips_opts, cmd_clips, 0, 0, "clips [--project P] [--job ID]"},
    {"models", cli_models_opts, cli_cmd_models, 0, 1, "models [ID] [--project P]"},
    {"mhl", mhl_opts, cmd_mhl, 1, 2, "mhl verify MHL_FILE --root DIR"},
    {"probe", NULL, cli_cmd_probe, 1, -1, "probe FILE|PATTERN ... (local; shot.%04d.exr, shot.####.dpx)"},
    {"eval", cli_eval_opts, cli_cmd_eval, 1, 1,
     "eval removal --frames DIR (--masks DIR --truth DIR | --synth-wires SEED) [--range N]\n"
     "         [--max-frames N] [--threads N] [--no-baselines] [--out DIR] (local)"},
    {"priority", NULL, cli_cmd_priority, 2, 2, "priority ID N   (job priority, -100..100)"},
    {"drain", NULL, cli_cmd_drain, 1, 1, "drain WORKER_ID"},
    {"undrain", NULL, cli_cmd_undrain, 1, 1, "undrain WORKER_ID"},
    {"limit", NULL, cli_cmd_limit, 2, 2, "limit PROJECT N   (max running tasks, 0 = none)"},
    {"token", cli_token_opts, cli_cmd_token, 1, 2,
     "token create --tenant T|'*' --role submit|operate|audit|admin [--name N] | ls | revoke ID"},
    {"schedule", cli_schedule_opts, cli_cmd_schedule, 1, 3,
     "schedule add NAME KIND --project P --cron 'M H DOM MON DOW' [--tz ZONE] [--param k=v ...]\n"
     "         | ls | rm ID"},
    {"admin", cli_admin_opts, cli_cmd_admin, 1, 1, "admin backup [--name FILE]"},
    {"consent", cli_consent_opts, cli_cmd_consent, 1, 2,
     "consent add --project P --performer NAME --kinds face,eyes,voice,body\n"
     "         (--document FILE | --document-hash H) [--use U] [--territory T] [--expires DATE]\n"
     "         | consent ls [--project P] [--performer NAME] | consent revoke ID [--reason R]"},
    {"audit", cli_audit_opts, cli_cmd_audit, 1, 1,
     "audit JOB|CLIP|OUTPUT [--project P] [--pubkey KEY] [--masks DIR --export FILE] [--threads N]"},
    {"ledger", cli_ledger_opts, cli_cmd_ledger, 1, 2,
     "ledger export --project P [--out FILE] | ledger pubkey --project P\n"
     "         | ledger verify FILE --pubkey KEY (offline)"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void print_usage(FILE *f)
{
    fprintf(f, "usage: rushes [--server URL] [--json] [--timeout-ms N] COMMAND [ARGS]\n\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        fprintf(f, "  %s\n", commands[i].usage);
    }
    fprintf(f,
            "\n--server defaults to $RUSHES_SERVER, else %s.\n"
            "--json prints the API's JSON (one document) for scripts.\n"
            "Exit status: 0 ok, 1 server/network/job failure, 2 usage error.\n",
            DEFAULT_SERVER);
}

/* Applies global options found in a; returns CLI_EXIT_OK or a usage exit. */
static int apply_globals(cli_ctx *c, const cli_args *a)
{
    const char *server = cli_args_get(a, "server");
    if (server != NULL) {
        if (server[0] == '\0') {
            return usage_error(c, NULL, "--server needs a URL");
        }
        cli_http_url_normalise(server, c->url, sizeof c->url);
    }
    if (cli_args_has(a, "json")) {
        c->json = true;
    }
    const char *t = cli_args_get(a, "timeout-ms");
    if (t != NULL) {
        int64_t ms;
        rs_error e;
        if (cli_parse_int("--timeout-ms", t, 1, 3600000, &ms, &e) != RS_OK) {
            return usage_error(c, NULL, rs_error_text(&e));
        }
        c->server.timeout_ms = (int)ms;
    }
    return CLI_EXIT_OK;
}

int cli_run(int argc, char **argv, FILE *out, FILE *err)
{
    cli_ctx c;
    memset(&c, 0, sizeof c);
    c.out = out;
    c.err = err;
    const char *env = getenv("RUSHES_SERVER");
    cli_http_url_normalise(env != NULL && env[0] != '\0' ? env : DEFAULT_SERVER, c.url,
                           sizeof c.url);
    c.server.url = c.url;
    c.server.token = getenv("RUSHES_TOKEN");
    int fd = fileno(out);
    const char *term = getenv("TERM");
    c.tty = fd >= 0 && isatty(fd) && (term == NULL || strcmp(term, "dumb") != 0);
    c.width = 80;
    struct winsize ws;
    if (c.tty && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        c.width = ws.ws_col;
    }

    /* Global options before the command; the command is the first word
     * that is neither an option nor a global option's value. */
    int i = 1;
    while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "-") != 0) {
        const char *arg = argv[i];
        if (strcmp(arg, "--version") == 0) {
            fprintf(out, "rushes %s\n", RUSHES_VERSION);
            return CLI_EXIT_OK;
        }
        if (strcmp(arg, "--server") == 0 || strcmp(arg, "--timeout-ms") == 0) {
            i += 2;
        } else {
            i++;
        }
    }
    rs_error e;
    rs_error_clear(&e);
    cli_args g;
    if (cli_args_parse((i < argc ? i : argc) - 1, argv + 1, NULL, &g, &e) != RS_OK) {
        return usage_error(&c, NULL, rs_error_text(&e));
    }
    int rc = apply_globals(&c, &g);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (i >= argc) {
        if (cli_args_has(&g, "help")) {
            print_usage(out);
            return CLI_EXIT_OK;
        }
        print_usage(err);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[i];
    if (strcmp(name, "help") == 0) {
        print_usage(out);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "version") == 0) {
        fprintf(out, "rushes %s\n", RUSHES_VERSION);
        return CLI_EXIT_OK;
    }
    const command *cmd = NULL;
    for (size_t k = 0; k < NCOMMANDS; k++) {
        if (strcmp(commands[k].name, name) == 0) {
            cmd = &commands[k];
        }
    }
    if (cmd == NULL) {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown command '%.64s'", name);
        return usage_error(&c, NULL, msg);
    }
    /* cli_args is large; keep it off the stack of a deep call chain. */
    cli_args *a = malloc(sizeof *a);
    if (a == NULL) {
        fprintf(err, "rushes: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    if (cli_args_parse(argc - i - 1, argv + i + 1, cmd->spec, a, &e) != RS_OK) {
        rc = usage_error(&c, cmd->name, rs_error_text(&e));
        goto out;
    }
    if (cli_args_has(a, "help")) {
        fprintf(out, "usage: rushes %s\n", cmd->usage);
        rc = CLI_EXIT_OK;
        goto out;
    }
    rc = apply_globals(&c, a);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    if (a->npos < cmd->min_pos || (cmd->max_pos >= 0 && a->npos > cmd->max_pos)) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: usage: rushes %s",
                 a->npos < cmd->min_pos ? "missing argument" : "too many arguments", cmd->usage);
        /* one line: the usage of submit spans several */
        msg[strcspn(msg, "\n")] = '\0';
        rc = usage_error(&c, cmd->name, msg);
        goto out;
    }
    rc = cmd->run(&c, a);

out:
    free(a);
    return rc;
}
