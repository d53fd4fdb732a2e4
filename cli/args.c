/*
 * args.c: option parsing, strict integers, --param values, and the submit
 * body. Kept free of I/O (except reading --params-file) so every usage
 * error can be checked by a unit test.
 */
#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"

#define PARAMS_FILE_CAP (1024 * 1024) /* the API refuses bodies over 1 MiB anyway */

const cli_opt_spec cli_global_opts[] = {
    {"server", CLI_OPT_VALUE}, {"json", CLI_OPT_FLAG}, {"timeout-ms", CLI_OPT_VALUE},
    {"help", CLI_OPT_FLAG},    {NULL, CLI_OPT_FLAG},
};

const cli_opt_spec cli_submit_opts[] = {
    {"project", CLI_OPT_VALUE},       {"param", CLI_OPT_MULTI},
    {"params", CLI_OPT_VALUE},        {"params-file", CLI_OPT_VALUE},
    {"priority", CLI_OPT_VALUE},      {"depends-on", CLI_OPT_MULTI},
    {"max-attempts", CLI_OPT_VALUE},  {"pool", CLI_OPT_VALUE},
    {"min-memory-mb", CLI_OPT_VALUE}, {"idempotency-key", CLI_OPT_VALUE},
    {"window", CLI_OPT_VALUE},        {"window-hours", CLI_OPT_VALUE},
    {"window-min", CLI_OPT_VALUE},    {"tz", CLI_OPT_VALUE},
    {"wait", CLI_OPT_FLAG},           {NULL, CLI_OPT_FLAG},
};

static const cli_opt_spec *find_spec(const cli_opt_spec *spec, const char *name, size_t len)
{
    for (const cli_opt_spec *s = spec; s != NULL && s->name != NULL; s++) {
        if (strlen(s->name) == len && strncmp(s->name, name, len) == 0) {
            return s;
        }
    }
    return NULL;
}

rs_err cli_args_parse(int argc, char *const *argv, const cli_opt_spec *spec, cli_args *out,
                      rs_error *e)
{
    memset(out, 0, sizeof *out);
    bool opts_done = false;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (opts_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (out->npos == CLI_ARGS_MAX) {
                return rs_error_set(e, RS_EINVAL, "too many arguments");
            }
            out->pos[out->npos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            opts_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0) {
            arg = "--help";
        }
        if (arg[1] != '-') {
            return rs_error_set(e, RS_EINVAL, "unknown option %s (options are --long)", arg);
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const cli_opt_spec *s = find_spec(spec, name, nlen);
        if (s == NULL) {
            s = find_spec(cli_global_opts, name, nlen);
        }
        if (s == NULL) {
            return rs_error_set(e, RS_EINVAL, "unknown option --%.*s", (int)nlen, name);
        }
        const char *value = "";
        if (s->kind == CLI_OPT_FLAG) {
            if (eq != NULL) {
                return rs_error_set(e, RS_EINVAL, "--%s takes no value", s->name);
            }
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return rs_error_set(e, RS_EINVAL, "--%s needs a value", s->name);
        }
        if (out->nopts == CLI_ARGS_MAX) {
            return rs_error_set(e, RS_EINVAL, "too many options");
        }
        out->opts[out->nopts].name = s->name;
        out->opts[out->nopts].value = value;
        out->nopts++;
    }
    return RS_OK;
}

const char *cli_args_get(const cli_args *a, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < a->nopts; i++) {
        if (strcmp(a->opts[i].name, name) == 0) {
            v = a->opts[i].value;
        }
    }
    return v;
}

bool cli_args_has(const cli_args *a, const char *name)
{
    return cli_args_get(a, name) != NULL;
}

rs_err cli_parse_int(const char *name, const char *s, int64_t min, int64_t max, int64_t *out,
                     rs_error *e)
{
    char *end = NULL;
    errno = 0;
    long long v = s != NULL ? strtoll(s, &end, 10) : 0;
    if (s == NULL || s[0] == '\0' || errno != 0 || *end != '\0' || v < min || v > max) {
        return rs_error_set(e, RS_EINVAL, "%s: '%s' is not an integer in %lld..%lld", name,
                            s != NULL ? s : "", (long long)min, (long long)max);
    }
    *out = v;
    return RS_OK;
}

rs_err cli_param_parse(cJSON *params, const char *kv, rs_error *e)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL) {
        return rs_error_set(e, RS_EINVAL, "--param '%s': expected key=value", kv);
    }
    if (eq == kv) {
        return rs_error_set(e, RS_EINVAL, "--param '%s': empty key", kv);
    }
    char key[256];
    size_t klen = (size_t)(eq - kv);
    if (klen >= sizeof key) {
        return rs_error_set(e, RS_EINVAL, "--param: key longer than %zu bytes", sizeof key - 1);
    }
    memcpy(key, kv, klen);
    key[klen] = '\0';
    const char *value = eq + 1;
    /* JSON if the whole value parses as JSON; anything else is a string,
     * so paths and names need no quoting. */
    cJSON *v = value[0] != '\0' ? cJSON_ParseWithOpts(value, NULL, 1) : NULL;
    if (v == NULL) {
        v = cJSON_CreateString(value);
        if (v == NULL) {
            return rs_error_set(e, RS_ENOMEM, "out of memory");
        }
    }
    cJSON_DeleteItemFromObjectCaseSensitive(params, key);
    cJSON_AddItemToObject(params, key, v);
    return RS_OK;
}

static rs_err add_depends(cJSON *deps, const char *list, rs_error *e)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char one[32];
        if (len == 0 || len >= sizeof one) {
            return rs_error_set(e, RS_EINVAL, "--depends-on '%s': expected ID[,ID...]", list);
        }
        memcpy(one, p, len);
        one[len] = '\0';
        int64_t id;
        rs_err rc = cli_parse_int("--depends-on", one, 1, INT64_C(9007199254740991), &id, e);
        if (rc != RS_OK) {
            return rc;
        }
        cJSON_AddItemToArray(deps, cJSON_CreateNumber((double)id));
        if (comma == NULL) {
            return RS_OK;
        }
        p = comma + 1;
    }
}

/*
 * --window CRON with --window-hours N or --window-min N, and --tz ZONE,
 * become the job's "window" object. The daemon checks the cron expression
 * and the zone (it owns the zoneinfo lookup); here only the shape and the
 * duration's range, so a typo fails before anything is sent. Under
 * `schedule add` (which has --cron) --tz is the schedule's zone and also
 * the window's.
 */
static rs_err add_window(cJSON *body, const cli_args *a, rs_error *e)
{
    const char *cron = cli_args_get(a, "window");
    const char *hours = cli_args_get(a, "window-hours");
    const char *mins = cli_args_get(a, "window-min");
    const char *tz = cli_args_get(a, "tz");
    if (cron == NULL) {
        if (hours != NULL || mins != NULL) {
            return rs_error_set(e, RS_EINVAL, "--window-%s needs --window 'M H DOM MON DOW'",
                                hours != NULL ? "hours" : "min");
        }
        if (tz != NULL && !cli_args_has(a, "cron")) {
            return rs_error_set(e, RS_EINVAL, "--tz needs --window 'M H DOM MON DOW'");
        }
        return RS_OK;
    }
    if (cron[0] == '\0') {
        return rs_error_set(e, RS_EINVAL, "--window: empty cron expression");
    }
    if ((hours == NULL) == (mins == NULL)) {
        return rs_error_set(e, RS_EINVAL,
                            "--window needs one of --window-hours N or --window-min N");
    }
    int64_t dur = 0;
    rs_err rc = hours != NULL ? cli_parse_int("--window-hours", hours, 1, 168, &dur, e)
                              : cli_parse_int("--window-min", mins, 1, 10080, &dur, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (hours != NULL) {
        dur *= 60;
    }
    if (tz != NULL && tz[0] == '\0') {
        return rs_error_set(e, RS_EINVAL, "--tz: empty time zone");
    }
    cJSON *w = cJSON_AddObjectToObject(body, "window");
    if (w == NULL || cJSON_AddStringToObject(w, "cron", cron) == NULL ||
        cJSON_AddNumberToObject(w, "duration_min", (double)dur) == NULL ||
        (tz != NULL && cJSON_AddStringToObject(w, "tz", tz) == NULL)) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    return RS_OK;
}

rs_err cli_submit_body(const char *kind, const cli_args *a, cJSON **out, rs_error *e)
{
    rs_err rc = RS_OK;
    cJSON *body = NULL;
    cJSON *params = NULL;
    char *file = NULL;
    const char *project = cli_args_get(a, "project");
    const char *pjson = cli_args_get(a, "params");
    const char *pfile = cli_args_get(a, "params-file");

    if (kind == NULL || kind[0] == '\0') {
        return rs_error_set(e, RS_EINVAL, "missing job KIND");
    }
    if (project == NULL || project[0] == '\0') {
        return rs_error_set(e, RS_EINVAL, "--project is required");
    }
    if (pjson != NULL && pfile != NULL) {
        return rs_error_set(e, RS_EINVAL, "--params and --params-file cannot be used together");
    }
    if (pfile != NULL) {
        size_t n = 0;
        rc = rs_fs_read_all(pfile, PARAMS_FILE_CAP, &file, &n, e);
        if (rc != RS_OK) {
            char why[sizeof e->msg];
            snprintf(why, sizeof why, "%s", e != NULL ? rs_error_text(e) : rs_strerror(rc));
            rc = rs_error_set(e, RS_EINVAL, "--params-file %s: %s", pfile, why);
            goto out;
        }
        pjson = file;
    }
    if (pjson != NULL) {
        params = cJSON_Parse(pjson);
        if (!cJSON_IsObject(params)) {
            rc = rs_error_set(e, RS_EINVAL, "%s: not a JSON object",
                              pfile != NULL ? pfile : "--params");
            goto out;
        }
    } else {
        params = cJSON_CreateObject();
    }
    body = cJSON_CreateObject();
    if (params == NULL || body == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    cJSON *deps = cJSON_CreateArray();
    cJSON_AddStringToObject(body, "project", project);
    cJSON_AddStringToObject(body, "kind", kind);
    for (int i = 0; i < a->nopts; i++) {
        if (strcmp(a->opts[i].name, "param") == 0) {
            rc = cli_param_parse(params, a->opts[i].value, e);
        } else if (strcmp(a->opts[i].name, "depends-on") == 0) {
            rc = add_depends(deps, a->opts[i].value, e);
        }
        if (rc != RS_OK) {
            cJSON_Delete(deps);
            goto out;
        }
    }
    cJSON_AddItemToObject(body, "params", params);
    params = NULL;
    if (cJSON_GetArraySize(deps) > 0) {
        cJSON_AddItemToObject(body, "depends_on", deps);
    } else {
        cJSON_Delete(deps);
    }
    const char *v = cli_args_get(a, "priority");
    int64_t n;
    if (v != NULL) {
        rc = cli_parse_int("--priority", v, -100, 100, &n, e);
        if (rc != RS_OK) {
            goto out;
        }
        cJSON_AddNumberToObject(body, "priority", (double)n);
    }
    v = cli_args_get(a, "max-attempts");
    if (v != NULL) {
        rc = cli_parse_int("--max-attempts", v, 1, 20, &n, e);
        if (rc != RS_OK) {
            goto out;
        }
        cJSON_AddNumberToObject(body, "max_attempts", (double)n);
    }
    v = cli_args_get(a, "min-memory-mb");
    if (v != NULL) {
        rc = cli_parse_int("--min-memory-mb", v, 0, INT64_C(1) << 40, &n, e);
        if (rc != RS_OK) {
            goto out;
        }
        cJSON_AddNumberToObject(body, "min_memory_mb", (double)n);
    }
    v = cli_args_get(a, "pool");
    if (v != NULL) {
        cJSON_AddStringToObject(body, "pool", v);
    }
    v = cli_args_get(a, "idempotency-key");
    if (v != NULL) {
        /* It travels as a header: anything unprintable could split it. */
        bool ok = v[0] != '\0' && strlen(v) <= 128;
        for (const char *c = v; ok && *c != '\0'; c++) {
            ok = *c >= 0x20 && *c < 0x7f;
        }
        if (!ok) {
            rc = rs_error_set(e, RS_EINVAL,
                              "--idempotency-key: must be 1..128 printable characters");
            goto out;
        }
    }
    rc = add_window(body, a, e);
    if (rc != RS_OK) {
        goto out;
    }
    *out = body;
    body = NULL;

out:
    cJSON_Delete(body);
    cJSON_Delete(params);
    free(file);
    return rc;
}
