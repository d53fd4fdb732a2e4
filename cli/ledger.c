/*
 * ledger.c: `rushes consent`, `rushes audit` and `rushes ledger`.
 *
 * The audit runs here, on the client, not on the farm: the client fetches
 * the signed export (or reads one from a file), verifies it against a
 * public key the user holds, fetches each mask by hash (or reads a folder)
 * and re-reads the source and output files itself. So the farm is never
 * trusted to grade its own work; it only hands over data the client checks.
 */
#include <ctype.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli_ledger.h"
#include "fs.h"
#include "ledger.h"
#include "output.h"

const cli_opt_spec cli_consent_opts[] = {
    {"project", CLI_OPT_VALUE},  {"performer", CLI_OPT_VALUE},     {"kinds", CLI_OPT_VALUE},
    {"use", CLI_OPT_VALUE},      {"territory", CLI_OPT_VALUE},     {"expires", CLI_OPT_VALUE},
    {"document", CLI_OPT_VALUE}, {"document-hash", CLI_OPT_VALUE}, {"reason", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

const cli_opt_spec cli_audit_opts[] = {
    {"project", CLI_OPT_VALUE}, {"pubkey", CLI_OPT_VALUE},  {"masks", CLI_OPT_VALUE},
    {"export", CLI_OPT_VALUE},  {"threads", CLI_OPT_VALUE}, {NULL, CLI_OPT_FLAG},
};

const cli_opt_spec cli_ledger_opts[] = {
    {"project", CLI_OPT_VALUE},
    {"pubkey", CLI_OPT_VALUE},
    {"out", CLI_OPT_VALUE},
    {NULL, CLI_OPT_FLAG},
};

static int usage(const cli_ctx *c, const char *cmd, const char *msg)
{
    fprintf(c->err, "rushes: %s (see: rushes %s --help)\n", msg, cmd);
    return CLI_EXIT_USAGE;
}

static void print_json(const cli_ctx *c, const cJSON *v)
{
    char *s = cJSON_Print(v);
    if (s != NULL) {
        fprintf(c->out, "%s\n", s);
        free(s);
    }
}

/* GET of a non-JSON body (export, mask hex). */
static rs_err get_text(const cli_ctx *c, const char *path, char **text, size_t *len, rs_error *e)
{
    int status = 0;
    char *body = NULL;
    size_t n = 0;
    rs_err rc = cli_http_request(&c->server, "GET", path, NULL, 0, NULL, &status, &body, &n, e);
    if (rc != RS_OK) {
        return rc;
    }
    if (status < 200 || status > 299) {
        cJSON *j = cJSON_Parse(body);
        const char *msg = cli_json_str(cJSON_GetObjectItemCaseSensitive(j, "error"), "message");
        rc = rs_error_set(e, status == 404 ? RS_ENOENT : RS_EPROTO, "%d: %s", status,
                          msg != NULL ? msg : "error");
        cli_sanitize(e->msg);
        cJSON_Delete(j);
        free(body);
        return rc;
    }
    *text = body;
    *len = n;
    return RS_OK;
}

/* ---- consent ------------------------------------------------------------- */

/* "2027-06-30" (UTC midnight) or milliseconds since the epoch. */
static bool parse_expiry(const char *s, int64_t *ms)
{
    int y, m, d;
    char tail;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) == 3) {
        struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};
        time_t t = timegm(&tm);
        if (t == (time_t)-1 || m < 1 || m > 12 || d < 1 || d > 31) {
            return false;
        }
        *ms = (int64_t)t * 1000;
        return true;
    }
    return cli_parse_int("--expires", s, 1, INT64_C(9007199254740991), ms, NULL) == RS_OK;
}

static int consent_add(cli_ctx *c, const cli_args *a)
{
    const char *project = cli_args_get(a, "project");
    const char *performer = cli_args_get(a, "performer");
    const char *kinds = cli_args_get(a, "kinds");
    if (project == NULL || performer == NULL || kinds == NULL) {
        return usage(c, "consent", "consent add needs --project, --performer and --kinds");
    }
    char dochash[LEDGER_HEX + 16];
    const char *doc = cli_args_get(a, "document");
    const char *dh = cli_args_get(a, "document-hash");
    rs_error e;
    rs_error_clear(&e);
    if (doc != NULL) {
        char h[LEDGER_HEX];
        if (ledger_hash_file(doc, h, &e) != RS_OK) {
            fprintf(c->err, "rushes: --document: %s\n", rs_error_text(&e));
            return CLI_EXIT_FAIL;
        }
        snprintf(dochash, sizeof dochash, "sha256:%s", h);
        dh = dochash;
    }
    if (dh == NULL) {
        return usage(c, "consent",
                     "consent add needs --document FILE (the signed consent) or --document-hash");
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "project", project);
    cJSON_AddStringToObject(body, "performer", performer);
    cJSON *k = cJSON_AddArrayToObject(body, "kinds");
    char kbuf[256];
    snprintf(kbuf, sizeof kbuf, "%s", kinds);
    char *save = NULL;
    for (char *t = strtok_r(kbuf, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        cJSON_AddItemToArray(k, cJSON_CreateString(t));
    }
    if (cli_args_get(a, "use") != NULL) {
        cJSON_AddStringToObject(body, "use", cli_args_get(a, "use"));
    }
    if (cli_args_get(a, "territory") != NULL) {
        cJSON_AddStringToObject(body, "territory", cli_args_get(a, "territory"));
    }
    const char *exp = cli_args_get(a, "expires");
    if (exp != NULL) {
        int64_t ms = 0;
        if (!parse_expiry(exp, &ms)) {
            cJSON_Delete(body);
            return usage(c, "consent", "--expires: YYYY-MM-DD or milliseconds since the epoch");
        }
        cJSON_AddNumberToObject(body, "expires_at", (double)ms);
    }
    cJSON_AddStringToObject(body, "document_hash", dh);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    cJSON *doc_out = NULL;
    char *raw = NULL;
    rs_err rc =
        cli_api_call(c, "POST", "/api/v1/ledger/consents", NULL, 0, text, &doc_out, &raw, &e);
    free(text);
    if (rc != RS_OK) {
        int x = cli_fail(c, &e, raw);
        free(raw);
        return x;
    }
    free(raw);
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(doc_out, "consent");
    if (c->json) {
        print_json(c, doc_out);
    } else {
        fprintf(c->out, "consent %.0f: %s, project %s\n", cli_json_num(cs, "id", 0),
                cli_json_str(cs, "performer"), cli_json_str(cs, "project"));
    }
    cJSON_Delete(doc_out);
    return CLI_EXIT_OK;
}

static int consent_ls(cli_ctx *c, const cli_args *a)
{
    char path[1024] = "/api/v1/ledger/consents";
    char esc[512];
    const char *sep = "?";
    if (cli_args_get(a, "project") != NULL) {
        cli_url_escape(cli_args_get(a, "project"), esc, sizeof esc);
        snprintf(path + strlen(path), sizeof path - strlen(path), "%sproject=%s", sep, esc);
        sep = "&";
    }
    if (cli_args_get(a, "performer") != NULL) {
        cli_url_escape(cli_args_get(a, "performer"), esc, sizeof esc);
        snprintf(path + strlen(path), sizeof path - strlen(path), "%sperformer=%s", sep, esc);
    }
    cJSON *doc = NULL;
    char *raw = NULL;
    rs_error e;
    rs_error_clear(&e);
    if (cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, &raw, &e) != RS_OK) {
        int x = cli_fail(c, &e, raw);
        free(raw);
        return x;
    }
    free(raw);
    if (c->json) {
        print_json(c, doc);
        cJSON_Delete(doc);
        return CLI_EXIT_OK;
    }
    fprintf(c->out, "%-6s %-24s %-16s %-20s %-8s %s\n", "ID", "PERFORMER", "PROJECT", "KINDS",
            "STATE", "EXPIRES");
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "consents"))
    {
        char kinds[64] = "";
        const cJSON *k = NULL;
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(it, "kinds"))
        {
            if (cJSON_IsString(k)) {
                strncat(kinds, kinds[0] != '\0' ? "," : "", sizeof kinds - strlen(kinds) - 1);
                strncat(kinds, k->valuestring, sizeof kinds - strlen(kinds) - 1);
            }
        }
        char expires[32] = "never";
        double ex = cli_json_num(it, "expires_at", -1);
        if (ex >= 0) {
            time_t t = (time_t)(ex / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(expires, sizeof expires, "%Y-%m-%d", &tm);
        }
        char perf[64], proj[64];
        const char *pv = cli_json_str(it, "performer");
        const char *jv = cli_json_str(it, "project");
        snprintf(perf, sizeof perf, "%s", pv != NULL ? pv : "-");
        snprintf(proj, sizeof proj, "%s", jv != NULL ? jv : "-");
        cli_sanitize(perf);
        cli_sanitize(proj);
        const char *state = cli_json_str(it, "state");
        fprintf(c->out, "%-6.0f %-24s %-16s %-20s %-8s %s\n", cli_json_num(it, "id", 0), perf, proj,
                kinds, state != NULL ? state : "-", expires);
    }
    cJSON_Delete(doc);
    return CLI_EXIT_OK;
}

static int consent_revoke(cli_ctx *c, const cli_args *a)
{
    if (a->npos != 2) {
        return usage(c, "consent", "usage: rushes consent revoke ID [--reason TEXT]");
    }
    int64_t id = 0;
    rs_error e;
    rs_error_clear(&e);
    if (cli_parse_int("consent ID", a->pos[1], 1, INT64_C(9007199254740991), &id, &e) != RS_OK) {
        return usage(c, "consent", rs_error_text(&e));
    }
    cJSON *body = cJSON_CreateObject();
    const char *reason = cli_args_get(a, "reason");
    cJSON_AddStringToObject(body, "reason", reason != NULL ? reason : "");
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/ledger/consents/%" PRId64 "/revoke", id);
    cJSON *doc = NULL;
    char *raw = NULL;
    rs_err rc = cli_api_call(c, "POST", path, NULL, 0, text, &doc, &raw, &e);
    free(text);
    if (rc != RS_OK) {
        int x = cli_fail(c, &e, raw);
        free(raw);
        return x;
    }
    free(raw);
    if (c->json) {
        print_json(c, doc);
    } else {
        fprintf(c->out, "consent %" PRId64 " revoked\n", id);
    }
    cJSON_Delete(doc);
    return CLI_EXIT_OK;
}

int cli_cmd_consent(cli_ctx *c, const cli_args *a)
{
    const char *sub = a->pos[0];
    if (strcmp(sub, "add") == 0 && a->npos == 1) {
        return consent_add(c, a);
    }
    if (strcmp(sub, "ls") == 0 && a->npos == 1) {
        return consent_ls(c, a);
    }
    if (strcmp(sub, "revoke") == 0) {
        return consent_revoke(c, a);
    }
    return usage(c, "consent", "usage: rushes consent add|ls|revoke");
}

/* ---- ledger ---------------------------------------------------------------- */

static rs_err fetch_export(const cli_ctx *c, const char *project, char **text, size_t *len,
                           rs_error *e)
{
    char esc[512], path[700];
    cli_url_escape(project, esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/ledger/export?project=%s", esc);
    return get_text(c, path, text, len, e);
}

static rs_err fetch_pubkey(const cli_ctx *c, const char *project, unsigned char pk[32], rs_error *e)
{
    char esc[512], path[700];
    cli_url_escape(project, esc, sizeof esc);
    snprintf(path, sizeof path, "/api/v1/ledger/pubkey?project=%s", esc);
    cJSON *doc = NULL;
    rs_err rc = cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, NULL, e);
    if (rc != RS_OK) {
        return rc;
    }
    const char *hex = cli_json_str(doc, "pubkey");
    rc = hex != NULL ? ledger_pubkey_parse(hex, pk, e)
                     : rs_error_set(e, RS_EPROTO, "pubkey: missing in the reply");
    cJSON_Delete(doc);
    return rc;
}

static int ledger_verify_cmd(cli_ctx *c, const cli_args *a)
{
    if (a->npos != 2 || cli_args_get(a, "pubkey") == NULL) {
        return usage(c, "ledger", "usage: rushes ledger verify FILE --pubkey KEY|KEYFILE");
    }
    rs_error e;
    rs_error_clear(&e);
    unsigned char pk[32];
    if (ledger_pubkey_load(cli_args_get(a, "pubkey"), pk, &e) != RS_OK) {
        return usage(c, "ledger", rs_error_text(&e));
    }
    char *text = NULL;
    size_t len = 0;
    if (rs_fs_read_all(a->pos[1], (size_t)1 << 32, &text, &len, &e) != RS_OK) {
        fprintf(c->err, "rushes: ledger verify: %s\n", rs_error_text(&e));
        return CLI_EXIT_FAIL;
    }
    ledger_verify_info info;
    rs_err rc = ledger_verify(text, len, pk, &info, NULL, &e);
    free(text);
    if (c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", rc == RS_OK);
        cJSON_AddStringToObject(o, "project", info.project);
        cJSON_AddNumberToObject(o, "events", (double)info.events);
        cJSON_AddStringToObject(o, "head", info.head);
        if (rc != RS_OK) {
            cJSON_AddStringToObject(o, "error", rs_error_text(&e));
        }
        print_json(c, o);
        cJSON_Delete(o);
    }
    if (rc != RS_OK) {
        fprintf(c->err, "rushes: ledger verify: %s: %s\n", a->pos[1], rs_error_text(&e));
        return CLI_EXIT_FAIL;
    }
    if (!c->json) {
        fprintf(c->out,
                "ok: %s: project %s, %" PRId64 " events, chain and signatures valid, head %s\n",
                a->pos[1], info.project, info.events, info.head);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_ledger(cli_ctx *c, const cli_args *a)
{
    const char *sub = a->pos[0];
    if (strcmp(sub, "verify") == 0) {
        return ledger_verify_cmd(c, a);
    }
    const char *project = cli_args_get(a, "project");
    if ((strcmp(sub, "export") != 0 && strcmp(sub, "pubkey") != 0) || a->npos != 1) {
        return usage(c, "ledger",
                     "usage: rushes ledger export|pubkey --project P | "
                     "ledger verify FILE --pubkey KEY");
    }
    if (project == NULL) {
        return usage(c, "ledger", "--project is required");
    }
    rs_error e;
    rs_error_clear(&e);
    if (strcmp(sub, "pubkey") == 0) {
        unsigned char pk[32];
        if (fetch_pubkey(c, project, pk, &e) != RS_OK) {
            return cli_fail(c, &e, NULL);
        }
        char hex[LEDGER_HEX];
        ledger_hex(pk, 32, hex);
        fprintf(c->out, "%s\n", hex);
        return CLI_EXIT_OK;
    }
    char *text = NULL;
    size_t len = 0;
    if (fetch_export(c, project, &text, &len, &e) != RS_OK) {
        return cli_fail(c, &e, NULL);
    }
    const char *out = cli_args_get(a, "out");
    rs_err rc = RS_OK;
    if (out != NULL) {
        rc = rs_fs_write_atomic(out, text, len, &e);
    } else {
        fwrite(text, 1, len, c->out);
    }
    free(text);
    if (rc != RS_OK) {
        fprintf(c->err, "rushes: ledger export: %s\n", rs_error_text(&e));
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

/* ---- audit ----------------------------------------------------------------- */

static rs_err mask_fetch(void *ud, const char *hash, uint8_t **buf, size_t *len, rs_error *e)
{
    const cli_ctx *c = ud;
    char path[256];
    snprintf(path, sizeof path, "/api/v1/ledger/masks/%s", hash);
    char *hex = NULL;
    size_t n = 0;
    rs_err rc = get_text(c, path, &hex, &n, e);
    if (rc != RS_OK) {
        return rc;
    }
    while (n > 0 && isspace((unsigned char)hex[n - 1])) {
        n--;
    }
    uint8_t *b = malloc(n / 2 + 1);
    if (b == NULL || n % 2 != 0) {
        free(b);
        free(hex);
        return rs_error_set(e, RS_EPROTO, "mask %.16s...: reply is not hex", hash);
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v = 0;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(b);
            free(hex);
            return rs_error_set(e, RS_EPROTO, "mask %.16s...: reply is not hex", hash);
        }
        b[i] = (uint8_t)v;
    }
    free(hex);
    *buf = b;
    *len = n / 2;
    return RS_OK;
}

static bool all_digits(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

static void print_report(const cli_ctx *c, const char *subject, const cJSON *r)
{
    const cJSON *chain = cJSON_GetObjectItemCaseSensitive(r, "chain");
    bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
    fprintf(c->out, "audit %s (project %s): %s\n", subject, cli_json_str(chain, "project"),
            ok ? "PASS" : "FAIL");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(chain, "ok"))) {
        fprintf(c->out, "  chain: ok, %.0f events signed, head %.16s...\n",
                cli_json_num(chain, "events", 0), cli_json_str(chain, "head"));
    } else {
        fprintf(c->out, "  chain: BROKEN: %s\n", cli_json_str(chain, "error"));
    }
    fprintf(c->out,
            "  frames: %.0f   changed pixels: %.0f   outside masks: %.0f   coverage: %.2f %%\n",
            cli_json_num(r, "frames", 0), cli_json_num(r, "changed_pixels", 0),
            cli_json_num(r, "outside_pixels", 0),
            /* floor: one stray pixel in millions must not read 100.00 % */
            floor(10000.0 * cli_json_num(r, "coverage", 0)) / 100.0);
    if (cli_json_num(r, "audio_files", 0) > 0) {
        fprintf(c->out,
                "  audio files: %.0f   changed sample frames: %.0f   outside ranges: %.0f\n",
                cli_json_num(r, "audio_files", 0), cli_json_num(r, "changed_samples", 0),
                cli_json_num(r, "outside_samples", 0));
    }
    const cJSON *f = NULL;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(r, "failures"))
    {
        char what[700];
        const char *w = cli_json_str(f, "what");
        snprintf(what, sizeof what, "%s", w != NULL ? w : "");
        cli_sanitize(what);
        fprintf(c->out, "  FAIL %s frame %.0f: %s\n", cli_json_str(f, "file"),
                cli_json_num(f, "frame", -1), what);
    }
}

int cli_cmd_audit(cli_ctx *c, const cli_args *a)
{
    const char *subject = a->pos[0];
    const char *project = cli_args_get(a, "project");
    const char *exportf = cli_args_get(a, "export");
    const char *pubkey = cli_args_get(a, "pubkey");
    rs_error e;
    rs_error_clear(&e);
    /* The audit allocates and frees two frame-sized buffers per frame; keep
     * them in the heap rather than paying fresh-mmap page faults each time
     * (about a fifth of the CPU time at 1080p). This process only audits. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    ledger_audit_sel sel = {0};
    bool by_job = all_digits(subject);
    if (by_job) {
        int64_t id = 0;
        if (cli_parse_int("job ID", subject, 1, INT64_C(9007199254740991), &id, &e) != RS_OK) {
            return usage(c, "audit", rs_error_text(&e));
        }
        sel.job_id = id;
    }
    int64_t threads = 2;
    if (cli_args_get(a, "threads") != NULL &&
        cli_parse_int("--threads", cli_args_get(a, "threads"), 1, 64, &threads, &e) != RS_OK) {
        return usage(c, "audit", rs_error_text(&e));
    }
    char projbuf[129] = "";
    if (project == NULL && by_job && exportf == NULL) {
        char path[64];
        snprintf(path, sizeof path, "/api/v1/jobs/%" PRId64, sel.job_id);
        cJSON *doc = NULL;
        if (cli_api_call(c, "GET", path, NULL, 0, NULL, &doc, NULL, &e) != RS_OK) {
            return cli_fail(c, &e, NULL);
        }
        const char *p = cli_json_str(cJSON_GetObjectItemCaseSensitive(doc, "job"), "project");
        snprintf(projbuf, sizeof projbuf, "%s", p != NULL ? p : "");
        cJSON_Delete(doc);
        project = projbuf;
    }
    if (exportf == NULL && (project == NULL || project[0] == '\0')) {
        return usage(c, "audit", "--project is required (or --export FILE offline)");
    }
    if (exportf != NULL && (pubkey == NULL || cli_args_get(a, "masks") == NULL)) {
        return usage(c, "audit", "offline audit (--export) needs --pubkey and --masks");
    }
    unsigned char pk[32];
    if (pubkey != NULL) {
        if (ledger_pubkey_load(pubkey, pk, &e) != RS_OK) {
            return usage(c, "audit", rs_error_text(&e));
        }
    } else {
        if (fetch_pubkey(c, project, pk, &e) != RS_OK) {
            return cli_fail(c, &e, NULL);
        }
        fprintf(c->err, "rushes: audit: public key taken from the server; pass --pubkey to check "
                        "against a key you hold\n");
    }
    char *text = NULL;
    size_t len = 0;
    rs_err rc = exportf != NULL ? rs_fs_read_all(exportf, (size_t)1 << 32, &text, &len, &e)
                                : fetch_export(c, project, &text, &len, &e);
    if (rc != RS_OK) {
        return cli_fail(c, &e, NULL);
    }
    ledger_audit_opts o = {
        .masks_dir = cli_args_get(a, "masks"),
        .fetch = mask_fetch,
        .fetch_ud = c,
        .threads = (int)threads,
    };
    cJSON *rep = NULL;
    if (!by_job) {
        sel.output_path = subject;
    }
    rc = ledger_audit(text, len, pk, &sel, &o, &rep, &e);
    if (rc == RS_OK && !by_job && cli_json_num(rep, "frames", 0) == 0 &&
        cli_json_num(rep, "audio_files", 0) == 0) {
        /* Not an output: audit it as a source clip. */
        cJSON_Delete(rep);
        rep = NULL;
        sel.output_path = NULL;
        sel.source_path = subject;
        rc = ledger_audit(text, len, pk, &sel, &o, &rep, &e);
    }
    free(text);
    if (rc != RS_OK) {
        fprintf(c->err, "rushes: audit: %s\n", rs_error_text(&e));
        return CLI_EXIT_FAIL;
    }
    bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rep, "ok"));
    if (cli_json_num(rep, "frames", 0) == 0 && cli_json_num(rep, "audio_files", 0) == 0 && ok) {
        fprintf(c->err, "rushes: audit: the ledger records no alteration of %s\n", subject);
    }
    if (c->json) {
        print_json(c, rep);
    } else {
        print_report(c, subject, rep);
    }
    if (exportf == NULL) {
        /* Record that an audit happened, and its outcome, in the chain. */
        cJSON *b = cJSON_CreateObject();
        cJSON_AddStringToObject(b, "project", project);
        cJSON_AddStringToObject(b, "subject", subject);
        cJSON_AddBoolToObject(b, "ok", ok);
        cJSON_AddNumberToObject(b, "frames", cli_json_num(rep, "frames", 0));
        cJSON_AddNumberToObject(
            b, "failures", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(rep, "failures")));
        cJSON_AddNumberToObject(b, "coverage", cli_json_num(rep, "coverage", 0));
        const char *head = cli_json_str(cJSON_GetObjectItemCaseSensitive(rep, "chain"), "head");
        cJSON_AddStringToObject(b, "head", head != NULL ? head : "");
        char *bt = cJSON_PrintUnformatted(b);
        cJSON_Delete(b);
        cJSON *doc = NULL;
        rs_error re;
        if (cli_api_call(c, "POST", "/api/v1/ledger/audit", NULL, 0, bt, &doc, NULL, &re) !=
            RS_OK) {
            fprintf(c->err, "rushes: audit: could not record the audit: %s\n", rs_error_text(&re));
        }
        cJSON_Delete(doc);
        free(bt);
    }
    cJSON_Delete(rep);
    return ok ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
