/*
 * plan.c: ingest's plan step (runs in rushesd at submit). Validates params,
 * resolves the path inside the media roots and lists the files to ingest,
 * without reading any file contents.
 *
 * A FILE ingests that file (root = its folder); a FOLDER is walked
 * recursively (hidden entries and "ascmhl" folders skipped, symlinked files
 * kept only if they resolve inside a root, symlinked folders never walked so
 * a link loop cannot hang the daemon); a PATTERN ("shot.%04d.exr",
 * "shot.####.dpx") matches the frame files in its folder. A path that does
 * not exist is planned as one task when its nearest existing parent lies
 * inside a root: the worker then fails naming the file, which is how the
 * user learns of the typo with the job's own error.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs.h"
#include "ingest.h"

/* A folder holding more files than this is refused rather than planned. */
#define PLAN_MAX_FILES 1000000
#define PLAN_MAX_DEPTH 64

typedef struct strlist {
    char **v;
    size_t n;
    size_t cap;
} strlist;

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
    l->cap = 0;
}

static rs_err strlist_add(strlist *l, const char *s, rs_error *e)
{
    if (l->n >= PLAN_MAX_FILES) {
        return rs_error_set(e, RS_ETOOBIG, "params.path: more than %d files", PLAN_MAX_FILES);
    }
    if (l->n == l->cap) {
        size_t nc = l->cap == 0 ? 64 : l->cap * 2;
        char **nv = realloc(l->v, nc * sizeof *nv);
        if (nv == NULL) {
            return rs_error_set(e, RS_ENOMEM, "out of memory listing files");
        }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n] = strdup(s);
    if (l->v[l->n] == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory listing files");
    }
    l->n++;
    return RS_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ingest_relpath_ok(const char *rel)
{
    if (rel == NULL || rel[0] == '\0' || rel[0] == '/' || strlen(rel) >= PATH_MAX) {
        return 0;
    }
    const char *p = rel;
    while (*p != '\0') {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
            return 0;
        }
        if (slash == NULL) {
            break;
        }
        p = slash + 1;
        if (*p == '\0') {
            return 0;
        }
    }
    return 1;
}

int ingest_pattern_split(const char *name, size_t *prefix_len, size_t *suffix_off,
                         int *min_digits)
{
    int found = 0;
    for (size_t i = 0; name[i] != '\0'; i++) {
        size_t end = 0;
        int digits = 0;
        if (name[i] == '%') {
            size_t j = i + 1;
            if (name[j] == '0') {
                j++;
            }
            int w = 0;
            while (name[j] >= '0' && name[j] <= '9' && w < 100) {
                w = w * 10 + (name[j] - '0');
                j++;
            }
            if (name[j] != 'd') {
                continue;
            }
            end = j + 1;
            digits = w > 0 ? w : 1;
        } else if (name[i] == '#') {
            size_t j = i;
            while (name[j] == '#') {
                j++;
            }
            end = j;
            digits = (int)(j - i);
        } else {
            continue;
        }
        if (found) {
            return 0;
        }
        found = 1;
        *prefix_len = i;
        *suffix_off = end;
        *min_digits = digits;
        i = end - 1;
    }
    return found;
}

static int skip_name(const char *name)
{
    return name[0] == '.';
}

static rs_err walk(const char *abs, const char *rel, int depth, const task_env *env,
                   strlist *out, rs_error *e)
{
    if (depth > PLAN_MAX_DEPTH) {
        return rs_error_set(e, RS_ETOOBIG, "%s: folders nested deeper than %d", abs,
                            PLAN_MAX_DEPTH);
    }
    DIR *d = opendir(abs);
    if (d == NULL) {
        return rs_error_set(e, RS_EIO, "%s: cannot open folder: %s", abs, strerror(errno));
    }
    rs_err rc = RS_OK;
    const struct dirent *de = NULL;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                rc = rs_error_set(e, RS_EIO, "%s: read folder: %s", abs, strerror(errno));
            }
            break;
        }
        if (skip_name(de->d_name)) {
            continue;
        }
        char cabs[PATH_MAX];
        char crel[PATH_MAX];
        int n1 = snprintf(cabs, sizeof cabs, "%s/%s", abs, de->d_name);
        int n2 = rel[0] != '\0' ? snprintf(crel, sizeof crel, "%s/%s", rel, de->d_name)
                                : snprintf(crel, sizeof crel, "%s", de->d_name);
        if (n1 < 0 || (size_t)n1 >= sizeof cabs || n2 < 0 || (size_t)n2 >= sizeof crel) {
            rc = rs_error_set(e, RS_EINVAL, "%s/%s: path too long", abs, de->d_name);
            break;
        }
        struct stat st;
        if (lstat(cabs, &st) != 0) {
            continue; /* vanished while listing */
        }
        if (S_ISDIR(st.st_mode)) {
            if (strcmp(de->d_name, "ascmhl") == 0) {
                continue;
            }
            rc = walk(cabs, crel, depth + 1, env, out, e);
        } else if (S_ISREG(st.st_mode)) {
            rc = strlist_add(out, crel, e);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            struct stat tst;
            rs_error ignored;
            if (rs_fs_resolve_in_roots(cabs, env->media_roots, env->nmedia_roots, target,
                                       sizeof target, &ignored) != RS_OK) {
                continue; /* dangling, or leaves the roots: not ours to read */
            }
            if (stat(target, &tst) == 0 && S_ISREG(tst.st_mode)) {
                rc = strlist_add(out, crel, e);
            }
        }
        if (rc != RS_OK) {
            break;
        }
    }
    closedir(d);
    return rc;
}

/* Lists the files in folder abs that match the frame pattern name. */
static rs_err match_pattern(const char *abs, const char *name, strlist *out, rs_error *e)
{
    size_t plen = 0;
    size_t soff = 0;
    int mind = 0;
    if (!ingest_pattern_split(name, &plen, &soff, &mind)) {
        return rs_error_set(e, RS_EINVAL, "params.path: %s: not a frame pattern", name);
    }
    const char *suffix = name + soff;
    size_t slen = strlen(suffix);
    DIR *d = opendir(abs);
    if (d == NULL) {
        return rs_error_set(e, RS_EIO, "%s: cannot open folder: %s", abs, strerror(errno));
    }
    rs_err rc = RS_OK;
    const struct dirent *de = NULL;
    for (;;) {
        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            if (errno != 0) {
                rc = rs_error_set(e, RS_EIO, "%s: read folder: %s", abs, strerror(errno));
            }
            break;
        }
        const char *f = de->d_name;
        size_t flen = strlen(f);
        if (skip_name(f) || flen < plen + slen + (size_t)mind) {
            continue;
        }
        if (strncmp(f, name, plen) != 0 || strcmp(f + flen - slen, suffix) != 0) {
            continue;
        }
        size_t nd = flen - slen - plen;
        int all_digits = 1;
        for (size_t i = plen; i < plen + nd; i++) {
            if (f[i] < '0' || f[i] > '9') {
                all_digits = 0;
            }
        }
        if (!all_digits || nd < (size_t)mind || nd > 12) {
            continue;
        }
        rc = strlist_add(out, f, e);
        if (rc != RS_OK) {
            break;
        }
    }
    closedir(d);
    return rc;
}

static rs_err parse_params(const cJSON *params, const char **path, int *per_task, rs_error *e)
{
    if (!cJSON_IsObject(params)) {
        return rs_error_set(e, RS_EINVAL, "params: must be an object");
    }
    const cJSON *it = NULL;
    cJSON_ArrayForEach(it, params)
    {
        if (strcmp(it->string, "path") != 0 && strcmp(it->string, "files_per_task") != 0) {
            return rs_error_set(e, RS_EINVAL, "params.%s: unknown field for kind ingest",
                                it->string);
        }
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(params, "path");
    if (!cJSON_IsString(p) || p->valuestring[0] == '\0') {
        return rs_error_set(e, RS_EINVAL, "params.path: required, a non-empty string");
    }
    if (p->valuestring[0] != '/') {
        return rs_error_set(e, RS_EINVAL, "params.path: %s: must be an absolute path",
                            p->valuestring);
    }
    if (strlen(p->valuestring) >= PATH_MAX) {
        return rs_error_set(e, RS_EINVAL, "params.path: longer than %d bytes", PATH_MAX - 1);
    }
    *path = p->valuestring;
    *per_task = 16;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(params, "files_per_task");
    if (f != NULL) {
        if (!cJSON_IsNumber(f) || f->valuedouble != (double)(int)f->valuedouble ||
            f->valuedouble < 1 || f->valuedouble > 1000) {
            return rs_error_set(e, RS_EINVAL, "params.files_per_task: must be an integer in 1..1000");
        }
        *per_task = (int)f->valuedouble;
    }
    return RS_OK;
}

/* Splits path into folder and last component (in place copies). */
static void split_path(const char *path, char *dir, size_t dlen, char *base, size_t blen)
{
    const char *slash = strrchr(path, '/');
    size_t n = (size_t)(slash - path);
    if (n == 0) {
        snprintf(dir, dlen, "/");
    } else {
        snprintf(dir, dlen, "%.*s", (int)n, path);
    }
    snprintf(base, blen, "%s", slash + 1);
}

/*
 * For a path that does not exist: finds the nearest existing ancestor,
 * checks it lies inside a root and returns it (resolved) as the root with
 * the rest as one relative file. ".." after the existing part is refused:
 * it could climb back out once the folders appear.
 */
static rs_err plan_missing(const char *path, const task_env *env, char *root, size_t rootlen,
                           strlist *files, rs_error *e)
{
    char cur[PATH_MAX];
    snprintf(cur, sizeof cur, "%s", path);
    size_t len = strlen(cur);
    while (len > 1 && cur[len - 1] == '/') {
        cur[--len] = '\0';
    }
    for (;;) {
        char *slash = strrchr(cur, '/');
        if (slash == NULL) {
            return rs_error_set(e, RS_EPERM, "%s: outside the configured media roots", path);
        }
        const char *rest = path + (slash - cur) + 1;
        if (slash == cur) {
            cur[1] = '\0';
        } else {
            *slash = '\0';
        }
        rs_error sub;
        rs_err rc = rs_fs_resolve_in_roots(cur, env->media_roots, env->nmedia_roots, root,
                                           rootlen, &sub);
        if (rc == RS_ENOENT && strcmp(cur, "/") != 0) {
            continue;
        }
        if (rc == RS_EPERM) {
            return rs_error_set(e, RS_EPERM, "%s: outside the configured media roots", path);
        }
        if (rc != RS_OK) {
            return rs_error_set(e, rc, "%s: %s", path, rs_error_text(&sub));
        }
        char relbuf[PATH_MAX];
        snprintf(relbuf, sizeof relbuf, "%s", rest);
        size_t rl = strlen(relbuf);
        while (rl > 0 && relbuf[rl - 1] == '/') {
            relbuf[--rl] = '\0';
        }
        if (!ingest_relpath_ok(relbuf)) {
            return rs_error_set(e, RS_EPERM, "%s: outside the configured media roots", path);
        }
        return strlist_add(files, relbuf, e);
    }
}

rs_err ingest_plan(const cJSON *params, const task_env *env, cJSON **tasks, rs_error *e)
{
    const char *path = NULL;
    int per_task = 16;
    strlist files = {0};
    cJSON *arr = NULL;
    char root[PATH_MAX];
    char resolved[PATH_MAX];
    rs_error sub;

    rs_err rc = parse_params(params, &path, &per_task, e);
    if (rc != RS_OK) {
        return rc;
    }
    char dir[PATH_MAX];
    char base[PATH_MAX];
    split_path(path, dir, sizeof dir, base, sizeof base);
    size_t plen = 0;
    size_t soff = 0;
    int mind = 0;
    struct stat st;
    int exists = lstat(path, &st) == 0;
    if (!exists && ingest_pattern_split(base, &plen, &soff, &mind)) {
        rc = rs_fs_resolve_in_roots(dir, env->media_roots, env->nmedia_roots, root, sizeof root,
                                    &sub);
        if (rc == RS_OK) {
            rc = match_pattern(root, base, &files, e);
        } else {
            rc = rs_error_set(e, rc, "params.path: %s", rs_error_text(&sub));
        }
        if (rc == RS_OK && files.n == 0) {
            rc = rs_error_set(e, RS_ENOENT, "%s: no files match the pattern", path);
        }
        goto split;
    }
    rc = rs_fs_resolve_in_roots(path, env->media_roots, env->nmedia_roots, resolved,
                                sizeof resolved, &sub);
    if (rc == RS_ENOENT) {
        rc = plan_missing(path, env, root, sizeof root, &files, e);
        goto split;
    }
    if (rc != RS_OK) {
        rc = rs_error_set(e, rc, "params.path: %s", rs_error_text(&sub));
        goto out;
    }
    if (stat(resolved, &st) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: stat: %s", path, strerror(errno));
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(root, sizeof root, "%s", resolved);
        rc = walk(root, "", 0, env, &files, e);
        if (rc == RS_OK && files.n == 0) {
            rc = rs_error_set(e, RS_ENOENT, "%s: folder holds no files to ingest", path);
        }
    } else if (S_ISREG(st.st_mode)) {
        char rbase[PATH_MAX];
        split_path(resolved, root, sizeof root, rbase, sizeof rbase);
        rc = strlist_add(&files, rbase, e);
    } else {
        rc = rs_error_set(e, RS_EINVAL, "%s: not a file or folder", path);
    }
split:
    if (rc != RS_OK) {
        goto out;
    }
    qsort(files.v, files.n, sizeof files.v[0], cmp_str);
    arr = cJSON_CreateArray();
    if (arr == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < files.n; i += (size_t)per_task) {
        cJSON *t = cJSON_CreateObject();
        cJSON *fl = cJSON_CreateArray();
        if (t == NULL || fl == NULL) {
            cJSON_Delete(t);
            cJSON_Delete(fl);
            rc = rs_error_set(e, RS_ENOMEM, "out of memory");
            goto out;
        }
        cJSON_AddItemToArray(arr, t);
        cJSON_AddStringToObject(t, "root", root);
        cJSON_AddItemToObject(t, "files", fl);
        for (size_t j = i; j < files.n && j < i + (size_t)per_task; j++) {
            cJSON *s = cJSON_CreateString(files.v[j]);
            if (s == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "out of memory");
                goto out;
            }
            cJSON_AddItemToArray(fl, s);
        }
    }
    *tasks = arr;
    arr = NULL;
out:
    cJSON_Delete(arr);
    strlist_free(&files);
    return rc;
}
