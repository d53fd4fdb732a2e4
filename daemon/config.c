/*
 * config.c: rushesd's settings from a JSON file plus overriding flags.
 *
 * Two passes over argv: the first only finds --config (so flags win no
 * matter where they stand), the second applies every other flag. Values are
 * range-checked here so the rest of the daemon can trust them.
 */
#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "fs.h"

#define CONFIG_FILE_CAP (1u << 20)

/* Raw settings before defaults and resolution. */
typedef struct raw_config {
    char *api_listen;
    char *worker_listen;
    char *db;
    char *data_dir;
    char *roots[RSD_MAX_MEDIA_ROOTS];
    size_t nroots;
    bool roots_from_flags;
    int64_t lease_ttl_ms;
    int64_t heartbeat_ms;
    int64_t backoff_ms;
    int64_t max_body;
    int auth; /* -1 unset */
    char *worker_secret;
    char *web_dir;
    char *tls_cert;
    char *tls_key;
    char *token_name;
} raw_config;

typedef struct int_setting {
    const char *name; /* flag name without "--"; file key has '_' for '-' */
    int64_t lo;
    int64_t hi;
    size_t offset; /* into raw_config */
} int_setting;

static const int_setting int_settings[] = {
    {"lease-ttl-ms", 1000, 3600000, offsetof(raw_config, lease_ttl_ms)},
    {"heartbeat-ms", 100, 600000, offsetof(raw_config, heartbeat_ms)},
    {"backoff-ms", 1, 3600000, offsetof(raw_config, backoff_ms)},
    {"max-body", 1024, 64 * 1024 * 1024, offsetof(raw_config, max_body)},
};

typedef struct str_setting {
    const char *name;
    size_t offset;
} str_setting;

static const str_setting str_settings[] = {
    {"api-listen", offsetof(raw_config, api_listen)},
    {"worker-listen", offsetof(raw_config, worker_listen)},
    {"db", offsetof(raw_config, db)},
    {"data-dir", offsetof(raw_config, data_dir)},
    {"worker-secret", offsetof(raw_config, worker_secret)},
    {"web-dir", offsetof(raw_config, web_dir)},
    {"tls-cert", offsetof(raw_config, tls_cert)},
    {"tls-key", offsetof(raw_config, tls_key)},
};

const char *config_usage(void)
{
    return "usage: rushesd [--config FILE] [options]\n"
           "  --config FILE         JSON settings (keys as below with '_' for '-')\n"
           "  --api-listen URL      REST API (default http://127.0.0.1:8640)\n"
           "  --worker-listen URL   worker socket (default tcp://127.0.0.1:8641)\n"
           "  --data-dir DIR        state folder, created if missing (required)\n"
           "  --db FILE             SQLite database (default DATA_DIR/rushes.db)\n"
           "  --media-root DIR      folder jobs may read; repeatable (replaces the file's list)\n"
           "  --lease-ttl-ms N      lease lifetime without a heartbeat (default 15000)\n"
           "  --heartbeat-ms N      interval workers heartbeat at (default 3000)\n"
           "  --backoff-ms N        base of the exponential retry backoff (default 2000)\n"
           "  --max-body N          cap on an HTTP request body in bytes (default 1048576)\n"
           "  --no-auth             serve the API without tokens (config \"auth\": false)\n"
           "  --worker-secret S     pool secret workers must present in hello\n"
           "  --web-dir DIR         dashboard files (default: installed or source web/)\n"
           "  --tls-cert FILE       certificate for a tls+tcp:// worker socket\n"
           "  --tls-key FILE        its private key\n"
           "  --create-admin-token NAME  print a new farm-wide admin token and exit\n"
           "  --help, --version\n";
}

static void raw_free(raw_config *r)
{
    free(r->api_listen);
    free(r->worker_listen);
    free(r->db);
    free(r->data_dir);
    free(r->worker_secret);
    free(r->web_dir);
    free(r->tls_cert);
    free(r->tls_key);
    free(r->token_name);
    for (size_t i = 0; i < r->nroots; i++) {
        free(r->roots[i]);
    }
    memset(r, 0, sizeof *r);
}

static rs_err set_str(char **slot, const char *v, rs_error *e)
{
    char *dup = strdup(v);
    if (dup == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    free(*slot);
    *slot = dup;
    return RS_OK;
}

static rs_err parse_int(const char *what, const char *text, int64_t lo, int64_t hi, int64_t *out,
                        rs_error *e)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (text[0] == '\0' || end == NULL || *end != '\0' || v < lo || v > hi) {
        return rs_error_set(e, RS_EINVAL, "%s: must be an integer in %lld..%lld", what,
                            (long long)lo, (long long)hi);
    }
    *out = v;
    return RS_OK;
}

static rs_err add_root(raw_config *r, const char *what, const char *v, rs_error *e)
{
    if (r->nroots >= RSD_MAX_MEDIA_ROOTS) {
        return rs_error_set(e, RS_EINVAL, "%s: at most %d media roots", what, RSD_MAX_MEDIA_ROOTS);
    }
    r->roots[r->nroots] = strdup(v);
    if (r->roots[r->nroots] == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    r->nroots++;
    return RS_OK;
}

/* "lease-ttl-ms" -> "lease_ttl_ms" */
static void key_of(const char *flag, char *out, size_t outlen)
{
    size_t i = 0;
    for (; flag[i] != '\0' && i + 1 < outlen; i++) {
        out[i] = flag[i] == '-' ? '_' : flag[i];
    }
    out[i] = '\0';
}

static rs_err apply_file_item(raw_config *r, const char *path, const cJSON *it, rs_error *e)
{
    char key[64];
    for (size_t i = 0; i < sizeof str_settings / sizeof str_settings[0]; i++) {
        key_of(str_settings[i].name, key, sizeof key);
        if (strcmp(it->string, key) == 0) {
            if (!cJSON_IsString(it) || it->valuestring[0] == '\0') {
                return rs_error_set(e, RS_EINVAL, "%s: %s: must be a non-empty string", path, key);
            }
            return set_str((char **)((char *)r + str_settings[i].offset), it->valuestring, e);
        }
    }
    for (size_t i = 0; i < sizeof int_settings / sizeof int_settings[0]; i++) {
        const int_setting *s = &int_settings[i];
        key_of(s->name, key, sizeof key);
        if (strcmp(it->string, key) == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int64_t)it->valuedouble ||
                it->valuedouble < (double)s->lo || it->valuedouble > (double)s->hi) {
                return rs_error_set(e, RS_EINVAL, "%s: %s: must be an integer in %lld..%lld", path,
                                    key, (long long)s->lo, (long long)s->hi);
            }
            *(int64_t *)((char *)r + s->offset) = (int64_t)it->valuedouble;
            return RS_OK;
        }
    }
    if (strcmp(it->string, "auth") == 0) {
        if (!cJSON_IsBool(it)) {
            return rs_error_set(e, RS_EINVAL, "%s: auth: must be true or false", path);
        }
        r->auth = cJSON_IsTrue(it) ? 1 : 0;
        return RS_OK;
    }
    if (strcmp(it->string, "media_roots") == 0) {
        if (!cJSON_IsArray(it)) {
            return rs_error_set(e, RS_EINVAL, "%s: media_roots: must be an array of strings", path);
        }
        const cJSON *v = NULL;
        cJSON_ArrayForEach(v, it)
        {
            if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
                return rs_error_set(e, RS_EINVAL, "%s: media_roots: must be an array of strings",
                                    path);
            }
            rs_err rc = add_root(r, "media_roots", v->valuestring, e);
            if (rc != RS_OK) {
                return rc;
            }
        }
        return RS_OK;
    }
    return rs_error_set(e, RS_EINVAL, "%s: unknown key \"%s\"", path, it->string);
}

static rs_err load_file(raw_config *r, const char *path, rs_error *e)
{
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    rs_err rc = rs_fs_read_all(path, CONFIG_FILE_CAP, &text, &len, e);
    if (rc != RS_OK) {
        goto out;
    }
    /* Comments are allowed in the file; cJSON_Minify strips them (and
     * whitespace) in place, leaving strings alone. */
    cJSON_Minify(text);
    root = cJSON_Parse(text);
    if (root == NULL) {
        rc = rs_error_set(e, RS_EINVAL, "%s: not valid JSON", path);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = rs_error_set(e, RS_EINVAL, "%s: must hold one JSON object", path);
        goto out;
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, root)
    {
        rc = apply_file_item(r, path, it, e);
        if (rc != RS_OK) {
            goto out;
        }
    }
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* Splits "--name=value" / "--name value"; *consumed = argv slots used. */
static rs_err flag_value(int argc, char **argv, int i, const char *name, const char **value,
                         int *consumed, rs_error *e)
{
    const char *eq = strchr(argv[i], '=');
    if (eq != NULL) {
        *value = eq + 1;
        *consumed = 1;
        return RS_OK;
    }
    if (i + 1 >= argc) {
        return rs_error_set(e, RS_EINVAL, "--%s: needs a value", name);
    }
    *value = argv[i + 1];
    *consumed = 2;
    return RS_OK;
}

/* The flag's name without "--" and "=value" into out. */
static bool flag_name(const char *arg, char *out, size_t outlen)
{
    if (strncmp(arg, "--", 2) != 0) {
        return false;
    }
    const char *s = arg + 2;
    size_t n = strcspn(s, "=");
    if (n == 0 || n >= outlen) {
        return false;
    }
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static rs_err apply_flag(raw_config *r, int argc, char **argv, int i, const char *name,
                         int *consumed, rs_error *e)
{
    if (strcmp(name, "no-auth") == 0) {
        if (strchr(argv[i], '=') != NULL) {
            return rs_error_set(e, RS_EINVAL, "--no-auth: takes no value");
        }
        r->auth = 0;
        *consumed = 1;
        return RS_OK;
    }
    bool known = strcmp(name, "config") == 0 || strcmp(name, "media-root") == 0 ||
                 strcmp(name, "create-admin-token") == 0;
    for (size_t k = 0; k < sizeof str_settings / sizeof str_settings[0]; k++) {
        known = known || strcmp(name, str_settings[k].name) == 0;
    }
    for (size_t k = 0; k < sizeof int_settings / sizeof int_settings[0]; k++) {
        known = known || strcmp(name, int_settings[k].name) == 0;
    }
    if (!known) {
        return rs_error_set(e, RS_EINVAL, "unknown option --%s", name);
    }
    const char *v = NULL;
    rs_err rc = flag_value(argc, argv, i, name, &v, consumed, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (strcmp(name, "config") == 0) {
        return RS_OK; /* handled in the first pass */
    }
    if (strcmp(name, "create-admin-token") == 0) {
        if (v[0] == '\0') {
            return rs_error_set(e, RS_EINVAL, "--create-admin-token: needs a name");
        }
        return set_str(&r->token_name, v, e);
    }
    if (strcmp(name, "media-root") == 0) {
        if (!r->roots_from_flags) {
            /* Flags replace the file's list rather than adding to it. */
            for (size_t k = 0; k < r->nroots; k++) {
                free(r->roots[k]);
            }
            r->nroots = 0;
            r->roots_from_flags = true;
        }
        if (v[0] == '\0') {
            return rs_error_set(e, RS_EINVAL, "--media-root: must not be empty");
        }
        return add_root(r, "--media-root", v, e);
    }
    for (size_t k = 0; k < sizeof str_settings / sizeof str_settings[0]; k++) {
        if (strcmp(name, str_settings[k].name) == 0) {
            if (v[0] == '\0') {
                return rs_error_set(e, RS_EINVAL, "--%s: must not be empty", name);
            }
            return set_str((char **)((char *)r + str_settings[k].offset), v, e);
        }
    }
    for (size_t k = 0; k < sizeof int_settings / sizeof int_settings[0]; k++) {
        const int_setting *s = &int_settings[k];
        if (strcmp(name, s->name) == 0) {
            char what[80];
            snprintf(what, sizeof what, "--%s", name);
            return parse_int(what, v, s->lo, s->hi, (int64_t *)((char *)r + s->offset), e);
        }
    }
    return rs_error_set(e, RS_EINVAL, "unknown option --%s", name);
}

/*
 * The dashboard folder: the configured one (must exist), else the installed
 * one beside the binary (<prefix>/bin/../share/rushes/web), else the source
 * tree's web/ for a build-tree binary, else none (not served).
 */
static rs_err find_web_dir(const char *configured, char **out, rs_error *e)
{
    char buf[PATH_MAX];
    char resolved[PATH_MAX];
    if (configured != NULL) {
        if (realpath(configured, resolved) == NULL) {
            return rs_error_set(e, RS_ENOENT, "web_dir: %s: does not exist", configured);
        }
        *out = strdup(resolved);
        return *out != NULL ? RS_OK : rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = '\0';
        char *slash = strrchr(buf, '/');
        if (slash != NULL) {
            *slash = '\0';
            char cand[PATH_MAX + 32];
            snprintf(cand, sizeof cand, "%s/../share/rushes/web/index.html", buf);
            if (realpath(cand, resolved) != NULL) {
                *strrchr(resolved, '/') = '\0';
                *out = strdup(resolved);
                return *out != NULL ? RS_OK : rs_error_set(e, RS_ENOMEM, "out of memory");
            }
        }
    }
#ifdef RUSHES_SOURCE_WEB_DIR
    if (realpath(RUSHES_SOURCE_WEB_DIR "/index.html", resolved) != NULL) {
        *strrchr(resolved, '/') = '\0';
        *out = strdup(resolved);
        return *out != NULL ? RS_OK : rs_error_set(e, RS_ENOMEM, "out of memory");
    }
#endif
    *out = NULL;
    return RS_OK;
}

static rs_err finish(raw_config *r, rsd_config *cfg, rs_error *e)
{
    rs_err rc = RS_OK;
    if (r->data_dir == NULL) {
        return rs_error_set(e, RS_EINVAL, "--data-dir (data_dir) is required");
    }
    if (r->heartbeat_ms >= r->lease_ttl_ms) {
        return rs_error_set(e, RS_EINVAL,
                            "heartbeat_ms (%lld) must be shorter than lease_ttl_ms (%lld)",
                            (long long)r->heartbeat_ms, (long long)r->lease_ttl_ms);
    }
    /* TLS for the API terminates in a proxy (deploy/): nng 1.5.2's HTTPS
     * server stalls ~44 ms per response (DESIGN.md, measured facts). */
    if (strncmp(r->api_listen, "http://", 7) != 0) {
        return rs_error_set(e, RS_EINVAL,
                            "api_listen: %s: must be an http:// URL (terminate TLS in a proxy)",
                            r->api_listen);
    }
    rc = rs_fs_mkdirs(r->data_dir, e);
    if (rc != RS_OK) {
        return rc;
    }
    char resolved[PATH_MAX];
    if (realpath(r->data_dir, resolved) == NULL) {
        return rs_error_set(e, RS_EIO, "data_dir: %s: cannot resolve", r->data_dir);
    }
    cfg->data_dir = strdup(resolved);
    if (r->db != NULL) {
        cfg->db = strdup(r->db);
    } else {
        size_t n = strlen(resolved) + sizeof "/rushes.db";
        cfg->db = malloc(n);
        if (cfg->db != NULL) {
            snprintf(cfg->db, n, "%s/rushes.db", resolved);
        }
    }
    cfg->api_listen = strdup(r->api_listen);
    cfg->worker_listen = strdup(r->worker_listen);
    if (cfg->data_dir == NULL || cfg->db == NULL || cfg->api_listen == NULL ||
        cfg->worker_listen == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < r->nroots; i++) {
        if (realpath(r->roots[i], resolved) == NULL) {
            return rs_error_set(e, RS_ENOENT, "media root %s: does not exist or cannot be resolved",
                                r->roots[i]);
        }
        cfg->media_roots[i] = strdup(resolved);
        if (cfg->media_roots[i] == NULL) {
            return rs_error_set(e, RS_ENOMEM, "out of memory");
        }
        cfg->nmedia_roots = i + 1;
    }
    cfg->lease_ttl_ms = r->lease_ttl_ms;
    cfg->heartbeat_ms = r->heartbeat_ms;
    cfg->backoff_ms = r->backoff_ms;
    cfg->max_body = (size_t)r->max_body;
    cfg->auth = r->auth != 0;
    if ((r->tls_cert == NULL) != (r->tls_key == NULL)) {
        return rs_error_set(e, RS_EINVAL, "tls_cert and tls_key: give both or neither");
    }
    if (strncmp(cfg->worker_listen, "tls+", 4) == 0 && r->tls_cert == NULL) {
        return rs_error_set(e, RS_EINVAL, "worker_listen: %s needs tls_cert and tls_key",
                            cfg->worker_listen);
    }
    char *const *strs[] = {&r->worker_secret, &r->tls_cert, &r->tls_key, &r->token_name};
    char **outs[] = {&cfg->worker_secret, &cfg->tls_cert, &cfg->tls_key, &cfg->token_name};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (*strs[i] != NULL) {
            *outs[i] = strdup(*strs[i]);
            if (*outs[i] == NULL) {
                return rs_error_set(e, RS_ENOMEM, "out of memory");
            }
        }
    }
    rc = find_web_dir(r->web_dir, &cfg->web_dir, e);
    if (rc != RS_OK) {
        return rc;
    }
    return RS_OK;
}

rs_err config_parse(int argc, char **argv, rsd_config *cfg, rsd_config_action *action, rs_error *e)
{
    raw_config r;
    memset(&r, 0, sizeof r);
    memset(cfg, 0, sizeof *cfg);
    *action = RSD_RUN;
    r.lease_ttl_ms = 15000;
    r.heartbeat_ms = 3000;
    r.backoff_ms = 2000;
    r.max_body = 1024 * 1024;
    r.auth = 1;
    rs_err rc = set_str(&r.api_listen, "http://127.0.0.1:8640", e);
    if (rc == RS_OK) {
        rc = set_str(&r.worker_listen, "tcp://127.0.0.1:8641", e);
    }
    char name[64];
    /* First pass: --help/--version win, and the file is read before flags. */
    for (int i = 1; i < argc && rc == RS_OK; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *action = RSD_HELP;
            goto out;
        }
        if (strcmp(argv[i], "--version") == 0) {
            *action = RSD_VERSION;
            goto out;
        }
    }
    for (int i = 1; i < argc && rc == RS_OK; i++) {
        if (flag_name(argv[i], name, sizeof name) && strcmp(name, "config") == 0) {
            const char *v = NULL;
            int used = 1;
            rc = flag_value(argc, argv, i, name, &v, &used, e);
            if (rc == RS_OK) {
                rc = load_file(&r, v, e);
            }
            i += used - 1;
        }
    }
    for (int i = 1; i < argc && rc == RS_OK; i++) {
        if (!flag_name(argv[i], name, sizeof name)) {
            rc = rs_error_set(e, RS_EINVAL, "unexpected argument \"%s\"", argv[i]);
            break;
        }
        int used = 1;
        rc = apply_flag(&r, argc, argv, i, name, &used, e);
        i += used - 1;
    }
    if (rc == RS_OK) {
        rc = finish(&r, cfg, e);
    }
    if (rc == RS_OK && cfg->token_name != NULL) {
        *action = RSD_CREATE_TOKEN;
        goto out_keep;
    }
out:
    raw_free(&r);
    if (rc != RS_OK || *action != RSD_RUN) {
        config_free(cfg);
    }
    return rc;
out_keep:
    raw_free(&r);
    return rc;
}

void config_free(rsd_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->api_listen);
    free(cfg->worker_listen);
    free(cfg->db);
    free(cfg->data_dir);
    free(cfg->worker_secret);
    free(cfg->web_dir);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->token_name);
    for (size_t i = 0; i < cfg->nmedia_roots; i++) {
        free(cfg->media_roots[i]);
    }
    memset(cfg, 0, sizeof *cfg);
}
