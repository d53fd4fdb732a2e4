/*
 * mhl.c: ingest's finalize step (in rushesd) and the ASC MHL reader.
 *
 * finalize merges the task results, groups files into clips (a video file
 * is a clip; image files named <prefix><frame digits>.<ext> in one folder
 * form one sequence clip with its frame range and gaps; any other image is
 * a clip of its own; non-media files are hashed but make no clip) and writes
 * an ASC MHL v2.0 manifest plus ascmhl_chain.xml under
 * <data_dir>/mhl/<project>/job-<id>/ascmhl/. Re-running finalize reuses the
 * manifest name (and so its timestamp) already there, so the same results
 * give byte-identical files: a daemon crash mid-finalize is harmless.
 *
 * The schema's <process> allows only in-place/transfer/flatten, so the
 * manifest says "in-place" and names the ingest job in creatorinfo/comment.
 *
 * mhl_verify reads a manifest with a small bounded XML tokenizer (no DTDs,
 * no entities beyond the five predefined ones and character references),
 * then rehashes every listed file.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fs.h"
#include "hash.h"
#include "ingest.h"

#define MHL_TOOL_NAME "rushes"
#define MHL_TOOL_VERSION "0.1.0"
#define MHL_MAX_BYTES (512u * 1024u * 1024u)

/* ---- growable text buffer ---- */

typedef struct sbuf {
    char *p;
    size_t len;
    size_t cap;
    int failed;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->failed) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap == 0 ? 4096 : b->cap;
        while (nc < b->len + n + 1) {
            nc *= 2;
        }
        char *np = realloc(b->p, nc);
        if (np == NULL) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->failed = 1;
        return;
    }
    sb_put(b, tmp, (size_t)n);
}

/* XML-escapes text for element content and attribute values. */
static void sb_xml(sbuf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            sb_put(b, "&amp;", 5);
            break;
        case '<':
            sb_put(b, "&lt;", 4);
            break;
        case '>':
            sb_put(b, "&gt;", 4);
            break;
        case '"':
            sb_put(b, "&quot;", 6);
            break;
        case '\'':
            sb_put(b, "&apos;", 6);
            break;
        default:
            if ((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') {
                sb_printf(b, "&#xFFFD;"); /* not representable in XML 1.0 */
            } else {
                sb_put(b, s, 1);
            }
        }
    }
}

/* ---- merging task results ---- */

typedef struct mfile {
    const char *path;  /* relative to root */
    double size;
    const char *mtime;
    const char *xxh3;
    const cJSON *probe; /* NULL if not media */
} mfile;

static int cmp_mfile(const void *a, const void *b)
{
    return strcmp(((const mfile *)a)->path, ((const mfile *)b)->path);
}

static const char *probe_type(const cJSON *probe)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(probe, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static rs_err collect(const cJSON *results, const char **root, mfile **out, size_t *nout,
                      rs_error *e)
{
    if (!cJSON_IsArray(results) || cJSON_GetArraySize(results) == 0) {
        return rs_error_set(e, RS_EINVAL, "ingest results: must be a non-empty array");
    }
    size_t cap = 0;
    const cJSON *r = NULL;
    cJSON_ArrayForEach(r, results)
    {
        cap += (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "files"));
    }
    mfile *v = calloc(cap > 0 ? cap : 1, sizeof *v);
    if (v == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    size_t n = 0;
    int ti = 0;
    *root = NULL;
    cJSON_ArrayForEach(r, results)
    {
        const cJSON *rt = cJSON_GetObjectItemCaseSensitive(r, "root");
        const cJSON *fl = cJSON_GetObjectItemCaseSensitive(r, "files");
        if (!cJSON_IsString(rt) || rt->valuestring[0] != '/' || !cJSON_IsArray(fl)) {
            free(v);
            return rs_error_set(e, RS_EINVAL, "ingest results[%d]: needs \"root\" and \"files\"",
                                ti);
        }
        if (*root != NULL && strcmp(*root, rt->valuestring) != 0) {
            free(v);
            return rs_error_set(e, RS_EINVAL, "ingest results[%d]: root %s differs from %s", ti,
                                rt->valuestring, *root);
        }
        *root = rt->valuestring;
        const cJSON *f = NULL;
        cJSON_ArrayForEach(f, fl)
        {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "path");
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(f, "size");
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(f, "mtime");
            const cJSON *h = cJSON_GetObjectItemCaseSensitive(f, "xxh3");
            const cJSON *pr = cJSON_GetObjectItemCaseSensitive(f, "probe");
            uint64_t hv = 0;
            if (!cJSON_IsString(p) || !ingest_relpath_ok(p->valuestring) || !cJSON_IsNumber(s) ||
                s->valuedouble < 0 || !cJSON_IsString(m) || !cJSON_IsString(h) ||
                !rs_hash_parse_hex(h->valuestring, &hv)) {
                free(v);
                return rs_error_set(e, RS_EINVAL, "ingest results[%d]: malformed file entry", ti);
            }
            v[n].path = p->valuestring;
            v[n].size = s->valuedouble;
            v[n].mtime = m->valuestring;
            v[n].xxh3 = h->valuestring;
            v[n].probe = cJSON_IsObject(pr) ? pr : NULL;
            n++;
        }
        ti++;
    }
    qsort(v, n, sizeof *v, cmp_mfile);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(v[i - 1].path, v[i].path) == 0) {
            rs_err rc = rs_error_set(e, RS_EINVAL, "ingest results: %s listed twice", v[i].path);
            free(v);
            return rc;
        }
    }
    *out = v;
    *nout = n;
    return RS_OK;
}

/* ---- clips ---- */

typedef struct seqkey {
    char *key;      /* dir/prefix + "\n" + digit count + "\n" + ext: groups frames */
    long long frame;
    size_t idx;     /* into the mfile array */
    size_t prefix;  /* byte length of dir/prefix in path */
    size_t ndigits;
} seqkey;

static int cmp_seqkey(const void *a, const void *b)
{
    const seqkey *x = a;
    const seqkey *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0) {
        return c;
    }
    return (x->frame > y->frame) - (x->frame < y->frame);
}

/* "dir/name.0012.exr" -> prefix "dir/name.", 4 digits, frame 12, ext "exr". */
static int seq_split(const char *path, size_t *prefix, size_t *ndigits, long long *frame)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (dot == NULL || (slash != NULL && dot < slash) || dot[1] == '\0') {
        return 0;
    }
    const char *d = dot;
    const char *start = slash != NULL ? slash + 1 : path;
    while (d > start && d[-1] >= '0' && d[-1] <= '9') {
        d--;
    }
    size_t nd = (size_t)(dot - d);
    if (nd == 0 || nd > 12) {
        return 0;
    }
    long long f = 0;
    for (const char *p = d; p < dot; p++) {
        f = f * 10 + (*p - '0');
    }
    *prefix = (size_t)(d - path);
    *ndigits = nd;
    *frame = f;
    return 1;
}

static cJSON *clip_new(cJSON *clips, const char *name, const char *root, const char *rel,
                       const char *hash, const cJSON *probe)
{
    cJSON *c = cJSON_CreateObject();
    if (c == NULL) {
        return NULL;
    }
    cJSON_AddItemToArray(clips, c);
    char full[PATH_MAX * 2];
    snprintf(full, sizeof full, "%s%s%s", root, strcmp(root, "/") == 0 ? "" : "/", rel);
    cJSON_AddStringToObject(c, "name", name);
    cJSON_AddStringToObject(c, "path", full);
    cJSON_AddStringToObject(c, "hash", hash);
    cJSON *info = cJSON_Duplicate(probe, 1);
    if (info == NULL) {
        return NULL;
    }
    cJSON_AddItemToObject(c, "info", info);
    return c;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

/* One clip per sequence group keys[lo..hi) (sorted by frame). */
static rs_err clip_sequence(cJSON *clips, const char *root, const mfile *files,
                            const seqkey *keys, size_t lo, size_t hi, rs_error *e)
{
    const mfile *first = &files[keys[lo].idx];
    char pattern[PATH_MAX + 16];
    const char *ext = first->path + keys[lo].prefix + keys[lo].ndigits;
    snprintf(pattern, sizeof pattern, "%.*s%%0%zud%s", (int)keys[lo].prefix, first->path,
             keys[lo].ndigits, ext);
    /* Sequence hash: XXH3 over the frames' hex hashes in frame order. */
    size_t n = hi - lo;
    char *cat = malloc(n * 16 + 1);
    if (cat == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    for (size_t i = lo; i < hi; i++) {
        memcpy(cat + (i - lo) * 16, files[keys[i].idx].xxh3, 16);
    }
    char hex[RS_HASH_HEX_LEN];
    rs_hash_hex(rs_hash_xxh3(cat, n * 16), hex);
    free(cat);
    cJSON *c = clip_new(clips, base_name(pattern), root, pattern, hex, first->probe);
    if (c == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    cJSON *info = cJSON_GetObjectItemCaseSensitive(c, "info");
    cJSON *gaps = cJSON_CreateArray();
    if (gaps == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    for (size_t i = lo + 1; i < hi; i++) {
        if (keys[i].frame > keys[i - 1].frame + 1) {
            cJSON *g = cJSON_CreateArray();
            if (g == NULL) {
                cJSON_Delete(gaps);
                return rs_error_set(e, RS_ENOMEM, "out of memory");
            }
            cJSON_AddItemToArray(g, cJSON_CreateNumber((double)(keys[i - 1].frame + 1)));
            cJSON_AddItemToArray(g, cJSON_CreateNumber((double)(keys[i].frame - 1)));
            cJSON_AddItemToArray(gaps, g);
        }
    }
    cJSON_ReplaceItemInObjectCaseSensitive(info, "type", cJSON_CreateString("sequence"));
    cJSON_AddStringToObject(info, "pattern", pattern);
    cJSON_AddNumberToObject(info, "frame_first", (double)keys[lo].frame);
    cJSON_AddNumberToObject(info, "frame_last", (double)keys[hi - 1].frame);
    cJSON_AddNumberToObject(info, "frames", (double)n);
    cJSON_AddItemToObject(info, "gaps", gaps);
    return RS_OK;
}

static rs_err make_clips(const char *root, const mfile *files, size_t n, cJSON *clips,
                         rs_error *e)
{
    rs_err rc = RS_OK;
    seqkey *keys = calloc(n > 0 ? n : 1, sizeof *keys);
    unsigned char *in_seq = NULL;
    size_t nk = 0;
    if (keys == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const char *t = files[i].probe != NULL ? probe_type(files[i].probe) : "";
        size_t prefix = 0;
        size_t nd = 0;
        long long frame = 0;
        if (strcmp(t, "image") == 0 && seq_split(files[i].path, &prefix, &nd, &frame)) {
            const char *ext = files[i].path + prefix + nd;
            size_t klen = prefix + strlen(ext) + 32;
            keys[nk].key = malloc(klen);
            if (keys[nk].key == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "out of memory");
                goto out;
            }
            snprintf(keys[nk].key, klen, "%.*s\n%zu\n%s", (int)prefix, files[i].path, nd, ext);
            keys[nk].frame = frame;
            keys[nk].idx = i;
            keys[nk].prefix = prefix;
            keys[nk].ndigits = nd;
            nk++;
        }
    }
    qsort(keys, nk, sizeof *keys, cmp_seqkey);
    in_seq = calloc(n > 0 ? n : 1, 1);
    if (in_seq == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t lo = 0; lo < nk;) {
        size_t hi = lo + 1;
        while (hi < nk && strcmp(keys[hi].key, keys[lo].key) == 0) {
            hi++;
        }
        for (size_t k = lo; k < hi && hi - lo >= 2; k++) {
            in_seq[keys[k].idx] = 1;
        }
        lo = hi;
    }
    /* Videos, audio and lone images, in path order; sequences after. */
    for (size_t i = 0; i < n; i++) {
        if (files[i].probe == NULL || in_seq[i]) {
            continue;
        }
        const char *t = probe_type(files[i].probe);
        if (strcmp(t, "video") == 0 || strcmp(t, "audio") == 0 || strcmp(t, "image") == 0) {
            if (clip_new(clips, base_name(files[i].path), root, files[i].path, files[i].xxh3,
                         files[i].probe) == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "out of memory");
                goto out;
            }
        }
    }
    for (size_t lo = 0; lo < nk;) {
        size_t hi = lo + 1;
        while (hi < nk && strcmp(keys[hi].key, keys[lo].key) == 0) {
            hi++;
        }
        if (hi - lo >= 2) {
            rc = clip_sequence(clips, root, files, keys, lo, hi, e);
            if (rc != RS_OK) {
                goto out;
            }
        }
        lo = hi;
    }
out:
    for (size_t i = 0; i < nk; i++) {
        free(keys[i].key);
    }
    free(keys);
    free(in_seq);
    return rc;
}

/* ---- manifest naming and writing ---- */

static void safe_name(const char *in, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; in[i] != '\0' && j + 1 < outlen && j < 64; i++) {
        char c = in[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '.' || c == '_';
        out[j++] = ok ? c : '_';
    }
    if (j == 0 && outlen > 4) {
        memcpy(out, "root", 4);
        j = 4;
    }
    out[j] = '\0';
}

/*
 * Looks for a manifest an earlier finalize of this job wrote ("0001_<root>_
 * <YYYY-MM-DD_HHMMSS>Z.mhl"); on a hit copies its name and returns its time.
 */
static int find_previous(const char *dir, const char *rootname, char *name, size_t namelen,
                         time_t *when)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return 0;
    }
    char prefix[128];
    snprintf(prefix, sizeof prefix, "0001_%s_", rootname);
    size_t pl = strlen(prefix);
    int found = 0;
    const struct dirent *de = NULL;
    for (;;) {
        de = readdir(d);
        if (de == NULL) {
            break;
        }
        const char *f = de->d_name;
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        /* strlen("YYYY-MM-DD_HHMMSSZ.mhl") == 22 */
        if (strncmp(f, prefix, pl) != 0 || strlen(f) != pl + 22 ||
            strcmp(f + pl + 17, "Z.mhl") != 0) {
            continue;
        }
        const char *end = strptime(f + pl, "%Y-%m-%d_%H%M%S", &tm);
        if (end == NULL || *end != 'Z') {
            continue;
        }
        if (!found || strcmp(f, name) < 0) {
            snprintf(name, namelen, "%s", f);
            *when = timegm(&tm);
            found = 1;
        }
    }
    closedir(d);
    return found;
}

static rs_err write_mhl(const char *path, const task_env *env, time_t when, const mfile *files,
                        size_t n, char c4[91], rs_error *e)
{
    sbuf b = {0};
    char date[32];
    char host[256];
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (gethostname(host, sizeof host) != 0) {
        snprintf(host, sizeof host, "unknown");
    }
    host[sizeof host - 1] = '\0';

    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    sb_printf(&b, "<hashlist version=\"2.0\" xmlns=\"urn:ASC:MHL:v2.0\">\n");
    sb_printf(&b, "  <creatorinfo>\n    <creationdate>%s</creationdate>\n", date);
    sb_printf(&b, "    <hostname>");
    sb_xml(&b, host);
    sb_printf(&b, "</hostname>\n    <tool version=\"%s\">%s</tool>\n", MHL_TOOL_VERSION,
              MHL_TOOL_NAME);
    sb_printf(&b, "    <comment>rushes ingest: project ");
    sb_xml(&b, env->project != NULL ? env->project : "");
    sb_printf(&b, ", job %lld</comment>\n  </creatorinfo>\n", (long long)env->job_id);
    sb_printf(&b, "  <processinfo>\n    <process>in-place</process>\n    <ignore>\n"
                  "      <pattern>.*</pattern>\n      <pattern>ascmhl</pattern>\n"
                  "      <pattern>ascmhl/</pattern>\n    </ignore>\n  </processinfo>\n");
    if (n > 0) {
        sb_printf(&b, "  <hashes>\n");
        for (size_t i = 0; i < n; i++) {
            sb_printf(&b, "    <hash>\n      <path size=\"%.0f\" lastmodificationdate=\"",
                      files[i].size);
            sb_xml(&b, files[i].mtime);
            sb_printf(&b, "\">");
            sb_xml(&b, files[i].path);
            sb_printf(&b, "</path>\n      <xxh3 action=\"original\" hashdate=\"%s\">%s</xxh3>\n"
                          "    </hash>\n",
                      date, files[i].xxh3);
        }
        sb_printf(&b, "  </hashes>\n");
    }
    sb_printf(&b, "</hashlist>\n");
    if (b.failed) {
        free(b.p);
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory building the manifest", path);
    }
    mhl_c4_id(b.p, b.len, c4);
    rs_err rc = rs_fs_write_atomic(path, b.p, b.len, e);
    free(b.p);
    return rc;
}

static rs_err write_chain(const char *path, const char *mhl_name, const char *c4, rs_error *e)
{
    sbuf b = {0};
    sb_printf(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<ascmhldirectory xmlns=\"urn:ASC:MHL:DIRECTORY:v2.0\">\n"
                  "  <hashlist sequencenr=\"1\">\n    <path>");
    sb_xml(&b, mhl_name);
    sb_printf(&b, "</path>\n    <c4>%s</c4>\n  </hashlist>\n</ascmhldirectory>\n", c4);
    if (b.failed) {
        free(b.p);
        return rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
    }
    rs_err rc = rs_fs_write_atomic(path, b.p, b.len, e);
    free(b.p);
    return rc;
}

static int name_ok(const char *s)
{
    if (s == NULL || s[0] == '\0' || s[0] == '.' || strlen(s) > 64) {
        return 0;
    }
    for (; *s != '\0'; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_')) {
            return 0;
        }
    }
    return 1;
}

rs_err ingest_finalize(const cJSON *params, const cJSON *results, const task_env *env,
                       cJSON **job_result, cJSON **clips_out, rs_error *e)
{
    (void)params;
    const char *root = NULL;
    mfile *files = NULL;
    size_t n = 0;
    cJSON *clips = NULL;
    cJSON *res = NULL;
    char dir[PATH_MAX];
    char mhl_path[PATH_MAX + 128];
    char chain_path[PATH_MAX + 32];
    char name[256];
    char rootname[80];
    char c4[91];

    if (env == NULL || env->data_dir == NULL || !name_ok(env->project)) {
        return rs_error_set(e, RS_EINVAL, "ingest finalize: needs data_dir and a valid project");
    }
    rs_err rc = collect(results, &root, &files, &n, e);
    if (rc != RS_OK) {
        return rc;
    }
    clips = cJSON_CreateArray();
    res = cJSON_CreateObject();
    if (clips == NULL || res == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    rc = make_clips(root, files, n, clips, e);
    if (rc != RS_OK) {
        goto out;
    }
    int dn = snprintf(dir, sizeof dir, "%s/mhl/%s/job-%lld/ascmhl", env->data_dir, env->project,
                      (long long)env->job_id);
    if (dn < 0 || (size_t)dn >= sizeof dir) {
        rc = rs_error_set(e, RS_EINVAL, "%s: data_dir path too long", env->data_dir);
        goto out;
    }
    rc = rs_fs_mkdirs(dir, e);
    if (rc != RS_OK) {
        goto out;
    }
    safe_name(base_name(root), rootname, sizeof rootname);
    time_t when = 0;
    if (!find_previous(dir, rootname, name, sizeof name, &when)) {
        when = (time_t)(rs_clock_wall_ms() / 1000);
        struct tm tm;
        char stamp[32];
        gmtime_r(&when, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%d_%H%M%S", &tm);
        snprintf(name, sizeof name, "0001_%s_%sZ.mhl", rootname, stamp);
    }
    snprintf(mhl_path, sizeof mhl_path, "%s/%s", dir, name);
    snprintf(chain_path, sizeof chain_path, "%s/ascmhl_chain.xml", dir);
    rc = write_mhl(mhl_path, env, when, files, n, c4, e);
    if (rc != RS_OK) {
        goto out;
    }
    rc = write_chain(chain_path, name, c4, e);
    if (rc != RS_OK) {
        goto out;
    }
    double bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += files[i].size;
    }
    cJSON_AddStringToObject(res, "root", root);
    cJSON_AddNumberToObject(res, "files", (double)n);
    cJSON_AddNumberToObject(res, "bytes", bytes);
    cJSON_AddNumberToObject(res, "clips", cJSON_GetArraySize(clips));
    cJSON_AddStringToObject(res, "mhl", mhl_path);
    *job_result = res;
    *clips_out = clips;
    res = NULL;
    clips = NULL;
out:
    cJSON_Delete(res);
    cJSON_Delete(clips);
    free(files);
    return rc;
}

/* ---- reading a manifest back ---- */

typedef enum xml_kind { XML_OPEN, XML_CLOSE, XML_EMPTY, XML_TEXT, XML_END } xml_kind;

typedef struct xml_tok {
    xml_kind kind;
    const char *name; /* local name (namespace prefix dropped) */
    size_t nlen;
    const char *attrs;
    size_t alen;
    const char *text;
    size_t tlen;
} xml_tok;

static const char *find_str(const char *p, const char *end, const char *needle)
{
    size_t nl = strlen(needle);
    for (; p + nl <= end; p++) {
        if (memcmp(p, needle, nl) == 0) {
            return p;
        }
    }
    return NULL;
}

/* Next token from buf[*pos..len). Returns 0, or -1 on malformed markup. */
static int xml_next(const char *buf, size_t len, size_t *pos, xml_tok *t)
{
    const char *end = buf + len;
    for (;;) {
        const char *p = buf + *pos;
        memset(t, 0, sizeof *t);
        if (p >= end) {
            t->kind = XML_END;
            return 0;
        }
        if (*p != '<') {
            const char *q = memchr(p, '<', (size_t)(end - p));
            if (q == NULL) {
                q = end;
            }
            t->kind = XML_TEXT;
            t->text = p;
            t->tlen = (size_t)(q - p);
            *pos = (size_t)(q - buf);
            return 0;
        }
        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *q = find_str(p + 4, end, "-->");
            if (q == NULL) {
                return -1;
            }
            *pos = (size_t)(q + 3 - buf);
            continue;
        }
        if (end - p >= 2 && (p[1] == '?' || p[1] == '!')) {
            const char *q = memchr(p, '>', (size_t)(end - p));
            if (q == NULL) {
                return -1;
            }
            *pos = (size_t)(q + 1 - buf);
            continue;
        }
        const char *q = p + 1;
        t->kind = XML_OPEN;
        if (q < end && *q == '/') {
            t->kind = XML_CLOSE;
            q++;
        }
        const char *ns = q;
        while (q < end && *q != '>' && *q != '/' && *q != ' ' && *q != '\t' && *q != '\n' &&
               *q != '\r') {
            q++;
        }
        if (q >= end || q == ns) {
            return -1;
        }
        const char *colon = memchr(ns, ':', (size_t)(q - ns));
        t->name = colon != NULL ? colon + 1 : ns;
        t->nlen = (size_t)(q - t->name);
        const char *a = q;
        const char *gt = a;
        char quote = 0;
        while (gt < end && (quote != 0 || *gt != '>')) {
            if (quote == 0 && (*gt == '"' || *gt == '\'')) {
                quote = *gt;
            } else if (quote != 0 && *gt == quote) {
                quote = 0;
            }
            gt++;
        }
        if (gt >= end) {
            return -1;
        }
        if (gt > a && gt[-1] == '/') {
            t->kind = XML_EMPTY;
            t->attrs = a;
            t->alen = (size_t)(gt - 1 - a);
        } else {
            t->attrs = a;
            t->alen = (size_t)(gt - a);
        }
        *pos = (size_t)(gt + 1 - buf);
        return 0;
    }
}

static int tok_is(const xml_tok *t, const char *name)
{
    return t->nlen == strlen(name) && memcmp(t->name, name, t->nlen) == 0;
}

/* Decodes XML text (predefined entities, &#N; / &#xN; ASCII only) into out. */
static int xml_unescape(const char *s, size_t n, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '&') {
            const char *semi = memchr(s + i, ';', n - i);
            if (semi == NULL || semi - (s + i) > 10) {
                return -1;
            }
            size_t el = (size_t)(semi - (s + i)) + 1;
            if (el == 5 && memcmp(s + i, "&amp;", 5) == 0) {
                c = '&';
            } else if (el == 4 && memcmp(s + i, "&lt;", 4) == 0) {
                c = '<';
            } else if (el == 4 && memcmp(s + i, "&gt;", 4) == 0) {
                c = '>';
            } else if (el == 6 && memcmp(s + i, "&quot;", 6) == 0) {
                c = '"';
            } else if (el == 6 && memcmp(s + i, "&apos;", 6) == 0) {
                c = '\'';
            } else if (el >= 4 && s[i + 1] == '#') {
                char num[12];
                snprintf(num, sizeof num, "%.*s", (int)(el - 3), s + i + 2);
                char *endp = NULL;
                long v = num[0] == 'x' ? strtol(num + 1, &endp, 16) : strtol(num, &endp, 10);
                if (endp == NULL || *endp != '\0' || v <= 0 || v > 127) {
                    return -1;
                }
                c = (char)v;
            } else {
                return -1;
            }
            i += el - 1;
        }
        if (j + 1 >= outlen) {
            return -1;
        }
        out[j++] = c;
    }
    out[j] = '\0';
    return 0;
}

/* Value of attribute name in attrs, unescaped into out; 0 if found. */
static int xml_attr(const char *attrs, size_t alen, const char *name, char *out, size_t outlen)
{
    const char *end = attrs + alen;
    size_t nl = strlen(name);
    const char *p = attrs;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
            p++;
        }
        const char *ks = p;
        while (p < end && *p != '=' && *p != ' ') {
            p++;
        }
        const char *ke = p;
        while (p < end && *p == ' ') {
            p++;
        }
        if (p >= end || *p != '=') {
            return -1;
        }
        p++;
        while (p < end && *p == ' ') {
            p++;
        }
        if (p >= end || (*p != '"' && *p != '\'')) {
            return -1;
        }
        char q = *p++;
        const char *vs = p;
        while (p < end && *p != q) {
            p++;
        }
        if (p >= end) {
            return -1;
        }
        const char *ve = p++;
        if ((size_t)(ke - ks) == nl && memcmp(ks, name, nl) == 0) {
            return xml_unescape(vs, (size_t)(ve - vs), out, outlen);
        }
    }
    return -1;
}

typedef struct mhl_entry {
    char path[PATH_MAX];
    char size[32];
    char xxh3[40];
    char xxh64[40];
    int have_path;
} mhl_entry;

static rs_err verify_entry(const char *mhl_path, const char *root, const mhl_entry *m,
                           rs_error *e)
{
    if (!m->have_path || !ingest_relpath_ok(m->path)) {
        return rs_error_set(e, RS_EFORMAT, "%s: <hash> without a safe relative <path>",
                            mhl_path);
    }
    char full[PATH_MAX * 2];
    snprintf(full, sizeof full, "%s/%s", root, m->path);
    uint64_t want = 0;
    int use64 = 0;
    if (m->xxh3[0] != '\0') {
        if (!rs_hash_parse_hex(m->xxh3, &want)) {
            return rs_error_set(e, RS_EFORMAT, "%s: %s: bad xxh3 value", mhl_path, m->path);
        }
    } else if (m->xxh64[0] != '\0') {
        if (!rs_hash_parse_hex(m->xxh64, &want)) {
            return rs_error_set(e, RS_EFORMAT, "%s: %s: bad xxh64 value", mhl_path, m->path);
        }
        use64 = 1;
    } else {
        return rs_error_set(e, RS_EFORMAT, "%s: %s: no xxh3 or xxh64 hash", mhl_path, m->path);
    }
    rs_file_hash h;
    rs_err rc = rs_hash_file(full, use64, &h, e);
    if (rc == RS_ENOENT) {
        return rs_error_set(e, RS_ENOENT, "%s: missing (listed in the MHL)", full);
    }
    if (rc != RS_OK) {
        return rc;
    }
    if (m->size[0] != '\0') {
        char *endp = NULL;
        unsigned long long sz = strtoull(m->size, &endp, 10);
        if (endp == NULL || *endp != '\0') {
            return rs_error_set(e, RS_EFORMAT, "%s: %s: bad size attribute", mhl_path, m->path);
        }
        if (sz != h.size) {
            return rs_error_set(e, RS_EIO, "%s: size %llu differs from the MHL's %llu", full,
                                (unsigned long long)h.size, sz);
        }
    }
    uint64_t got = use64 ? h.xxh64 : h.xxh3;
    if (got != want) {
        char a[RS_HASH_HEX_LEN];
        char b[RS_HASH_HEX_LEN];
        rs_hash_hex(got, a);
        rs_hash_hex(want, b);
        return rs_error_set(e, RS_EIO, "%s: %s %s differs from the MHL's %s", full,
                            use64 ? "xxh64" : "xxh3", a, b);
    }
    return RS_OK;
}

rs_err mhl_verify(const char *mhl_path, const char *root, size_t *nverified, rs_error *e)
{
    char *buf = NULL;
    size_t len = 0;
    size_t count = 0;
    mhl_entry *m = NULL;
    rs_err rc = rs_fs_read_all(mhl_path, MHL_MAX_BYTES, &buf, &len, e);
    if (rc != RS_OK) {
        return rc;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL) {
        free(buf);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    size_t pos = 0;
    int in_hash = 0;
    int saw_root = 0;
    char *field = NULL; /* where the next text token goes */
    size_t field_len = 0;
    for (;;) {
        xml_tok t;
        if (xml_next(buf, len, &pos, &t) != 0) {
            rc = rs_error_set(e, RS_EFORMAT, "%s: malformed XML near byte %zu", mhl_path, pos);
            goto out;
        }
        if (t.kind == XML_END) {
            break;
        }
        if (t.kind == XML_OPEN && !saw_root) {
            if (!tok_is(&t, "hashlist")) {
                rc = rs_error_set(e, RS_EFORMAT, "%s: root element is not <hashlist>", mhl_path);
                goto out;
            }
            saw_root = 1;
            continue;
        }
        if (t.kind == XML_OPEN && tok_is(&t, "hash")) {
            memset(m, 0, sizeof *m);
            in_hash = 1;
        } else if (t.kind == XML_OPEN && in_hash && tok_is(&t, "path")) {
            field = m->path;
            field_len = sizeof m->path;
            m->have_path = 1;
            char sz[32];
            if (xml_attr(t.attrs, t.alen, "size", sz, sizeof sz) == 0) {
                snprintf(m->size, sizeof m->size, "%s", sz);
            }
        } else if (t.kind == XML_OPEN && in_hash && tok_is(&t, "xxh3")) {
            field = m->xxh3;
            field_len = sizeof m->xxh3;
        } else if (t.kind == XML_OPEN && in_hash && tok_is(&t, "xxh64")) {
            field = m->xxh64;
            field_len = sizeof m->xxh64;
        } else if (t.kind == XML_TEXT && field != NULL) {
            if (xml_unescape(t.text, t.tlen, field, field_len) != 0) {
                rc = rs_error_set(e, RS_EFORMAT, "%s: bad or over-long text near byte %zu",
                                  mhl_path, pos);
                goto out;
            }
        } else if (t.kind == XML_CLOSE && in_hash && tok_is(&t, "hash")) {
            in_hash = 0;
            rc = verify_entry(mhl_path, root, m, e);
            if (rc != RS_OK) {
                goto out;
            }
            count++;
        }
        if (t.kind == XML_CLOSE || t.kind == XML_EMPTY) {
            field = NULL;
        }
    }
    if (!saw_root) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: no <hashlist> element", mhl_path);
        goto out;
    }
    if (in_hash) {
        rc = rs_error_set(e, RS_EFORMAT, "%s: truncated inside a <hash>", mhl_path);
        goto out;
    }
out:
    free(m);
    free(buf);
    if (nverified != NULL) {
        *nverified = count;
    }
    return rc;
}
