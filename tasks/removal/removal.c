/*
 * removal.c: the daemon side of the removal kinds (removal.h): parameter
 * validation, planning into tasks, and finalisation (model hand-off for
 * removal_train; ledger alterations and the contact sheet for
 * removal_infer). Planning only lists folders and reads the 24-byte PNG
 * header of each frame and mask, so size mismatches are refused at submit
 * with the frame named; everything that needs pixels is checked by the run.
 */
#include "removal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "frame.h"
#include "fs.h"
#include "hash.h"
#include "probe.h"
#include "seq.h"

#define REMOVAL_MAX_FRAMES 100000

void removal_logf(const task_io *io, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (io != NULL && io->log != NULL) {
        io->log(io->ud, line);
    }
}

void removal_model_path(const char *data_dir, const char *project, int64_t id, char *out,
                        size_t outlen)
{
    snprintf(out, outlen, "%s/models/%s/model-%lld.safetensors", data_dir, project, (long long)id);
}

void removal_train_model_path(const char *data_dir, const char *project, int64_t job_id, char *out,
                              size_t outlen)
{
    snprintf(out, outlen, "%s/removal/%s/job-%lld/model.safetensors", data_dir, project,
             (long long)job_id);
}

/* ---- sequences ---------------------------------------------------------- */

typedef struct seq_list {
    char **paths;
    int64_t *numbers;
    size_t n;
} seq_list;

static void seq_list_free(seq_list *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->paths[i]);
    }
    free(s->paths);
    free(s->numbers);
    memset(s, 0, sizeof *s);
}

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (name[0] == '.' || dot == NULL) {
        return false;
    }
    static const char *const ext[] = {".png", ".exr", ".dpx", ".tif", ".tiff"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
        if (strcasecmp(dot, ext[i]) == 0) {
            return true;
        }
    }
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Trailing digits of a file's stem, or fallback. */
static int64_t name_number(const char *path, int64_t fallback)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot == NULL) {
        return fallback;
    }
    const char *p = dot;
    while (p > base && p[-1] >= '0' && p[-1] <= '9') {
        p--;
    }
    if (p == dot || dot - p > 15) {
        return fallback;
    }
    return strtoll(p, NULL, 10);
}

static rs_err seq_push(seq_list *s, const char *path, int64_t number, rs_error *e)
{
    char **np = realloc(s->paths, (s->n + 1) * sizeof *np);
    if (np == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    s->paths = np;
    int64_t *nn = realloc(s->numbers, (s->n + 1) * sizeof *nn);
    if (nn == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    s->numbers = nn;
    s->paths[s->n] = strdup(path);
    if (s->paths[s->n] == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    s->numbers[s->n] = number;
    s->n++;
    return RS_OK;
}

/* A pattern ("shot.%04d.png", "shot.####.png") or a folder of images,
 * resolved inside the media roots, as sorted paths and frame numbers. */
static rs_err seq_resolve(const char *field, const char *spec, const task_env *env, seq_list *out,
                          rs_error *e)
{
    memset(out, 0, sizeof *out);
    char dir[PATH_MAX];
    char resolved[PATH_MAX];
    bool pattern = media_seq_is_pattern(spec);
    snprintf(dir, sizeof dir, "%s", spec);
    if (pattern) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL) {
            snprintf(dir, sizeof dir, ".");
        } else {
            *slash = '\0';
        }
    }
    rs_err rc = rs_fs_resolve_in_roots(dir, env->media_roots, env->nmedia_roots, resolved,
                                       sizeof resolved, e);
    if (rc == RS_EPERM) {
        return rs_error_set(e, RS_EPERM, "params.%s: %s is outside the configured media roots",
                            field, spec);
    }
    if (rc != RS_OK) {
        return rs_error_set(e, rc, "params.%s: %s: no such folder", field, spec);
    }
    if (pattern) {
        char pat[PATH_MAX];
        const char *base = strrchr(spec, '/');
        snprintf(pat, sizeof pat, "%s/%s", resolved, base != NULL ? base + 1 : spec);
        media_seq *ms = NULL;
        rc = media_seq_scan(pat, &ms, e);
        if (rc != RS_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", rs_error_text(e));
            return rs_error_set(e, rc, "params.%s: %s", field, why);
        }
        for (size_t i = 0; i < ms->count && rc == RS_OK; i++) {
            char p[PATH_MAX];
            rc = media_seq_path(ms, ms->frames[i], p, sizeof p, e);
            if (rc == RS_OK) {
                rc = seq_push(out, p, ms->frames[i], e);
            }
        }
        media_seq_destroy(ms);
    } else {
        struct stat st;
        if (stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode)) {
            return rs_error_set(e, RS_EINVAL,
                                "params.%s: %s: not a folder or a pattern such as "
                                "shot.%%04d.png",
                                field, spec);
        }
        DIR *d = opendir(resolved);
        if (d == NULL) {
            return rs_error_set(e, RS_EIO, "params.%s: %s: %s", field, spec, strerror(errno));
        }
        char **names = NULL;
        size_t nn = 0;
        struct dirent *de = NULL;
        while (rc == RS_OK && (de = readdir(d)) != NULL) {
            if (!is_image_name(de->d_name)) {
                continue;
            }
            if (nn >= REMOVAL_MAX_FRAMES) {
                rc = rs_error_set(e, RS_ETOOBIG, "params.%s: more than %d frames", field,
                                  REMOVAL_MAX_FRAMES);
                break;
            }
            char **nnames = realloc(names, (nn + 1) * sizeof *nnames);
            if (nnames == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "out of memory");
                break;
            }
            names = nnames;
            names[nn] = strdup(de->d_name);
            if (names[nn] == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "out of memory");
                break;
            }
            nn++;
        }
        closedir(d);
        if (names != NULL) {
            qsort(names, nn, sizeof *names, cmp_str);
        }
        for (size_t i = 0; i < nn; i++) {
            if (rc == RS_OK) {
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/%s", resolved, names[i]);
                rc = seq_push(out, p, name_number(p, (int64_t)i), e);
            }
            free(names[i]);
        }
        free(names);
    }
    if (rc == RS_OK && out->n == 0) {
        rc = rs_error_set(e, RS_ENOENT, "params.%s: %s: no image files", field, spec);
    }
    if (rc != RS_OK) {
        seq_list_free(out);
    }
    return rc;
}

/* Width and height from the image's header, whatever its format (PNG, EXR,
 * DPX, TIFF: media_probe decides by content); false if the header cannot be
 * read (the task reports that file when it loads it). */
static bool image_size(const char *path, uint32_t *w, uint32_t *h)
{
    cJSON *p = NULL;
    rs_error e;
    rs_error_clear(&e);
    if (media_probe(path, &p, &e) != RS_OK) {
        return false;
    }
    const cJSON *jw = cJSON_GetObjectItemCaseSensitive(p, "width");
    const cJSON *jh = cJSON_GetObjectItemCaseSensitive(p, "height");
    bool ok = cJSON_IsNumber(jw) && cJSON_IsNumber(jh) && jw->valuedouble >= 1 &&
              jh->valuedouble >= 1 && jw->valuedouble < 1e6 && jh->valuedouble < 1e6;
    if (ok) {
        *w = (uint32_t)jw->valuedouble;
        *h = (uint32_t)jh->valuedouble;
    }
    cJSON_Delete(p);
    return ok;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s != NULL ? s + 1 : p;
}

/* Same count, and where both are PNG the same size; errors name the frame. */
static rs_err check_pairs(const seq_list *fr, const seq_list *mk, rs_error *e)
{
    if (mk->n < fr->n) {
        return rs_error_set(
            e, RS_EINVAL, "params.masks: %zu masks for %zu frames: frame %lld (%s) has no mask",
            mk->n, fr->n, (long long)fr->numbers[mk->n], base_name(fr->paths[mk->n]));
    }
    if (mk->n > fr->n) {
        return rs_error_set(e, RS_EINVAL,
                            "params.masks: %zu masks for %zu frames: mask %s has no frame", mk->n,
                            fr->n, base_name(mk->paths[fr->n]));
    }
    uint32_t w0 = 0, h0 = 0;
    for (size_t i = 0; i < fr->n; i++) {
        uint32_t fw = 0, fh = 0, mw = 0, mh = 0;
        bool fp = image_size(fr->paths[i], &fw, &fh);
        bool mp = image_size(mk->paths[i], &mw, &mh);
        if (fp && w0 == 0) {
            w0 = fw;
            h0 = fh;
        }
        if (fp && (fw != w0 || fh != h0)) {
            return rs_error_set(e, RS_EINVAL,
                                "params.frames: frame %lld (%s) is %ux%u, the first frame is %ux%u",
                                (long long)fr->numbers[i], base_name(fr->paths[i]), fw, fh, w0, h0);
        }
        if (fp && mp && (fw != mw || fh != mh)) {
            return rs_error_set(e, RS_EINVAL,
                                "params.masks: mask %s is %ux%u but frame %lld (%s) is %ux%u",
                                base_name(mk->paths[i]), mw, mh, (long long)fr->numbers[i],
                                base_name(fr->paths[i]), fw, fh);
        }
    }
    return RS_OK;
}

/* ---- params ------------------------------------------------------------- */

static bool field_allowed(const char *name, const char *const *allowed, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(name, allowed[i]) == 0) {
            return true;
        }
    }
    return false;
}

static rs_err get_int(const cJSON *o, const char *prefix, const char *field, long lo, long hi,
                      long *out, rs_error *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (v == NULL) {
        return RS_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble ||
        v->valuedouble < lo || v->valuedouble > hi) {
        return rs_error_set(e, RS_EINVAL, "%s%s: must be an integer in %ld..%ld", prefix, field, lo,
                            hi);
    }
    *out = (long)v->valuedouble;
    return RS_OK;
}

static rs_err get_num(const cJSON *o, const char *field, double lo, double hi, double *out,
                      rs_error *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    if (v == NULL) {
        return RS_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi)) {
        return rs_error_set(e, RS_EINVAL, "params.config.%s: must be a number in %g..%g", field, lo,
                            hi);
    }
    *out = v->valuedouble;
    return RS_OK;
}

static const char *get_str(const cJSON *o, const char *field)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    return cJSON_IsString(v) && v->valuestring[0] != '\0' ? v->valuestring : NULL;
}

/* The validated config with every default filled in (what run uses). */
static rs_err config_parse(const cJSON *cfg, cJSON **out, rs_error *e)
{
    static const char *const allowed[] = {"depth", "base",       "lr",      "patch", "batch",
                                          "seed",  "ckpt_every", "feather", "chunk", "wires"};
    if (cfg != NULL && !cJSON_IsObject(cfg)) {
        return rs_error_set(e, RS_EINVAL, "params.config: must be an object");
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, cfg)
    {
        if (!field_allowed(it->string, allowed, sizeof allowed / sizeof allowed[0])) {
            return rs_error_set(e, RS_EINVAL, "params.config.%s: unknown field", it->string);
        }
    }
    long depth = 3, base = 16, patch = 48, batch = 4, seed = 1, ckpt = 25, feather = 1, chunk = 10,
         wires = 2;
    double lr = 2e-3;
    rs_err rc = get_int(cfg, "params.config.", "depth", 1, 5, &depth, e);
    if (rc == RS_OK) {
        rc = get_int(cfg, "params.config.", "base", 4, 64, &base, e);
    }
    if (rc == RS_OK) {
        rc = get_int(cfg, "params.config.", "patch", 16, 512, &patch, e);
    }
    if (rc == RS_OK) {
        rc = get_int(cfg, "params.config.", "batch", 1, 64, &batch, e);
    }
    if (rc == RS_OK) {
        rc = get_int(cfg, "params.config.", "seed", 0, 2147483647L, &seed, e);
    }
    if (rc == RS_OK) {
        rc = get_int(cfg, "params.config.", "ckpt_every", 1, 1000000, &ckpt, e);
    }
    if (rc == RS_OK) {
        rc = get_int(cfg, "params.config.", "feather", 0, 16, &feather, e);
    }
    if (rc == RS_OK) {
        rc = get_int(cfg, "params.config.", "chunk", 1, 10000, &chunk, e);
    }
    if (rc == RS_OK) {
        rc = get_int(cfg, "params.config.", "wires", 1, 16, &wires, e);
    }
    if (rc == RS_OK) {
        rc = get_num(cfg, "lr", 1e-6, 1.0, &lr, e);
    }
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *o = cJSON_CreateObject();
    if (o == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON_AddNumberToObject(o, "depth", (double)depth);
    cJSON_AddNumberToObject(o, "base", (double)base);
    cJSON_AddNumberToObject(o, "patch", (double)patch);
    cJSON_AddNumberToObject(o, "batch", (double)batch);
    cJSON_AddNumberToObject(o, "seed", (double)seed);
    cJSON_AddNumberToObject(o, "ckpt_every", (double)ckpt);
    cJSON_AddNumberToObject(o, "feather", (double)feather);
    cJSON_AddNumberToObject(o, "chunk", (double)chunk);
    cJSON_AddNumberToObject(o, "wires", (double)wires);
    cJSON_AddNumberToObject(o, "lr", lr);
    *out = o;
    return RS_OK;
}

typedef struct rparams {
    seq_list frames;
    seq_list masks;
    long steps;
    long range;
    int64_t from; /* model id, 0 = none */
    int64_t train_job;
    char output[PATH_MAX];
    cJSON *config;
} rparams;

static void rparams_free(rparams *p)
{
    seq_list_free(&p->frames);
    seq_list_free(&p->masks);
    cJSON_Delete(p->config);
    memset(p, 0, sizeof *p);
}

/* Output folder: absolute under the data dir or a media root, or relative
 * to <data_dir>/removal/<project>/. Checked on its nearest existing parent. */
static rs_err resolve_output(const char *spec, const task_env *env, char *out, size_t outlen,
                             rs_error *e)
{
    char want[PATH_MAX];
    if (strstr(spec, "..") != NULL) {
        return rs_error_set(e, RS_EPERM, "params.output: %s: '..' is not allowed", spec);
    }
    if (spec[0] == '/') {
        snprintf(want, sizeof want, "%s", spec);
    } else {
        snprintf(want, sizeof want, "%s/removal/%s/%s", env->data_dir, env->project, spec);
        snprintf(out, outlen, "%s", want);
        return RS_OK;
    }
    char probe[PATH_MAX];
    snprintf(probe, sizeof probe, "%s", want);
    struct stat st;
    while (stat(probe, &st) != 0) {
        char *slash = strrchr(probe, '/');
        if (slash == NULL || slash == probe) {
            return rs_error_set(e, RS_EPERM, "params.output: %s: no existing parent", spec);
        }
        *slash = '\0';
    }
    char resolved[PATH_MAX];
    const char *roots[65];
    size_t nroots = 0;
    for (size_t i = 0; i < env->nmedia_roots && nroots < 64; i++) {
        roots[nroots++] = env->media_roots[i];
    }
    roots[nroots++] = env->data_dir;
    rs_err rc = rs_fs_resolve_in_roots(probe, roots, nroots, resolved, sizeof resolved, e);
    if (rc != RS_OK) {
        return rs_error_set(
            e, RS_EPERM, "params.output: %s is outside the data folder and the media roots", spec);
    }
    snprintf(out, outlen, "%s%s", resolved, want + strlen(probe));
    return RS_OK;
}

static rs_err parse(const cJSON *params, const task_env *env, bool infer, rparams *p, rs_error *e)
{
    static const char *const train_allowed[] = {"frames", "masks",  "steps", "range",
                                                "from",   "config", "output"};
    static const char *const infer_allowed[] = {"frames",    "masks",  "output", "range", "model",
                                                "train_job", "config", "steps",  "from"};
    memset(p, 0, sizeof *p);
    p->steps = 200;
    p->range = 20;
    /* The project names folders under the data dir: no way out of it. */
    if (env->project == NULL || env->project[0] == '\0' || strchr(env->project, '/') != NULL ||
        strcmp(env->project, ".") == 0 || strcmp(env->project, "..") == 0) {
        return rs_error_set(e, RS_EINVAL, "project: not usable as a folder name for removal");
    }
    if (!cJSON_IsObject(params)) {
        return rs_error_set(e, RS_EINVAL, "params: must be an object");
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, params)
    {
        bool ok = infer ? field_allowed(it->string, infer_allowed, 9)
                        : field_allowed(it->string, train_allowed, 7);
        if (!ok) {
            return rs_error_set(e, RS_EINVAL, "params.%s: unknown field for kind %s", it->string,
                                infer ? "removal_infer" : "removal_train");
        }
    }
    const char *frames = get_str(params, "frames");
    const char *masks = get_str(params, "masks");
    if (frames == NULL) {
        return rs_error_set(e, RS_EINVAL, "params.frames: required (a folder or a pattern)");
    }
    if (masks == NULL) {
        return rs_error_set(e, RS_EINVAL, "params.masks: required (a folder or a pattern)");
    }
    rs_err rc = get_int(params, "params.", "steps", 1, 10000000, &p->steps, e);
    if (rc == RS_OK) {
        rc = get_int(params, "params.", "range", 1, 200, &p->range, e);
    }
    long from = 0, model = 0, train_job = 0;
    if (rc == RS_OK) {
        rc = get_int(params, "params.", "from", 1, INT64_MAX / 2, &from, e);
    }
    if (rc == RS_OK) {
        rc = get_int(params, "params.", "model", 1, INT64_MAX / 2, &model, e);
    }
    if (rc == RS_OK) {
        rc = get_int(params, "params.", "train_job", 1, INT64_MAX / 2, &train_job, e);
    }
    if (rc == RS_OK) {
        rc = config_parse(cJSON_GetObjectItemCaseSensitive(params, "config"), &p->config, e);
    }
    if (rc != RS_OK) {
        return rc;
    }
    p->from = infer ? model : from;
    p->train_job = train_job;
    if (infer && (model == 0) == (train_job == 0)) {
        return rs_error_set(e, RS_EINVAL,
                            "params: removal_infer needs exactly one of model (a registered "
                            "model id) or train_job (the removal_train job it depends on)");
    }
    if (p->from != 0) {
        char mp[PATH_MAX];
        removal_model_path(env->data_dir, env->project, p->from, mp, sizeof mp);
        struct stat st;
        if (stat(mp, &st) != 0) {
            return rs_error_set(e, RS_ENOENT, "params.%s: unknown model %lld in project %s",
                                infer ? "model" : "from", (long long)p->from, env->project);
        }
    }
    const char *output = get_str(params, "output");
    if (infer && output == NULL) {
        return rs_error_set(e, RS_EINVAL, "params.output: required (a folder)");
    }
    if (output != NULL) {
        rc = resolve_output(output, env, p->output, sizeof p->output, e);
        if (rc != RS_OK) {
            return rc;
        }
    }
    rc = seq_resolve("frames", frames, env, &p->frames, e);
    if (rc == RS_OK) {
        rc = seq_resolve("masks", masks, env, &p->masks, e);
    }
    if (rc == RS_OK) {
        rc = check_pairs(&p->frames, &p->masks, e);
    }
    return rc;
}

static cJSON *str_array(char *const *s, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateString(s[i]));
    }
    return a;
}

static cJSON *num_array(const int64_t *v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < n; i++) {
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
    }
    return a;
}

/* ---- removal_train ------------------------------------------------------ */

static rs_err train_plan(const cJSON *params, const task_env *env, cJSON **out, rs_error *e)
{
    rparams p;
    rs_err rc = parse(params, env, false, &p, e);
    if (rc != RS_OK) {
        rparams_free(&p);
        return rc;
    }
    /* The work folder is named by the params' hash, so every attempt of this
     * task (another worker, after a kill) finds the same checkpoints. */
    char *text = cJSON_PrintUnformatted(params);
    char hex[RS_HASH_HEX_LEN] = "0";
    if (text != NULL) {
        rs_hash_hex(rs_hash_xxh3(text, strlen(text)), hex);
    }
    free(text);
    char work[PATH_MAX];
    snprintf(work, sizeof work, "%s/removal/%s/train-%s", env->data_dir, env->project, hex);
    cJSON *arr = cJSON_CreateArray();
    cJSON *t = cJSON_CreateObject();
    if (arr == NULL || t == NULL) {
        cJSON_Delete(arr);
        cJSON_Delete(t);
        rparams_free(&p);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON_AddItemToArray(arr, t);
    cJSON_AddItemToObject(t, "frames", str_array(p.frames.paths, p.frames.n));
    cJSON_AddItemToObject(t, "masks", str_array(p.masks.paths, p.masks.n));
    cJSON_AddItemToObject(t, "numbers", num_array(p.frames.numbers, p.frames.n));
    cJSON_AddNumberToObject(t, "steps", (double)p.steps);
    cJSON_AddNumberToObject(t, "range", (double)p.range);
    cJSON_AddStringToObject(t, "work", work);
    if (p.from != 0) {
        char mp[PATH_MAX];
        removal_model_path(env->data_dir, env->project, p.from, mp, sizeof mp);
        cJSON_AddStringToObject(t, "from_checkpoint", mp);
        cJSON_AddNumberToObject(t, "from", (double)p.from);
    }
    cJSON_AddItemToObject(t, "config", p.config);
    p.config = NULL;
    rparams_free(&p);
    *out = arr;
    return RS_OK;
}

static rs_err copy_file(const char *src, const char *dst, rs_error *e)
{
    char *buf = NULL;
    size_t len = 0;
    rs_err rc = rs_fs_read_all(src, (size_t)1 << 31, &buf, &len, e);
    if (rc != RS_OK) {
        return rc;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", dst);
    char *slash = strrchr(dir, '/');
    if (slash != NULL) {
        *slash = '\0';
        rc = rs_fs_mkdirs(dir, e);
    }
    if (rc == RS_OK) {
        rc = rs_fs_write_atomic(dst, buf, len, e);
    }
    free(buf);
    return rc;
}

static rs_err train_finalize(const cJSON *params, const cJSON *results, const task_env *env,
                             cJSON **job_result, cJSON **clips, rs_error *e)
{
    (void)params;
    const cJSON *r = cJSON_GetArrayItem(results, 0);
    const char *ckpt = get_str(r, "checkpoint");
    if (ckpt == NULL) {
        return rs_error_set(e, RS_EINVAL, "removal_train: the task result has no checkpoint");
    }
    /* The path comes from a worker's report: only a file under this
     * project's removal folder is copied (never, say, a signing key). */
    char base[PATH_MAX], resolved[PATH_MAX];
    snprintf(base, sizeof base, "%s/removal/%s", env->data_dir, env->project);
    const char *roots[1] = {base};
    rs_err rc = rs_fs_resolve_in_roots(ckpt, roots, 1, resolved, sizeof resolved, e);
    if (rc != RS_OK) {
        return rs_error_set(e, rc == RS_EPERM ? RS_EPERM : rc,
                            "removal_train: checkpoint %s is missing or outside %s", ckpt, base);
    }
    char dst[PATH_MAX];
    removal_train_model_path(env->data_dir, env->project, env->job_id, dst, sizeof dst);
    rc = copy_file(resolved, dst, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *res = cJSON_CreateObject();
    cJSON *m = cJSON_Duplicate(r, true);
    if (res == NULL || m == NULL) {
        cJSON_Delete(res);
        cJSON_Delete(m);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(m, "checkpoint");
    cJSON_AddStringToObject(m, "checkpoint", dst);
    cJSON_AddStringToObject(m, "task_kind", "removal");
    cJSON_AddItemToObject(res, "model", m);
    *job_result = res;
    *clips = NULL;
    return RS_OK;
}

static rs_err train_run(const cJSON *tp, const task_io *io, cJSON **result, rs_error *e)
{
    return removal_train_run(tp, io, result, e);
}

const task_kind task_kind_removal_train = {
    .name = "removal_train",
    .plan = train_plan,
    .run = train_run,
    .finalize = train_finalize,
    .likeness = NULL,
    .yields = true,
};

/* ---- removal_infer ------------------------------------------------------ */

static rs_err infer_plan(const cJSON *params, const task_env *env, cJSON **out, rs_error *e)
{
    rparams p;
    rs_err rc = parse(params, env, true, &p, e);
    if (rc != RS_OK) {
        rparams_free(&p);
        return rc;
    }
    char model[PATH_MAX];
    if (p.from != 0) {
        removal_model_path(env->data_dir, env->project, p.from, model, sizeof model);
    } else {
        removal_train_model_path(env->data_dir, env->project, p.train_job, model, sizeof model);
    }
    long chunk = (long)cJSON_GetObjectItemCaseSensitive(p.config, "chunk")->valuedouble;
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL) {
        rparams_free(&p);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    for (size_t first = 0; first < p.frames.n; first += (size_t)chunk) {
        size_t count = p.frames.n - first < (size_t)chunk ? p.frames.n - first : (size_t)chunk;
        cJSON *t = cJSON_CreateObject();
        if (t == NULL) {
            cJSON_Delete(arr);
            rparams_free(&p);
            return rs_error_set(e, RS_ENOMEM, "out of memory");
        }
        cJSON_AddItemToArray(arr, t);
        cJSON_AddItemToObject(t, "frames", str_array(p.frames.paths, p.frames.n));
        cJSON_AddItemToObject(t, "masks", str_array(p.masks.paths, p.masks.n));
        cJSON_AddItemToObject(t, "numbers", num_array(p.frames.numbers, p.frames.n));
        cJSON_AddNumberToObject(t, "first", (double)first);
        cJSON_AddNumberToObject(t, "count", (double)count);
        cJSON_AddNumberToObject(t, "range", (double)p.range);
        cJSON_AddStringToObject(t, "output", p.output);
        cJSON_AddStringToObject(t, "model", model);
        cJSON_AddItemToObject(t, "config", cJSON_Duplicate(p.config, true));
    }
    rparams_free(&p);
    *out = arr;
    return RS_OK;
}

/* Nearest-neighbour copy of a frame (any sample type, first 3 channels or
 * grey) into an RGB8 tile of the sheet. */
static void sheet_blit(uint8_t *sheet, uint32_t sw, uint32_t x0, uint32_t y0, uint32_t tw,
                       uint32_t th, const media_frame *f)
{
    for (uint32_t y = 0; y < th; y++) {
        for (uint32_t x = 0; x < tw; x++) {
            uint32_t fx = (uint32_t)((uint64_t)x * f->width / tw);
            uint32_t fy = (uint32_t)((uint64_t)y * f->height / th);
            for (uint32_t c = 0; c < 3; c++) {
                uint32_t fc = f->channels >= 3 ? c : 0;
                const void *s = media_frame_at(f, fx, fy, fc);
                float v = 0.0f;
                switch (f->sample) {
                case MEDIA_SAMPLE_U8:
                    v = *(const uint8_t *)s / 255.0f;
                    break;
                case MEDIA_SAMPLE_U16:
                    v = *(const uint16_t *)s / 65535.0f;
                    break;
                case MEDIA_SAMPLE_F16:
                    v = media_half_to_float(*(const uint16_t *)s);
                    break;
                case MEDIA_SAMPLE_F32:
                    v = *(const float *)s;
                    break;
                }
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                sheet[((size_t)(y0 + y) * sw + x0 + x) * 3 + c] = (uint8_t)(v * 255.0f + 0.5f);
            }
        }
    }
}

/* before / mask / after for up to 4 frames that were altered (or the
 * first frames when none were). */
static rs_err contact_sheet(const cJSON *frames, const char *path, rs_error *e)
{
    int n = cJSON_GetArraySize(frames);
    if (n == 0) {
        return RS_OK;
    }
    int pick[4];
    int np = 0;
    int nalt = 0;
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, frames)
    {
        nalt += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "changed")) ? 1 : 0;
    }
    int idx = 0, seen = 0;
    cJSON_ArrayForEach(it, frames)
    {
        bool alt = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "changed"));
        if (nalt == 0 || alt) {
            int total = nalt == 0 ? n : nalt;
            /* evenly spaced over the candidates */
            if (np < 4 && seen * 4 >= np * total) {
                pick[np++] = idx;
            }
            seen++;
        }
        idx++;
    }
    media_frame *first = NULL;
    rs_err rc =
        media_image_read(get_str(cJSON_GetArrayItem(frames, pick[0]), "source"), NULL, &first, e);
    if (rc != RS_OK) {
        return rc;
    }
    uint32_t tw = first->width, th = first->height;
    media_frame_destroy(first);
    if (tw > 320) {
        th = (uint32_t)((uint64_t)th * 320 / tw);
        tw = 320;
    }
    if (th == 0) {
        th = 1;
    }
    uint32_t gap = 4;
    uint32_t sw = 3 * tw + 4 * gap, sh = (uint32_t)np * th + (uint32_t)(np + 1) * gap;
    media_frame *sheet = NULL;
    rc = media_frame_create(sw, sh, 3, MEDIA_SAMPLE_U8, &sheet, e);
    if (rc != RS_OK) {
        return rc;
    }
    memset(sheet->data, 32, media_frame_bytes(sheet));
    for (int i = 0; i < np && rc == RS_OK; i++) {
        const cJSON *fr = cJSON_GetArrayItem(frames, pick[i]);
        const char *cols[3] = {get_str(fr, "source"), get_str(fr, "mask"), get_str(fr, "output")};
        for (uint32_t c = 0; c < 3 && rc == RS_OK; c++) {
            media_frame *f = NULL;
            rc = media_image_read(cols[c], NULL, &f, e);
            if (rc == RS_OK) {
                sheet_blit(sheet->data, sw, gap + c * (tw + gap), gap + (uint32_t)i * (th + gap),
                           tw, th, f);
            }
            media_frame_destroy(f);
        }
    }
    if (rc == RS_OK) {
        media_write_opts o = {.format = MEDIA_FORMAT_PNG};
        rc = media_image_write(path, sheet, &o, e);
    }
    media_frame_destroy(sheet);
    return rc;
}

static rs_err infer_finalize(const cJSON *params, const cJSON *results, const task_env *env,
                             cJSON **job_result, cJSON **clips, rs_error *e)
{
    (void)params;
    (void)env;
    cJSON *res = cJSON_CreateObject();
    cJSON *alts = cJSON_AddArrayToObject(res, "alterations");
    cJSON *all = cJSON_CreateArray();
    if (res == NULL || alts == NULL || all == NULL) {
        cJSON_Delete(res);
        cJSON_Delete(all);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    const char *outdir = NULL;
    const char *model = NULL;
    const cJSON *r = NULL;
    cJSON_ArrayForEach(r, results)
    {
        if (outdir == NULL) {
            outdir = get_str(r, "output");
        }
        if (model == NULL) {
            model = get_str(r, "model");
        }
        const cJSON *fr = NULL;
        cJSON_ArrayForEach(fr, cJSON_GetObjectItemCaseSensitive(r, "frames"))
        {
            /* Task results come from workers: check their shape before use. */
            if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(fr, "frame")) ||
                get_str(fr, "source") == NULL || get_str(fr, "output") == NULL ||
                get_str(fr, "mask") == NULL) {
                cJSON_Delete(res);
                cJSON_Delete(all);
                return rs_error_set(e, RS_EINVAL,
                                    "removal_infer: a task result frame lacks frame, source, "
                                    "output or mask");
            }
            cJSON_AddItemToArray(all, cJSON_Duplicate(fr, true));
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fr, "changed"))) {
                continue;
            }
            cJSON *a = cJSON_CreateObject();
            cJSON_AddItemToArray(alts, a);
            cJSON_AddNumberToObject(a, "frame",
                                    cJSON_GetObjectItemCaseSensitive(fr, "frame")->valuedouble);
            cJSON_AddStringToObject(a, "source", get_str(fr, "source"));
            cJSON_AddStringToObject(a, "output", get_str(fr, "output"));
            cJSON_AddStringToObject(a, "mask", get_str(fr, "mask"));
            cJSON_AddStringToObject(a, "model", model != NULL ? model : "");
        }
    }
    rs_err rc = RS_OK;
    if (outdir != NULL) {
        char sheet[PATH_MAX];
        snprintf(sheet, sizeof sheet, "%s/contact_sheet.png", outdir);
        rc = contact_sheet(all, sheet, e);
        if (rc == RS_OK && cJSON_GetArraySize(all) > 0) {
            cJSON_AddStringToObject(res, "contact_sheet", sheet);
        }
        cJSON_AddStringToObject(res, "output", outdir);
    }
    cJSON_AddNumberToObject(res, "frames", cJSON_GetArraySize(all));
    cJSON_AddStringToObject(res, "model", model != NULL ? model : "");
    cJSON_Delete(all);
    if (rc != RS_OK) {
        cJSON_Delete(res);
        return rc;
    }
    *job_result = res;
    *clips = NULL;
    return RS_OK;
}

static rs_err infer_run(const cJSON *tp, const task_io *io, cJSON **result, rs_error *e)
{
    return removal_infer_run(tp, io, result, e);
}

const task_kind task_kind_removal_infer = {
    .name = "removal_infer",
    .plan = infer_plan,
    .run = infer_run,
    .finalize = infer_finalize,
    .likeness = NULL,
    .alters = true, /* outputs are labelled with the job's authorising ledger event */
};
