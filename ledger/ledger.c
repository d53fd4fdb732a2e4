/*
 * ledger.c: the hash-chained, signed event log, its project keys, its JSON
 * lines export and the offline verifier.
 *
 * An event's hash binds everything a reader relies on: BLAKE2b-256 over
 * "rushes-ledger/1\0", the project name and a NUL, seq (8 bytes big-endian),
 * the previous hash (32 bytes; zeros for seq 1) and the canonical payload.
 * The Ed25519 signature is over that hash. So an edited payload breaks the
 * hash, a re-hashed edit breaks the signature, a deleted or moved event
 * breaks seq and prev, and the signed end record of an export (count and
 * head) catches a truncated file. The verifier uses only the export text and
 * a public key: no database, no farm.
 */
#include "ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "fs.h"
#include "sha256.h"

#define LEDGER_DOMAIN "rushes-ledger/1"
#define LEDGER_END_DOMAIN "rushes-ledger-end/1"
#define LEDGER_MAX_LINE (16u << 20)

struct ledger {
    sqlite3 *db;
    char *data_dir;
};

/* ---- keys and hashes ---------------------------------------------------- */

static bool project_name_ok(const char *p)
{
    size_t n = p != NULL ? strlen(p) : 0;
    if (n == 0 || n > 128 || p[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

void ledger_hex(const unsigned char *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static bool unhex(const char *s, size_t slen, unsigned char *out, size_t n)
{
    if (slen != 2 * n) {
        return false;
    }
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0) {
            return false;
        }
        if (i % 2 == 0) {
            out[i / 2] = (unsigned char)(v << 4);
        } else {
            out[i / 2] |= (unsigned char)v;
        }
    }
    return true;
}

/* unhex for the verifier: lower-case only, as the exporter writes, so a
 * hash or signature has exactly one accepted spelling. */
static bool lowhex(const char *s, unsigned char *out, size_t n)
{
    size_t len = strlen(s);
    return strspn(s, "0123456789abcdef") == len && unhex(s, len, out, n);
}

rs_err ledger_pubkey_parse(const char *text, unsigned char pk[32], rs_error *e)
{
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r') {
        text++;
    }
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\n' || text[n - 1] == '\r' ||
                     text[n - 1] == '\t')) {
        n--;
    }
    if (!unhex(text, n, pk, 32)) {
        return rs_error_set(e, RS_EINVAL, "public key: expected 64 hex digits");
    }
    return RS_OK;
}

rs_err ledger_pubkey_load(const char *file_or_hex, unsigned char pk[32], rs_error *e)
{
    if (ledger_pubkey_parse(file_or_hex, pk, NULL) == RS_OK) {
        return RS_OK;
    }
    char *buf = NULL;
    size_t len = 0;
    rs_err rc = rs_fs_read_all(file_or_hex, 4096, &buf, &len, NULL);
    if (rc != RS_OK) {
        return rs_error_set(e, rc,
                            "public key '%.80s': neither 64 hex digits nor a readable key file",
                            file_or_hex);
    }
    rc = ledger_pubkey_parse(buf, pk, NULL);
    free(buf);
    if (rc != RS_OK) {
        return rs_error_set(e, RS_EINVAL, "%s: not a public key (expected 64 hex digits)",
                            file_or_hex);
    }
    return RS_OK;
}

void ledger_hash_bytes(const void *p, size_t n, char out[LEDGER_HEX])
{
    unsigned char h[32];
    ledger_sha256 st;
    ledger_sha256_init(&st);
    ledger_sha256_update(&st, p, n);
    ledger_sha256_final(&st, h);
    ledger_hex(h, sizeof h, out);
}

rs_err ledger_hash_file(const char *path, char out[LEDGER_HEX], rs_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return rs_error_set(e, errno == ENOENT ? RS_ENOENT : RS_EIO, "%s: %s", path,
                            strerror(errno));
    }
    ledger_sha256 st;
    ledger_sha256_init(&st);
    static const size_t chunk = 1u << 20;
    unsigned char *buf = malloc(chunk);
    rs_err rc = RS_OK;
    if (buf == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, chunk);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = rs_error_set(e, RS_EIO, "%s: read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        ledger_sha256_update(&st, buf, (size_t)n);
    }
    unsigned char h[32];
    ledger_sha256_final(&st, h);
    ledger_hex(h, sizeof h, out);
out:
    free(buf);
    close(fd);
    return rc;
}

rs_err ledger_read_hashed(const char *path, size_t cap, char **out, size_t *outlen,
                          char hash[LEDGER_HEX], rs_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return rs_error_set(e, RS_ENOENT, "%s: no such file", path);
        }
        return rs_error_set(e, RS_EIO, "%s: %s", path, strerror(errno));
    }
    rs_err rc = RS_OK;
    char *buf = NULL;
    struct stat sb;
    size_t alloc = 0, size = 0;
    if (fstat(fd, &sb) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    /* Sized by fstat (one allocation, no regrowth copies); a file that
     * grows while read still reads whole, up to cap. */
    alloc = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (size_t)sb.st_size : 65536;
    if (alloc > cap) {
        rc = rs_error_set(e, RS_ETOOBIG, "%s: larger than %zu bytes", path, cap);
        goto out;
    }
    buf = malloc(alloc + 1);
    if (buf == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    ledger_sha256 st;
    ledger_sha256_init(&st);
    /* Read in pieces that stay in cache and hash each one at once, so the
     * bytes are not fetched from memory a second time for the hash. */
    const size_t piece = (size_t)256 << 10;
    for (;;) {
        if (size == alloc) {
            /* At the size fstat gave: one byte tells the end from a file
             * that grew (regrowing only then). */
            char probe;
            ssize_t n = read(fd, &probe, 1);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                rc = rs_error_set(e, RS_EIO, "%s: read error", path);
                goto out;
            }
            if (n == 0) {
                break;
            }
            if (alloc >= cap) {
                rc = rs_error_set(e, RS_ETOOBIG, "%s: larger than %zu bytes", path, cap);
                goto out;
            }
            size_t na = alloc * 2 < cap ? alloc * 2 : cap;
            char *nb = realloc(buf, na + 1);
            if (nb == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
            alloc = na;
            buf[size] = probe;
            ledger_sha256_update(&st, buf + size, 1);
            size++;
            continue;
        }
        size_t want = alloc - size < piece ? alloc - size : piece;
        ssize_t n = read(fd, buf + size, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = rs_error_set(e, RS_EIO, "%s: read error", path);
            goto out;
        }
        if (n == 0) {
            break;
        }
        ledger_sha256_update(&st, buf + size, (size_t)n);
        size += (size_t)n;
    }
    unsigned char h[32];
    ledger_sha256_final(&st, h);
    ledger_hex(h, sizeof h, hash);
    buf[size] = '\0';
    *out = buf;
    buf = NULL;
    if (outlen != NULL) {
        *outlen = size;
    }
out:
    free(buf);
    close(fd);
    return rc;
}

static void key_path(const char *data_dir, const char *project, char *out, size_t n)
{
    snprintf(out, n, "%s/ledger/keys/%s.key", data_dir, project);
}

rs_err ledger_key_load(const char *data_dir, const char *project, bool create, ledger_key *out,
                       rs_error *e)
{
    if (sodium_init() < 0) {
        return rs_error_set(e, RS_EIO, "libsodium: init failed");
    }
    if (!project_name_ok(project)) {
        return rs_error_set(e, RS_EINVAL, "project: '%.64s' is not a valid project name",
                            project != NULL ? project : "");
    }
    char path[4096];
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ledger/keys", data_dir);
    key_path(data_dir, project, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        rs_err rc = rs_fs_mkdirs(dir, e);
        if (rc != RS_OK) {
            return rc;
        }
        chmod(dir, 0700);
        ledger_key k;
        crypto_sign_keypair(k.pk, k.sk);
        /* O_EXCL: two creators never both write; the loser reads the winner's. */
        int wfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (wfd >= 0) {
            ssize_t w = write(wfd, k.sk, sizeof k.sk);
            int sync_rc = fsync(wfd);
            close(wfd);
            if (w != (ssize_t)sizeof k.sk || sync_rc != 0) {
                unlink(path);
                ledger_key_wipe(&k);
                return rs_error_set(e, RS_EIO, "key for project %s: could not write it", project);
            }
        } else if (errno != EEXIST) {
            ledger_key_wipe(&k);
            return rs_error_set(e, RS_EIO, "key for project %s: %s", project, strerror(errno));
        }
        ledger_key_wipe(&k);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0) {
        return rs_error_set(e, errno == ENOENT ? RS_ENOENT : RS_EIO, "key for project %s: %s",
                            project, strerror(errno));
    }
    struct stat sb;
    rs_err rc = RS_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = rs_error_set(e, RS_EIO, "key for project %s: not a regular file", project);
        goto out;
    }
    if ((sb.st_mode & 077) != 0) {
        rc = rs_error_set(e, RS_EPERM,
                          "key for project %s: readable by group or others (mode %03o); "
                          "refusing to use it (chmod 600)",
                          project, (unsigned)(sb.st_mode & 0777));
        goto out;
    }
    ssize_t n = read(fd, out->sk, sizeof out->sk);
    if (n != (ssize_t)sizeof out->sk) {
        rc = rs_error_set(e, RS_EFORMAT, "key for project %s: not a 64-byte Ed25519 key", project);
        goto out;
    }
    crypto_sign_ed25519_sk_to_pk(out->pk, out->sk);
out:
    close(fd);
    return rc;
}

void ledger_key_wipe(ledger_key *k)
{
    if (k != NULL) {
        sodium_memzero(k, sizeof *k);
    }
}

/* ---- canonical JSON ----------------------------------------------------- */

static int cmp_keys(const void *a, const void *b)
{
    const cJSON *x = *(const cJSON *const *)a;
    const cJSON *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

/* Deep copy with every object's members sorted by key. */
static cJSON *sorted_copy(const cJSON *v)
{
    if (cJSON_IsObject(v)) {
        int n = cJSON_GetArraySize(v);
        const cJSON **items = calloc((size_t)(n > 0 ? n : 1), sizeof *items);
        cJSON *o = cJSON_CreateObject();
        if (items == NULL || o == NULL) {
            free(items);
            cJSON_Delete(o);
            return NULL;
        }
        int i = 0;
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, v)
        {
            items[i++] = it;
        }
        qsort(items, (size_t)n, sizeof *items, cmp_keys);
        for (i = 0; i < n; i++) {
            cJSON *c = sorted_copy(items[i]);
            if (c == NULL) {
                free(items);
                cJSON_Delete(o);
                return NULL;
            }
            cJSON_AddItemToObject(o, items[i]->string, c);
        }
        free(items);
        return o;
    }
    if (cJSON_IsArray(v)) {
        cJSON *a = cJSON_CreateArray();
        const cJSON *it = NULL;
        cJSON_ArrayForEach(it, v)
        {
            cJSON *c = sorted_copy(it);
            if (c == NULL) {
                cJSON_Delete(a);
                return NULL;
            }
            cJSON_AddItemToArray(a, c);
        }
        return a;
    }
    return cJSON_Duplicate(v, true);
}

char *ledger_json_canonical(const cJSON *v)
{
    cJSON *c = sorted_copy(v);
    if (c == NULL) {
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return text;
}

static void event_hash(const char *project, int64_t seq, const unsigned char prev[32],
                       const char *payload, unsigned char out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const unsigned char *)LEDGER_DOMAIN, sizeof LEDGER_DOMAIN);
    crypto_generichash_update(&st, (const unsigned char *)project, strlen(project) + 1);
    unsigned char be[8];
    for (int i = 0; i < 8; i++) {
        be[i] = (unsigned char)((uint64_t)seq >> (56 - 8 * i));
    }
    crypto_generichash_update(&st, be, 8);
    crypto_generichash_update(&st, prev, 32);
    crypto_generichash_update(&st, (const unsigned char *)payload, strlen(payload));
    crypto_generichash_final(&st, out, 32);
}

static void end_hash(const char *project, int64_t count, const unsigned char head[32],
                     unsigned char out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const unsigned char *)LEDGER_END_DOMAIN,
                              sizeof LEDGER_END_DOMAIN);
    crypto_generichash_update(&st, (const unsigned char *)project, strlen(project) + 1);
    unsigned char be[8];
    for (int i = 0; i < 8; i++) {
        be[i] = (unsigned char)((uint64_t)count >> (56 - 8 * i));
    }
    crypto_generichash_update(&st, be, 8);
    crypto_generichash_update(&st, head, 32);
    crypto_generichash_final(&st, out, 32);
}

/* ---- events ------------------------------------------------------------- */

rs_err ledger_open(sqlite3 *db, const char *data_dir, ledger **out, rs_error *e)
{
    if (sodium_init() < 0) {
        return rs_error_set(e, RS_EIO, "libsodium: init failed");
    }
    ledger *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    l->db = db;
    l->data_dir = strdup(data_dir);
    if (l->data_dir == NULL) {
        free(l);
        return rs_error_set(e, RS_ENOMEM, "out of memory");
    }
    *out = l;
    return RS_OK;
}

void ledger_close(ledger *l)
{
    if (l == NULL) {
        return;
    }
    free(l->data_dir);
    free(l);
}

const char *ledger_data_dir(const ledger *l)
{
    return l->data_dir;
}

/* Internal to the module (consent.c). */
sqlite3 *ledger_db(ledger *l);

sqlite3 *ledger_db(ledger *l)
{
    return l->db;
}

static rs_err db_fail(ledger *l, const char *what, rs_error *e)
{
    return rs_error_set(e, RS_EDB, "ledger: %s: %s", what, sqlite3_errmsg(l->db));
}

/* Internal to the ledger module (consent.c uses it too). */
rs_err ledger_sp_begin(sqlite3 *db, rs_error *e);
rs_err ledger_sp_end(sqlite3 *db, rs_err rc, rs_error *e);
rs_err ledger_project_id(sqlite3 *db, const char *project, bool create, int64_t now_ms, int64_t *id,
                         rs_error *e);

rs_err ledger_sp_begin(sqlite3 *db, rs_error *e)
{
    if (sqlite3_exec(db, "SAVEPOINT ledger", NULL, NULL, NULL) != SQLITE_OK) {
        return rs_error_set(e, RS_EDB, "ledger: savepoint: %s", sqlite3_errmsg(db));
    }
    return RS_OK;
}

rs_err ledger_sp_end(sqlite3 *db, rs_err rc, rs_error *e)
{
    if (rc != RS_OK) {
        sqlite3_exec(db, "ROLLBACK TO ledger; RELEASE ledger", NULL, NULL, NULL);
        return rc;
    }
    if (sqlite3_exec(db, "RELEASE ledger", NULL, NULL, NULL) != SQLITE_OK) {
        rc = rs_error_set(e, RS_EDB, "ledger: release: %s", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK TO ledger; RELEASE ledger", NULL, NULL, NULL);
    }
    return rc;
}

rs_err ledger_project_id(sqlite3 *db, const char *project, bool create, int64_t now_ms, int64_t *id,
                         rs_error *e)
{
    sqlite3_stmt *st = NULL;
    rs_err rc = RS_OK;
    if (create) {
        if (sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO project(name, created_at) VALUES(?, ?)",
                               -1, &st, NULL) != SQLITE_OK) {
            return rs_error_set(e, RS_EDB, "ledger: project: %s", sqlite3_errmsg(db));
        }
        sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        int r = sqlite3_step(st);
        sqlite3_finalize(st);
        st = NULL;
        if (r != SQLITE_DONE) {
            return rs_error_set(e, RS_EDB, "ledger: project: %s", sqlite3_errmsg(db));
        }
    }
    if (sqlite3_prepare_v2(db, "SELECT id FROM project WHERE name = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        return rs_error_set(e, RS_EDB, "ledger: project: %s", sqlite3_errmsg(db));
    }
    sqlite3_bind_text(st, 1, project, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
    } else if (r == SQLITE_DONE) {
        rc = rs_error_set(e, RS_ENOENT, "project %s: no such project", project);
    } else {
        rc = rs_error_set(e, RS_EDB, "ledger: project: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return rc;
}

rs_err ledger_append(ledger *l, const char *project, const char *type, const cJSON *fields,
                     int64_t now_ms, int64_t *seq_out, char hash_out[LEDGER_HEX], rs_error *e)
{
    ledger_key key;
    rs_err rc = ledger_key_load(l->data_dir, project, true, &key, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *payload = fields != NULL ? cJSON_Duplicate(fields, true) : cJSON_CreateObject();
    char *text = NULL;
    sqlite3_stmt *st = NULL;
    bool sp = false;
    if (payload == NULL || !cJSON_IsObject(payload)) {
        rc = rs_error_set(e, RS_EINVAL, "ledger event %s: fields must be an object", type);
        goto out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(payload, "type");
    cJSON_DeleteItemFromObjectCaseSensitive(payload, "t");
    cJSON_AddStringToObject(payload, "type", type);
    cJSON_AddNumberToObject(payload, "t", (double)now_ms);
    text = ledger_json_canonical(payload);
    if (text == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    rc = ledger_sp_begin(l->db, e);
    if (rc != RS_OK) {
        goto out;
    }
    sp = true;
    int64_t pid = 0;
    rc = ledger_project_id(l->db, project, true, now_ms, &pid, e);
    if (rc != RS_OK) {
        goto out;
    }
    int64_t seq = 1;
    unsigned char prev[32] = {0};
    if (sqlite3_prepare_v2(l->db,
                           "SELECT seq, hash FROM ledger_event WHERE project_id = ? "
                           "ORDER BY seq DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(l, "last event", e);
        goto out;
    }
    sqlite3_bind_int64(st, 1, pid);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        seq = sqlite3_column_int64(st, 0) + 1;
        const char *h = (const char *)sqlite3_column_text(st, 1);
        if (h == NULL || !unhex(h, strlen(h), prev, 32)) {
            rc = rs_error_set(e, RS_EFORMAT, "ledger of %s: event %" PRId64 " has a bad hash",
                              project, seq - 1);
            goto out;
        }
    } else if (r != SQLITE_DONE) {
        rc = db_fail(l, "last event", e);
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    unsigned char h[32];
    unsigned char sig[64];
    event_hash(project, seq, prev, text, h);
    crypto_sign_detached(sig, NULL, h, sizeof h, key.sk);
    char prev_hex[LEDGER_HEX];
    char hash_hex[LEDGER_HEX];
    char sig_hex[129];
    ledger_hex(prev, 32, prev_hex);
    ledger_hex(h, 32, hash_hex);
    ledger_hex(sig, 64, sig_hex);
    if (sqlite3_prepare_v2(l->db,
                           "INSERT INTO ledger_event(project_id, seq, prev_hash, payload, hash, "
                           "signature, created_at) VALUES(?, ?, ?, ?, ?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(l, "insert event", e);
        goto out;
    }
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_text(st, 3, prev_hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, hash_hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, sig_hex, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, now_ms);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = db_fail(l, "insert event", e);
        goto out;
    }
    if (seq_out != NULL) {
        *seq_out = seq;
    }
    if (hash_out != NULL) {
        memcpy(hash_out, hash_hex, LEDGER_HEX);
    }
out:
    sqlite3_finalize(st);
    if (sp) {
        rc = ledger_sp_end(l->db, rc, e);
    }
    ledger_key_wipe(&key);
    free(text);
    cJSON_Delete(payload);
    return rc;
}

rs_err ledger_events(ledger *l, const char *project, cJSON **out_array, rs_error *e)
{
    int64_t pid = 0;
    rs_err rc = ledger_project_id(l->db, project, false, 0, &pid, e);
    if (rc != RS_OK) {
        return rc;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(l->db,
                           "SELECT seq, prev_hash, payload, hash, signature FROM ledger_event "
                           "WHERE project_id = ? ORDER BY seq",
                           -1, &st, NULL) != SQLITE_OK) {
        return db_fail(l, "events", e);
    }
    sqlite3_bind_int64(st, 1, pid);
    cJSON *arr = cJSON_CreateArray();
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        cJSON *ev = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, ev);
        cJSON_AddNumberToObject(ev, "seq", (double)sqlite3_column_int64(st, 0));
        cJSON_AddStringToObject(ev, "prev", (const char *)sqlite3_column_text(st, 1));
        cJSON *p = cJSON_Parse((const char *)sqlite3_column_text(st, 2));
        cJSON_AddItemToObject(ev, "payload", p != NULL ? p : cJSON_CreateNull());
        cJSON_AddStringToObject(ev, "hash", (const char *)sqlite3_column_text(st, 3));
        cJSON_AddStringToObject(ev, "sig", (const char *)sqlite3_column_text(st, 4));
    }
    if (r != SQLITE_DONE) {
        rc = db_fail(l, "events", e);
        cJSON_Delete(arr);
        arr = NULL;
    }
    sqlite3_finalize(st);
    if (rc == RS_OK) {
        *out_array = arr;
    }
    return rc;
}

/* Growable text buffer for the export. */
typedef struct tbuf {
    char *p;
    size_t n, cap;
    bool oom;
} tbuf;

static void tb_add(tbuf *b, const char *s)
{
    size_t k = strlen(s);
    if (b->oom) {
        return;
    }
    if (b->n + k + 2 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 4096;
        while (b->n + k + 2 > cap) {
            cap *= 2;
        }
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, k);
    b->n += k;
    b->p[b->n++] = '\n';
    b->p[b->n] = '\0';
}

static void tb_add_json(tbuf *b, cJSON *v)
{
    char *t = ledger_json_canonical(v);
    if (t == NULL) {
        b->oom = true;
        return;
    }
    tb_add(b, t);
    free(t);
}

rs_err ledger_export(ledger *l, const char *project, bool record, int64_t now_ms, char **text,
                     size_t *len, rs_error *e)
{
    ledger_key key;
    rs_err rc = ledger_key_load(l->data_dir, project, true, &key, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *events = NULL;
    tbuf b = {0};
    if (record) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "project", project);
        rc = ledger_append(l, project, "export", f, now_ms, NULL, NULL, e);
        cJSON_Delete(f);
        if (rc != RS_OK) {
            goto out;
        }
    }
    rc = ledger_events(l, project, &events, e);
    if (rc == RS_ENOENT) {
        events = cJSON_CreateArray();
        rc = RS_OK;
    }
    if (rc != RS_OK) {
        goto out;
    }
    char pk_hex[LEDGER_HEX];
    ledger_hex(key.pk, 32, pk_hex);
    cJSON *hdr = cJSON_CreateObject();
    cJSON_AddNumberToObject(hdr, "rushes_ledger", 1);
    cJSON_AddStringToObject(hdr, "project", project);
    cJSON_AddStringToObject(hdr, "pubkey", pk_hex);
    tb_add_json(&b, hdr);
    cJSON_Delete(hdr);
    unsigned char head[32] = {0};
    int64_t count = 0;
    const cJSON *ev = NULL;
    cJSON_ArrayForEach(ev, events)
    {
        tb_add_json(&b, (cJSON *)ev);
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(ev, "hash");
        if (!cJSON_IsString(h) || !unhex(h->valuestring, strlen(h->valuestring), head, 32)) {
            rc = rs_error_set(e, RS_EFORMAT, "ledger of %s: stored event has a bad hash", project);
            goto out;
        }
        count++;
    }
    unsigned char eh[32];
    unsigned char sig[64];
    end_hash(project, count, head, eh);
    crypto_sign_detached(sig, NULL, eh, 32, key.sk);
    char head_hex[LEDGER_HEX];
    char sig_hex[129];
    ledger_hex(head, 32, head_hex);
    ledger_hex(sig, 64, sig_hex);
    cJSON *end = cJSON_CreateObject();
    cJSON *endo = cJSON_AddObjectToObject(end, "end");
    cJSON_AddNumberToObject(endo, "count", (double)count);
    cJSON_AddStringToObject(endo, "head", head_hex);
    cJSON_AddStringToObject(end, "sig", sig_hex);
    tb_add_json(&b, end);
    cJSON_Delete(end);
    if (b.oom) {
        rc = rs_error_set(e, RS_ENOMEM, "out of memory");
        goto out;
    }
    *text = b.p;
    *len = b.n;
    b.p = NULL;
out:
    free(b.p);
    cJSON_Delete(events);
    ledger_key_wipe(&key);
    return rc;
}

/* ---- offline verification ----------------------------------------------- */

static const char *str_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool int_field(const cJSON *o, const char *k, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble) {
        return false;
    }
    *out = (int64_t)v->valuedouble;
    return true;
}

/* Whether an event line after pos carries seq (to tell a reordered export
 * from one with events deleted; only on the failure path). */
static bool seq_later(const char *text, size_t pos, size_t len, int64_t seq)
{
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t k = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        cJSON *doc = cJSON_ParseWithLength(text + pos, k);
        int64_t v = 0;
        bool hit = doc != NULL && int_field(doc, "seq", &v) && v == seq;
        cJSON_Delete(doc);
        if (hit) {
            return true;
        }
        pos += k + 1;
    }
    return false;
}

rs_err ledger_verify(const char *text, size_t len, const unsigned char pk[32],
                     ledger_verify_info *info, cJSON **events_out, rs_error *e)
{
    if (sodium_init() < 0) {
        return rs_error_set(e, RS_EIO, "libsodium: init failed");
    }
    ledger_verify_info local;
    if (info == NULL) {
        info = &local;
    }
    memset(info, 0, sizeof *info);
    cJSON *events = events_out != NULL ? cJSON_CreateArray() : NULL;
    rs_err rc = RS_OK;
    char *line = NULL;
    cJSON *doc = NULL;
    size_t pos = 0;
    int lineno = 0;
    bool have_header = false;
    bool have_end = false;
    unsigned char prev[32] = {0};
    int64_t expect = 1;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t k = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (k > LEDGER_MAX_LINE) {
            rc = rs_error_set(e, RS_EFORMAT, "line %d: over %u bytes", lineno, LEDGER_MAX_LINE);
            goto out;
        }
        free(line);
        line = malloc(k + 1);
        if (line == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(line, text + pos, k);
        line[k] = '\0';
        pos += k + (nl != NULL ? 1 : 0);
        if (k == 0) {
            continue;
        }
        if (have_end) {
            rc = rs_error_set(e, RS_EFORMAT, "line %d: data after the end record", lineno);
            goto out;
        }
        cJSON_Delete(doc);
        /* Whole line, nothing after the object, no NUL inside: bytes outside
         * what is hashed and signed would be unaccounted for. */
        doc = strlen(line) == k ? cJSON_ParseWithOpts(line, NULL, true) : NULL;
        if (!cJSON_IsObject(doc)) {
            rc = rs_error_set(e, RS_EFORMAT,
                              "line %d: not a JSON object (export truncated or edited) after "
                              "seq %" PRId64,
                              lineno, expect - 1);
            goto out;
        }
        if (!have_header) {
            int64_t ver = 0;
            const char *proj = str_field(doc, "project");
            const char *hpk = str_field(doc, "pubkey");
            unsigned char hk[32];
            if (!int_field(doc, "rushes_ledger", &ver) || ver != 1 || proj == NULL || hpk == NULL ||
                !lowhex(hpk, hk, 32) || cJSON_GetArraySize(doc) != 3) {
                rc = rs_error_set(e, RS_EFORMAT,
                                  "line 1: not a Rushes ledger export header (rushes_ledger 1)");
                goto out;
            }
            snprintf(info->project, sizeof info->project, "%s", proj);
            info->pubkey_differs = memcmp(hk, pk, 32) != 0;
            have_header = true;
            continue;
        }
        const cJSON *endo = cJSON_GetObjectItemCaseSensitive(doc, "end");
        if (endo != NULL) {
            int64_t count = 0;
            const char *head = str_field(endo, "head");
            const char *sig = str_field(doc, "sig");
            unsigned char hb[32];
            unsigned char sb[64];
            if (!int_field(endo, "count", &count) || head == NULL || sig == NULL ||
                cJSON_GetArraySize(doc) != 2 || cJSON_GetArraySize(endo) != 2 ||
                !lowhex(head, hb, 32) || !lowhex(sig, sb, 64)) {
                rc = rs_error_set(e, RS_EFORMAT, "line %d: malformed end record", lineno);
                goto out;
            }
            if (count != expect - 1) {
                rc = rs_error_set(e, RS_EFORMAT,
                                  "end record: says %" PRId64 " events but the export has %" PRId64
                                  " (events deleted or truncated)",
                                  count, expect - 1);
                goto out;
            }
            if (memcmp(hb, prev, 32) != 0) {
                rc = rs_error_set(
                    e, RS_EFORMAT,
                    "end record: head does not match the last event (seq %" PRId64 ")", expect - 1);
                goto out;
            }
            unsigned char eh[32];
            end_hash(info->project, count, hb, eh);
            if (crypto_sign_verify_detached(sb, eh, 32, pk) != 0) {
                rc = rs_error_set(e, RS_EFORMAT,
                                  "end record: signature does not verify with the given public "
                                  "key");
                goto out;
            }
            have_end = true;
            continue;
        }
        int64_t seq = 0;
        const char *prev_hex = str_field(doc, "prev");
        const char *hash_hex = str_field(doc, "hash");
        const char *sig_hex = str_field(doc, "sig");
        const cJSON *payload = cJSON_GetObjectItemCaseSensitive(doc, "payload");
        unsigned char pb[32];
        unsigned char hb[32];
        unsigned char sb[64];
        if (!int_field(doc, "seq", &seq) || prev_hex == NULL || hash_hex == NULL ||
            sig_hex == NULL || !cJSON_IsObject(payload) || cJSON_GetArraySize(doc) != 5 ||
            !lowhex(prev_hex, pb, 32) || !lowhex(hash_hex, hb, 32) || !lowhex(sig_hex, sb, 64)) {
            rc = rs_error_set(e, RS_EFORMAT,
                              "line %d: malformed event (seq, prev, payload, hash, "
                              "sig)",
                              lineno);
            goto out;
        }
        if (seq > expect) {
            bool later = seq_later(text, pos, len, expect);
            rc = rs_error_set(e, RS_EFORMAT, "line %d: seq %" PRId64 " follows seq %" PRId64 ": %s",
                              lineno, seq, expect - 1,
                              later ? "events reordered" : "event(s) deleted");
            goto out;
        }
        if (seq < expect) {
            rc = rs_error_set(e, RS_EFORMAT,
                              "line %d: seq %" PRId64 " after seq %" PRId64
                              ": events reordered or duplicated",
                              lineno, seq, expect - 1);
            goto out;
        }
        if (memcmp(pb, prev, 32) != 0) {
            rc = rs_error_set(e, RS_EFORMAT,
                              "seq %" PRId64 ": prev hash does not match seq %" PRId64
                              "'s hash (chain broken)",
                              seq, seq - 1);
            goto out;
        }
        char *canon = ledger_json_canonical(payload);
        if (canon == NULL) {
            rc = rs_error_set(e, RS_ENOMEM, "out of memory");
            goto out;
        }
        unsigned char h[32];
        event_hash(info->project, seq, pb, canon, h);
        free(canon);
        if (memcmp(h, hb, 32) != 0) {
            rc = rs_error_set(e, RS_EFORMAT,
                              "seq %" PRId64 ": hash does not match its content (event edited)",
                              seq);
            goto out;
        }
        if (crypto_sign_verify_detached(sb, hb, 32, pk) != 0) {
            rc = rs_error_set(e, RS_EFORMAT,
                              "seq %" PRId64 ": signature does not verify with the given public "
                              "key%s",
                              seq,
                              info->pubkey_differs ? " (the export names another key: signed by "
                                                     "another project or key)"
                                                   : "");
            goto out;
        }
        memcpy(prev, hb, 32);
        expect++;
        info->events = seq;
        ledger_hex(hb, 32, info->head);
        if (events != NULL) {
            cJSON *p = cJSON_Duplicate(payload, true);
            cJSON_AddNumberToObject(p, "event_seq", (double)seq);
            cJSON_AddStringToObject(p, "event_hash", hash_hex);
            cJSON_AddItemToArray(events, p);
        }
    }
    if (!have_header) {
        rc = rs_error_set(e, RS_EFORMAT, "export is empty");
        goto out;
    }
    if (!have_end) {
        rc = rs_error_set(e, RS_EFORMAT,
                          "export truncated: no signed end record after seq %" PRId64, expect - 1);
        goto out;
    }
out:
    free(line);
    cJSON_Delete(doc);
    if (rc == RS_OK && events_out != NULL) {
        *events_out = events;
    } else {
        cJSON_Delete(events);
    }
    return rc;
}
