/*
 * store_test.c: the SQLite store. Open/create/migrate/reopen; every kind of
 * file store_open must refuse, left byte-identical; schema.sql against the
 * migrations; submit and idempotency; DAG waiting and failure propagation;
 * lease order (priority, fair share, age) and worker fit; lease expiry,
 * backoff and exhaustion; duplicate and late reports; cancel, retry, bye;
 * batches with a failing call; finalize with clips; and a throughput check.
 * Time is driven explicitly through now_ms.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

static char dir[PATH_MAX];
static char dbpath[PATH_MAX];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/rs_store_test.XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(dbpath, sizeof dbpath, "%s/rushes.db", dir);
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------ */

static store *open_new(void)
{
    store *s = NULL;
    rs_error e = {0};
    rs_err rc = store_open(dbpath, true, &s, &e);
    cr_assert_eq(rc, RS_OK, "store_open: %s", e.msg);
    return s;
}

typedef struct sub {
    const char *project;
    const char *kind;
    int priority;
    int max_attempts;
    size_t ntasks;
    const int64_t *deps;
    size_t ndeps;
    const char *key;
    const char *pool;
    uint64_t mem;
} sub;

static int64_t submit_x(store *s, sub o, int64_t now, bool *existed_out)
{
    const char *tp[64];
    char buf[64][32];
    if (o.ntasks == 0) {
        o.ntasks = 1;
    }
    cr_assert(o.ntasks <= 64);
    for (size_t i = 0; i < o.ntasks; i++) {
        snprintf(buf[i], sizeof buf[i], "{\"i\":%zu}", i);
        tp[i] = buf[i];
    }
    store_job_spec spec = {
        .project = o.project ? o.project : "demo",
        .kind = o.kind ? o.kind : "noop",
        .params_json = "{\"x\":1}",
        .priority = o.priority,
        .max_attempts = o.max_attempts ? o.max_attempts : 3,
        .depends_on = o.deps,
        .ndepends = o.ndeps,
        .idempotency_key = o.key,
        .task_params_json = tp,
        .ntasks = o.ntasks,
        .pool = o.pool,
        .min_memory_mb = o.mem,
    };
    int64_t id = 0;
    bool existed = true;
    rs_error e = {0};
    rs_err rc = store_job_submit(s, &spec, now, &id, &existed, &e);
    cr_assert_eq(rc, RS_OK, "submit: %s", e.msg);
    if (existed_out != NULL) {
        *existed_out = existed;
    }
    return id;
}

#define SUBMIT(s, now, ...) submit_x((s), (sub){__VA_ARGS__}, (now), NULL)

static int64_t worker(store *s, const char *name)
{
    int64_t id = 0;
    rs_error e = {0};
    cr_assert_eq(
        store_worker_hello(s, name, "", "{\"kinds\":[\"noop\"],\"slots\":1}", 1000, &id, &e), RS_OK,
        "%s", e.msg);
    return id;
}

static const char *noop_kinds[] = {"noop"};
static const store_worker_fit fit_noop = {
    .kinds = noop_kinds, .nkinds = 1, .pool = "", .memory_mb = 4096};

/* Leases with the default fit; returns false when nothing was found. */
static bool lease_fit(store *s, int64_t w, const store_worker_fit *fit, int64_t now, store_lease *l)
{
    bool found = false;
    rs_error e = {0};
    memset(l, 0, sizeof *l);
    cr_assert_eq(store_task_lease(s, w, fit, now, 1000, l, &found, &e), RS_OK, "%s", e.msg);
    return found;
}

static bool lease(store *s, int64_t w, int64_t now, store_lease *l)
{
    return lease_fit(s, w, &fit_noop, now, l);
}

static bool report(store *s, int64_t w, int64_t attempt, bool ok, const char *result, int64_t now)
{
    store_report r = {
        .worker_id = w,
        .attempt_id = attempt,
        .succeeded = ok,
        .exit_code = ok ? 0 : 3,
        .error = ok ? NULL : "boom",
        .result_json = result,
        .result_hash = ok ? "abcd" : NULL,
    };
    bool accepted = false;
    rs_error e = {0};
    cr_assert_eq(store_attempt_report(s, &r, now, 100, &accepted, &e), RS_OK, "%s", e.msg);
    return accepted;
}

static cJSON *job(store *s, int64_t id)
{
    cJSON *j = NULL;
    rs_error e = {0};
    cr_assert_eq(store_job_get(s, id, &j, &e), RS_OK, "%s", e.msg);
    return j;
}

static char *job_text(store *s, int64_t id)
{
    cJSON *j = job(s, id);
    char *t = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return t;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    cr_assert(cJSON_IsNumber(v), "field %s is not a number", name);
    return v->valuedouble;
}

static void expect_job_state(store *s, int64_t id, const char *state)
{
    cJSON *j = job(s, id);
    cr_assert_str_eq(jstr(j, "state"), state, "job %lld", (long long)id);
    cJSON_Delete(j);
}

static const cJSON *task_at(const cJSON *j, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tasks"), i);
}

static void expect_task_state(store *s, int64_t job_id, int i, const char *state)
{
    cJSON *j = job(s, job_id);
    cr_assert_str_eq(jstr(task_at(j, i), "state"), state, "job %lld task %d", (long long)job_id, i);
    cJSON_Delete(j);
}

static void complete(store *s, int64_t id, int64_t now)
{
    rs_error e = {0};
    cr_assert_eq(store_job_complete(s, id, "{}", NULL, now, &e), RS_OK, "%s", e.msg);
}

/* Runs one task to success: lease (must be job_id's) and report. */
static void run_one(store *s, int64_t w, int64_t job_id, int64_t now)
{
    store_lease l;
    cr_assert(lease(s, w, now, &l));
    cr_assert_eq(l.job_id, job_id);
    cr_assert(report(s, w, l.attempt_id, true, "{\"ok\":true}", now));
    free(l.params_json);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    cr_assert_eq(rc, SQLITE_OK, "%s", msg ? msg : "");
    sqlite3_close(db);
}

static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* store_open must fail with code, naming the file and containing what, and
 * leave the file byte-identical. */
static void expect_refused(const char *path, rs_err code, const char *what)
{
    size_t n0 = 0;
    size_t n1 = 0;
    unsigned char *before = slurp(path, &n0);
    store *s = NULL;
    rs_error e = {0};
    rs_err rc = store_open(path, true, &s, &e);
    cr_assert_eq(rc, code, "rc %d (%s), want %d", rc, e.msg, code);
    cr_assert_null(s);
    cr_assert_not_null(strstr(e.msg, path), "message does not name the file: %s", e.msg);
    cr_assert_not_null(strstr(e.msg, what), "message '%s' lacks '%s'", e.msg, what);
    unsigned char *after = slurp(path, &n1);
    cr_assert_eq(n0, n1, "file size changed");
    cr_assert_eq(memcmp(before, after, n0), 0, "file contents changed");
    free(before);
    free(after);
}

/* ---- lifecycle ---------------------------------------------------------- */

Test(store, open_create_migrate_reopen)
{
    store *s = NULL;
    rs_error e = {0};
    cr_assert_eq(store_open(dbpath, false, &s, &e), RS_ENOENT);
    cr_assert_null(s);
    cr_assert_neq(access(dbpath, F_OK), 0, "create_ok=false must not create the file");

    s = open_new();
    int64_t id = SUBMIT(s, 1000, .ntasks = 2);
    store_close(s);

    cr_assert_eq(sql_int(dbpath, "PRAGMA user_version"), store_schema_version());
    cr_assert_eq(sql_int(dbpath, "PRAGMA application_id"), 0x52534844);
    cr_assert_eq(store_schema_version() >= 1, true);

    cr_assert_eq(store_open(dbpath, false, &s, &e), RS_OK, "%s", e.msg);
    cJSON *j = job(s, id);
    cr_assert_str_eq(jstr(j, "state"), "queued");
    cr_assert_eq(jnum(j, "tasks_total"), 2);
    cJSON_Delete(j);
    store_close(s);
    store_close(NULL);

    /* An empty (0-byte) file is an empty database and gets initialised. */
    char p2[PATH_MAX];
    snprintf(p2, sizeof p2, "%s/empty.db", dir);
    FILE *f = fopen(p2, "wb");
    fclose(f);
    cr_assert_eq(store_open(p2, false, &s, &e), RS_OK, "%s", e.msg);
    store_close(s);
    cr_assert_eq(sql_int(p2, "PRAGMA user_version"), store_schema_version());
}

Test(store, state_names_round_trip)
{
    for (int i = STORE_QUEUED; i <= STORE_CANCELLED; i++) {
        cr_assert_eq(store_state_parse(store_state_name((store_state)i)), i);
    }
    cr_assert_str_eq(store_state_name(STORE_RETRY_WAIT), "retry_wait");
    cr_assert_eq(store_state_parse("bogus"), -1);
    cr_assert_eq(store_state_parse(NULL), -1);
}

Test(store, refuses_text_file_unmodified)
{
    FILE *f = fopen(dbpath, "wb");
    for (int i = 0; i < 50; i++) {
        fputs("this is not a database at all, just some text\n", f);
    }
    fclose(f);
    expect_refused(dbpath, RS_EFORMAT, "not a SQLite database");
    /* A short file too. */
    f = fopen(dbpath, "wb");
    fputs("SQLite", f);
    fclose(f);
    expect_refused(dbpath, RS_EFORMAT, "not a SQLite database");
}

Test(store, refuses_foreign_application_id_unmodified)
{
    sql_exec(dbpath, "PRAGMA application_id = 305419896; CREATE TABLE t(x); INSERT INTO t "
                     "VALUES (1);");
    expect_refused(dbpath, RS_EFORMAT, "not a Rushes database (application_id 0x12345678");
    /* Even with no tables, a foreign id is refused. */
    char p2[PATH_MAX];
    snprintf(p2, sizeof p2, "%s/other.db", dir);
    sql_exec(p2, "PRAGMA application_id = 7;");
    expect_refused(p2, RS_EFORMAT, "application_id 0x00000007");
}

Test(store, refuses_unknown_tables_unmodified)
{
    sql_exec(dbpath, "CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT); "
                     "INSERT INTO customers(name) VALUES ('a');");
    expect_refused(dbpath, RS_EFORMAT, "not a Rushes database (application_id 0x00000000");
    /* WAL-mode foreign database too. */
    char p2[PATH_MAX];
    snprintf(p2, sizeof p2, "%s/wal.db", dir);
    sql_exec(p2, "PRAGMA journal_mode = WAL; CREATE TABLE t(x);");
    expect_refused(p2, RS_EFORMAT, "not a Rushes database");
}

Test(store, refuses_newer_schema_unmodified)
{
    store *s = open_new();
    SUBMIT(s, 1000);
    store_close(s);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", store_schema_version() + 1);
    sql_exec(dbpath, sql);
    expect_refused(dbpath, RS_ESTATE, "newer");
}

Test(store, refuses_unreadable_unmodified)
{
    store *s = open_new();
    SUBMIT(s, 1000);
    store_close(s);
    size_t n0 = 0;
    unsigned char *before = slurp(dbpath, &n0);
    cr_assert_eq(chmod(dbpath, 0), 0);
    if (geteuid() != 0) {
        rs_error e = {0};
        cr_assert_eq(store_open(dbpath, true, &s, &e), RS_EPERM, "%s", e.msg);
        cr_assert_not_null(strstr(e.msg, dbpath));
    } else {
        /* root reads anything: check as nobody in a child process. */
        cr_assert_eq(chmod(dir, 0755), 0);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0) {
                _exit(2);
            }
            rs_error e = {0};
            store *c = NULL;
            rs_err rc = store_open(dbpath, true, &c, &e);
            _exit(rc == RS_EPERM && strstr(e.msg, dbpath) && strstr(e.msg, "cannot read") ? 0 : 1);
        }
        int status = 0;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status));
        cr_assert_eq(WEXITSTATUS(status), 0, "unreadable file was not refused with RS_EPERM");
    }
    cr_assert_eq(chmod(dbpath, 0600), 0);
    size_t n1 = 0;
    unsigned char *after = slurp(dbpath, &n1);
    cr_assert_eq(n0, n1);
    cr_assert_eq(memcmp(before, after, n0), 0);
    free(before);
    free(after);
}

/* Normalised sqlite_master: "type|name|tbl_name|sql" lines, comments and
 * whitespace differences removed. */
static char *master_dump(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db,
                                    "SELECT type, name, tbl_name, COALESCE(sql, '') FROM "
                                    "sqlite_master ORDER BY type, name",
                                    -1, &st, NULL),
                 SQLITE_OK);
    size_t cap = 1 << 16;
    size_t n = 0;
    char *out = malloc(cap);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char line[8192];
        snprintf(line, sizeof line, "%s|%s|%s|", sqlite3_column_text(st, 0),
                 sqlite3_column_text(st, 1), sqlite3_column_text(st, 2));
        const char *sql = (const char *)sqlite3_column_text(st, 3);
        size_t k = strlen(line);
        bool space = false;
        for (const char *p = sql; *p != '\0' && k < sizeof line - 2; p++) {
            if (p[0] == '-' && p[1] == '-') {
                while (*p != '\0' && *p != '\n') {
                    p++;
                }
                if (*p == '\0') {
                    break;
                }
            }
            if (isspace((unsigned char)*p)) {
                space = true;
                continue;
            }
            if (space && k > 0 && line[k - 1] != '(' && *p != ')' && *p != ',') {
                line[k++] = ' ';
            }
            space = false;
            line[k++] = *p;
        }
        line[k++] = '\n';
        line[k] = '\0';
        cr_assert(n + k + 1 < cap);
        memcpy(out + n, line, k + 1);
        n += k;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

Test(store, schema_sql_matches_migrations)
{
    store *s = open_new();
    store_close(s);
    char p2[PATH_MAX];
    snprintf(p2, sizeof p2, "%s/from_schema.db", dir);
    size_t n = 0;
    unsigned char *schema = slurp(RS_SOURCE_DIR "/sql/schema.sql", &n);
    schema[n] = '\0';
    sql_exec(p2, (const char *)schema);
    free(schema);
    char *a = master_dump(dbpath);
    char *b = master_dump(p2);
    cr_assert(strlen(a) > 100);
    cr_assert_str_eq(a, b, "schema.sql and the migrations disagree");
    cr_assert_eq(sql_int(p2, "PRAGMA user_version"), store_schema_version(),
                 "schema.sql's user_version is not the number of migrations");
    cr_assert_eq(sql_int(p2, "PRAGMA application_id"), sql_int(dbpath, "PRAGMA application_id"));
    free(a);
    free(b);
    /* The ledger is append-only. */
    sql_exec(dbpath, "INSERT INTO project(name, created_at) VALUES ('p', 1);"
                     "INSERT INTO ledger_event(project_id, seq, prev_hash, payload, hash, "
                     "signature, created_at) VALUES (1, 1, '', '{}', 'h', 's', 1);");
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    cr_assert_neq(sqlite3_exec(db, "UPDATE ledger_event SET payload = 'x'", NULL, NULL, NULL),
                  SQLITE_OK);
    cr_assert_neq(sqlite3_exec(db, "DELETE FROM ledger_event", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* ---- jobs --------------------------------------------------------------- */

Test(store, submit_and_idempotency)
{
    store *s = open_new();
    bool existed = true;
    int64_t a =
        submit_x(s, (sub){.key = "k1", .ntasks = 3, .priority = 5}, 1700000000123, &existed);
    cr_assert_not(existed);
    int64_t b = submit_x(s, (sub){.key = "k1", .ntasks = 1}, 1700000001000, &existed);
    cr_assert(existed);
    cr_assert_eq(a, b);
    int64_t c = submit_x(s, (sub){.key = "k1", .project = "other"}, 1700000001000, &existed);
    cr_assert_not(existed);
    cr_assert_neq(c, a);
    int64_t d = submit_x(s, (sub){.key = ""}, 1700000001000, &existed);
    int64_t d2 = submit_x(s, (sub){.key = NULL}, 1700000001000, &existed);
    cr_assert_not(existed);
    cr_assert_neq(d, d2);

    cJSON *j = job(s, a);
    cr_assert_eq(jnum(j, "id"), (double)a);
    cr_assert_str_eq(jstr(j, "project"), "demo");
    cr_assert_str_eq(jstr(j, "kind"), "noop");
    cr_assert_str_eq(jstr(j, "state"), "queued");
    cr_assert_str_eq(jstr(j, "idempotency_key"), "k1");
    cr_assert_str_eq(jstr(j, "created_at"), "2023-11-14T22:13:20.123Z");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "started_at")));
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "error")));
    cr_assert_eq(jnum(j, "priority"), 5);
    cr_assert_eq(jnum(j, "tasks_total"), 3);
    cr_assert_eq(jnum(j, "tasks_done"), 0);
    cr_assert_eq(jnum(j, "progress"), 0);
    cr_assert_eq(jnum(cJSON_GetObjectItem(j, "params"), "x"), 1);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "tasks")), 3);
    cr_assert_eq(jnum(cJSON_GetObjectItem(task_at(j, 2), "params"), "i"), 2);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "clips")), 0);
    cJSON_Delete(j);
    j = job(s, d2);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "idempotency_key")));
    cJSON_Delete(j);

    /* Bad input is refused and inserts nothing. */
    store_job_spec bad = {
        .project = "demo", .kind = "noop", .priority = 101, .max_attempts = 3, .ntasks = 0};
    int64_t id = 0;
    rs_error e = {0};
    cr_assert_eq(store_job_submit(s, &bad, 1, &id, &existed, &e), RS_EINVAL);
    int64_t missing = 999;
    const char *tp[] = {"{}"};
    store_job_spec nodep = {.project = "demo",
                            .kind = "noop",
                            .max_attempts = 3,
                            .task_params_json = tp,
                            .ntasks = 1,
                            .depends_on = &missing,
                            .ndepends = 1};
    cr_assert_eq(store_job_submit(s, &nodep, 1, &id, &existed, &e), RS_ENOENT);
    cr_assert_not_null(strstr(e.msg, "999"), "%s", e.msg);

    cJSON *list = NULL;
    cr_assert_eq(store_job_list(s, NULL, NULL, 100, 0, &list, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(cJSON_GetArraySize(list), 4);
    cr_assert_eq(jnum(cJSON_GetArrayItem(list, 0), "id"), (double)d2); /* newest first */
    cr_assert_null(cJSON_GetObjectItem(cJSON_GetArrayItem(list, 0), "tasks"));
    cJSON_Delete(list);
    cr_assert_eq(store_job_list(s, "queued", "other", 10, 0, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 1);
    cJSON_Delete(list);
    cr_assert_eq(store_job_list(s, NULL, NULL, 10, d, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 2);
    cJSON_Delete(list);
    store_close(s);
}

Test(store, dag_waits_for_dependencies)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t a = SUBMIT(s, 1000);
    int64_t b = SUBMIT(s, 1001, .deps = &a, .ndeps = 1, .priority = 50);
    int64_t c = SUBMIT(s, 1002, .deps = &b, .ndeps = 1, .priority = 50);

    /* Only A is leasable even though B and C have higher priority. */
    run_one(s, w, a, 2000);
    store_lease l;
    cr_assert_not(lease(s, w, 2001, &l), "B leased before A was finalized");
    expect_job_state(s, b, "queued");

    cJSON *fin = NULL;
    rs_error e = {0};
    cr_assert_eq(store_jobs_to_finalize(s, 10, &fin, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(fin), 1);
    cr_assert_eq(cJSON_GetArrayItem(fin, 0)->valuedouble, (double)a);
    cJSON_Delete(fin);
    complete(s, a, 2002);
    run_one(s, w, b, 2003);
    cr_assert_not(lease(s, w, 2004, &l));
    complete(s, b, 2005);
    run_one(s, w, c, 2006);
    complete(s, c, 2007);
    expect_job_state(s, c, "succeeded");
    cJSON *j = job(s, c);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "depends_on")), 1);
    cr_assert_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "depends_on"), 0)->valuedouble,
                 (double)b);
    cJSON_Delete(j);

    /* A dependency that already succeeded does not hold a new job. */
    int64_t d = SUBMIT(s, 3000, .deps = &a, .ndeps = 1);
    run_one(s, w, d, 3001);
    store_close(s);
}

Test(store, dag_failure_and_cancel_propagate)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t a = SUBMIT(s, 1000, .max_attempts = 1);
    int64_t b = SUBMIT(s, 1001, .deps = &a, .ndeps = 1, .ntasks = 2);
    int64_t c = SUBMIT(s, 1002, .deps = &b, .ndeps = 1);
    int64_t other = SUBMIT(s, 1003);

    store_lease l;
    cr_assert(lease(s, w, 2000, &l));
    cr_assert_eq(l.job_id, a);
    cr_assert(report(s, w, l.attempt_id, false, NULL, 2001));
    free(l.params_json);

    cJSON *j = job(s, a);
    cr_assert_str_eq(jstr(j, "state"), "failed");
    cr_assert_not_null(strstr(jstr(j, "error"), "boom"), "%s", jstr(j, "error"));
    cJSON_Delete(j);
    j = job(s, b);
    cr_assert_str_eq(jstr(j, "state"), "failed");
    cr_assert_str_eq(jstr(j, "error"), "dependency job 1 failed");
    cr_assert_str_eq(jstr(task_at(j, 1), "state"), "cancelled");
    cJSON_Delete(j);
    j = job(s, c);
    cr_assert_str_eq(jstr(j, "state"), "failed");
    cr_assert_str_eq(jstr(j, "error"), "dependency job 2 failed");
    cJSON_Delete(j);
    expect_job_state(s, other, "queued");

    /* A new job on a failed dependency fails at once but is stored. */
    int64_t d = SUBMIT(s, 3000, .deps = &a, .ndeps = 1);
    j = job(s, d);
    cr_assert_str_eq(jstr(j, "state"), "failed");
    cr_assert_str_eq(jstr(j, "error"), "dependency job 1 failed");
    cJSON_Delete(j);

    /* Cancel propagates as "cancelled". */
    int64_t e1 = SUBMIT(s, 4000);
    int64_t e2 = SUBMIT(s, 4001, .deps = &e1, .ndeps = 1);
    rs_error e = {0};
    cr_assert_eq(store_job_cancel(s, e1, 4002, &e), RS_OK, "%s", e.msg);
    j = job(s, e2);
    cr_assert_str_eq(jstr(j, "state"), "failed");
    char want[64];
    snprintf(want, sizeof want, "dependency job %lld cancelled", (long long)e1);
    cr_assert_str_eq(jstr(j, "error"), want);
    cJSON_Delete(j);

    /* Only "other" is left to lease. */
    cr_assert(lease(s, w, 5000, &l));
    cr_assert_eq(l.job_id, other);
    free(l.params_json);
    cr_assert_not(lease(s, w, 5001, &l));
    store_close(s);
}

Test(store, lease_order_priority_fair_share_age)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t a1 = SUBMIT(s, 1000, .project = "A", .ntasks = 3);
    int64_t a2 = SUBMIT(s, 1001, .project = "A");
    int64_t b1 = SUBMIT(s, 1002, .project = "B", .ntasks = 2);
    int64_t hi = SUBMIT(s, 1003, .project = "B", .priority = 10);
    int64_t lo = SUBMIT(s, 1004, .project = "C", .priority = -5);

    store_lease l;
    int64_t order_job[8];
    int64_t order_task[8];
    int n = 0;
    while (n < 8 && lease(s, w, 2000 + n, &l)) {
        order_job[n] = l.job_id;
        cJSON *p = cJSON_Parse(l.params_json);
        order_task[n] = (int64_t)jnum(p, "i");
        cJSON_Delete(p);
        cr_assert_str_eq(l.kind, "noop");
        free(l.params_json);
        n++;
    }
    cr_assert_eq(n, 8);
    /* priority first */
    cr_assert_eq(order_job[0], hi);
    /* then fair share: B has 1 active task (hi), A none -> A's oldest */
    cr_assert_eq(order_job[1], a1);
    cr_assert_eq(order_task[1], 0);
    /* A=1 B=1: tie broken by age -> a1 task 1 */
    cr_assert_eq(order_job[2], a1);
    cr_assert_eq(order_task[2], 1);
    /* A=2 B=1 -> B */
    cr_assert_eq(order_job[3], b1);
    cr_assert_eq(order_task[3], 0);
    /* A=2 B=2 -> age: a1 task 2 */
    cr_assert_eq(order_job[4], a1);
    cr_assert_eq(order_task[4], 2);
    /* A=3 B=2 -> B */
    cr_assert_eq(order_job[5], b1);
    cr_assert_eq(order_task[5], 1);
    cr_assert_eq(order_job[6], a2);
    /* lowest priority last */
    cr_assert_eq(order_job[7], lo);
    cr_assert_not(lease(s, w, 3000, &l));
    expect_job_state(s, a1, "running");
    store_close(s);
}

Test(store, lease_respects_worker_fit)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t gpu = SUBMIT(s, 1000, .pool = "gpu", .priority = 9);
    int64_t big = SUBMIT(s, 1001, .mem = 8000, .priority = 8, .ntasks = 3);
    int64_t ingest = SUBMIT(s, 1002, .kind = "ingest", .priority = 7);
    int64_t plain = SUBMIT(s, 1003);

    store_lease l;
    cr_assert(lease(s, w, 2000, &l));
    cr_assert_eq(l.job_id, plain, "a 4 GiB default-pool noop worker fits only the plain job");
    free(l.params_json);
    cr_assert_not(lease(s, w, 2001, &l));

    const char *kinds[] = {"ingest", "noop"};
    store_worker_fit gpu_fit = {.kinds = kinds, .nkinds = 2, .pool = "gpu", .memory_mb = 16000};
    cr_assert(lease_fit(s, w, &gpu_fit, 2002, &l));
    cr_assert_eq(l.job_id, gpu);
    free(l.params_json);
    cr_assert(lease_fit(s, w, &gpu_fit, 2003, &l));
    cr_assert_eq(l.job_id, big);
    free(l.params_json);
    store_worker_fit ingest_fit = {.kinds = kinds, .nkinds = 1, .pool = "", .memory_mb = 0};
    cr_assert(lease_fit(s, w, &ingest_fit, 2004, &l));
    cr_assert_eq(l.job_id, ingest);
    cr_assert_str_eq(l.kind, "ingest");
    free(l.params_json);

    bool found = true;
    rs_error e = {0};
    cr_assert_eq(store_task_lease(s, 777, &fit_noop, 2005, 1000, &l, &found, &e), RS_ENOENT);
    cr_assert_not(found);
    store_close(s);
}

Test(store, lease_expiry_backoff_and_exhaustion)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t id = SUBMIT(s, 1000, .max_attempts = 3);
    store_lease l;
    rs_error e = {0};
    int n = -1;

    cr_assert(lease(s, w, 2000, &l)); /* lease until 3000 */
    free(l.params_json);
    cr_assert_eq(store_leases_expire(s, 2999, 100, &n, &e), RS_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(store_leases_expire(s, 3001, 100, &n, &e), RS_OK);
    cr_assert_eq(n, 1);
    cJSON *j = job(s, id);
    const cJSON *t = task_at(j, 0);
    cr_assert_str_eq(jstr(t, "state"), "retry_wait");
    cr_assert_eq(jnum(t, "attempts_used"), 1);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), 0), "state"),
                     "lost");
    cJSON_Delete(j);

    /* backoff 100 ms after the first failure */
    cr_assert_not(lease(s, w, 3100, &l));
    cr_assert(lease(s, w, 3101, &l));
    free(l.params_json);
    expect_task_state(s, id, 0, "leased");
    cr_assert(report(s, w, l.attempt_id, false, NULL, 3200));
    /* second failure: 200 ms */
    cr_assert_not(lease(s, w, 3399, &l));
    cr_assert(lease(s, w, 3400, &l));
    free(l.params_json);
    cr_assert_eq(store_leases_expire(s, 5000, 100, &n, &e), RS_OK);
    cr_assert_eq(n, 1);
    j = job(s, id);
    cr_assert_str_eq(jstr(j, "state"), "failed");
    cr_assert_not_null(strstr(jstr(j, "error"), "lease expired"), "%s", jstr(j, "error"));
    cr_assert_str_eq(jstr(task_at(j, 0), "state"), "failed");
    cr_assert_eq(jnum(task_at(j, 0), "attempts_used"), 3);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(task_at(j, 0), "attempts")), 3);
    cJSON_Delete(j);
    cr_assert_not(lease(s, w, 6000, &l));
    store_close(s);
}

/* A child that exits RS_EXIT_BAD_INPUT (refused params or footage) fails
 * its task at once: another attempt would fail the same way. */
Test(store, bad_input_exit_is_not_retried)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t id = SUBMIT(s, 1000, .max_attempts = 3);
    store_lease l;
    cr_assert(lease(s, w, 2000, &l));
    free(l.params_json);
    store_report r = {.worker_id = w,
                      .attempt_id = l.attempt_id,
                      .succeeded = false,
                      .exit_code = RS_EXIT_BAD_INPUT,
                      .error = "exit code 65: params.masks: mask is 32x24, frame is 64x48"};
    bool accepted = false;
    rs_error e = {0};
    cr_assert_eq(store_attempt_report(s, &r, 2100, 100, &accepted, &e), RS_OK, "%s", e.msg);
    cr_assert(accepted);
    cJSON *j = job(s, id);
    cr_assert_str_eq(jstr(j, "state"), "failed");
    cr_assert_not_null(strstr(jstr(j, "error"), "after 1 attempt (bad input, not retried)"), "%s",
                       jstr(j, "error"));
    cr_assert_not_null(strstr(jstr(j, "error"), "mask is 32x24"), "%s", jstr(j, "error"));
    cr_assert_eq(jnum(task_at(j, 0), "attempts_used"), 1);
    cJSON_Delete(j);
    cr_assert_not(lease(s, w, 9000, &l));
    store_close(s);
}

Test(store, duplicate_and_late_reports_change_nothing)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t w2 = worker(s, "w2");
    int64_t id = SUBMIT(s, 1000, .ntasks = 2);
    store_lease l;

    cr_assert(lease(s, w, 2000, &l));
    free(l.params_json);
    cr_assert(report(s, w, l.attempt_id, true, "{\"n\":1}", 2100));
    char *before = job_text(s, id);
    cr_assert_not(report(s, w, l.attempt_id, true, "{\"n\":2}", 2200));
    cr_assert_not(report(s, w, l.attempt_id, false, NULL, 2200));
    char *after = job_text(s, id);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);

    /* Late report after the lease moved on. */
    cr_assert(lease(s, w, 3000, &l)); /* task 1 until 4000 */
    int64_t old_attempt = l.attempt_id;
    free(l.params_json);
    int n = 0;
    rs_error e = {0};
    cr_assert_eq(store_leases_expire(s, 4001, 100, &n, &e), RS_OK);
    cr_assert_eq(n, 1);
    cr_assert(lease(s, w2, 4200, &l));
    cr_assert_neq(l.attempt_id, old_attempt);
    free(l.params_json);
    before = job_text(s, id);
    cr_assert_not(report(s, w, old_attempt, true, "{\"late\":true}", 4300));
    cr_assert_not(report(s, w, l.attempt_id, true, "{\"wrong\":true}", 4300),
                  "another worker's report must be refused");
    cr_assert_not(report(s, w, 12345, true, "{}", 4300));
    after = job_text(s, id);
    cr_assert_str_eq(before, after);
    free(before);
    free(after);
    cr_assert(report(s, w2, l.attempt_id, true, "{\"n\":3}", 4400));
    cJSON *j = job(s, id);
    cr_assert_eq(jnum(j, "tasks_done"), 2);
    cr_assert_eq(jnum(j, "progress"), 1);
    cr_assert_eq(jnum(cJSON_GetObjectItem(task_at(j, 1), "result"), "n"), 3);
    cr_assert_str_eq(jstr(task_at(j, 1), "result_hash"), "abcd");
    cJSON_Delete(j);
    store_close(s);
}

Test(store, cancel_reaches_worker_through_heartbeat)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t id = SUBMIT(s, 1000, .ntasks = 3);
    store_lease l;
    cr_assert(lease(s, w, 2000, &l));
    free(l.params_json);
    int64_t att = l.attempt_id;

    int64_t ids[2] = {att, 999};
    int64_t cancel[2];
    int64_t unknown[2];
    size_t nc = 9;
    size_t nu = 9;
    rs_error e = {0};
    cr_assert_eq(store_worker_heartbeat(s, w, ids, 2, 2500, 1000, cancel, &nc, unknown, &nu, &e),
                 RS_OK, "%s", e.msg);
    cr_assert_eq(nc, 0);
    cr_assert_eq(nu, 1);
    cr_assert_eq(unknown[0], 999);
    expect_task_state(s, id, 0, "running");
    const char *lines[] = {"halfway", "still going"};
    bool stop = true;
    cr_assert_eq(store_attempt_progress(s, w, att, 0.5, lines, 2, 2600, &stop, &e), RS_OK);
    cr_assert_not(stop);
    cJSON *j = job(s, id);
    cr_assert_str_eq(jstr(j, "state"), "running");
    cr_assert_float_eq(jnum(j, "progress"), 0.5 / 3, 1e-9);
    cr_assert_float_eq(jnum(task_at(j, 0), "progress"), 0.5, 1e-9);
    cJSON_Delete(j);

    /* The heartbeat extended the lease to 3500. */
    int n = 0;
    cr_assert_eq(store_leases_expire(s, 3400, 100, &n, &e), RS_OK);
    cr_assert_eq(n, 0);

    cr_assert_eq(store_job_cancel(s, id, 2700, &e), RS_OK, "%s", e.msg);
    j = job(s, id);
    cr_assert_str_eq(jstr(j, "state"), "cancelled");
    cr_assert_str_eq(jstr(task_at(j, 0), "state"), "running");
    cr_assert_str_eq(jstr(task_at(j, 1), "state"), "cancelled");
    cr_assert_str_eq(jstr(task_at(j, 2), "state"), "cancelled");
    cr_assert_not(cJSON_IsNull(cJSON_GetObjectItem(j, "finished_at")));
    cJSON_Delete(j);

    cr_assert_eq(store_worker_heartbeat(s, w, ids, 1, 2800, 1000, cancel, &nc, unknown, &nu, &e),
                 RS_OK);
    cr_assert_eq(nc, 1);
    cr_assert_eq(cancel[0], att);
    cr_assert_eq(nu, 0);
    cr_assert_eq(store_attempt_progress(s, w, att, 0.6, NULL, 0, 2900, &stop, &e), RS_OK);
    cr_assert(stop);
    cr_assert_not(lease(s, w, 2950, &l), "a cancelled job's tasks must not be leased");

    store_report r = {.worker_id = w, .attempt_id = att, .succeeded = false, .signal = 15};
    bool accepted = false;
    cr_assert_eq(store_attempt_report(s, &r, 3000, 100, &accepted, &e), RS_OK);
    cr_assert(accepted);
    j = job(s, id);
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(task_at(j, 0), "attempts"), 0);
    cr_assert_str_eq(jstr(a0, "state"), "cancelled");
    cr_assert_eq(jnum(a0, "signal"), 15);
    cr_assert_str_eq(jstr(task_at(j, 0), "state"), "cancelled");
    cJSON_Delete(j);

    cJSON *log = NULL;
    cr_assert_eq(store_job_log(s, id, 10, &log, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(log), 2);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(log, 0), "text"), "halfway");
    cr_assert_eq(jnum(cJSON_GetArrayItem(log, 0), "attempt"), (double)att);
    cJSON_Delete(log);
    cr_assert_eq(store_job_log(s, id, 1, &log, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(log), 1);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(log, 0), "text"), "still going");
    cJSON_Delete(log);

    cr_assert_eq(store_job_cancel(s, id, 3100, &e), RS_ESTATE);
    cr_assert_eq(store_job_cancel(s, 4242, 3100, &e), RS_ENOENT);
    store_close(s);
}

Test(store, retry_requeues_job_and_dependants)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t a = SUBMIT(s, 1000, .max_attempts = 1, .ntasks = 2);
    int64_t b = SUBMIT(s, 1001, .deps = &a, .ndeps = 1);
    rs_error e = {0};
    cr_assert_eq(store_job_retry(s, a, 1500, &e), RS_ESTATE, "retry of a queued job");

    store_lease l;
    cr_assert(lease(s, w, 2000, &l));
    free(l.params_json);
    cr_assert(report(s, w, l.attempt_id, true, "{}", 2001));
    cr_assert(lease(s, w, 2002, &l));
    free(l.params_json);
    cr_assert(report(s, w, l.attempt_id, false, NULL, 2003));
    expect_job_state(s, a, "failed");
    expect_job_state(s, b, "failed");
    cr_assert_eq(store_job_retry(s, b, 2500, &e), RS_ESTATE, "b's dependency has failed");

    cr_assert_eq(store_job_retry(s, a, 3000, &e), RS_OK, "%s", e.msg);
    cJSON *j = job(s, a);
    cr_assert_str_eq(jstr(j, "state"), "queued");
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(j, "error")));
    cr_assert_str_eq(jstr(task_at(j, 0), "state"), "succeeded");
    cr_assert_str_eq(jstr(task_at(j, 1), "state"), "queued");
    cr_assert_eq(jnum(task_at(j, 1), "attempts_used"), 0);
    cJSON_Delete(j);
    expect_job_state(s, b, "queued");

    cr_assert(lease(s, w, 3001, &l));
    cr_assert_eq(l.job_id, a);
    cr_assert(report(s, w, l.attempt_id, true, "{}", 3002));
    free(l.params_json);
    cr_assert_not(lease(s, w, 3003, &l), "b must wait for a to be finalized");
    complete(s, a, 3004);
    run_one(s, w, b, 3005);

    /* A cancelled job can be retried too. */
    int64_t c = SUBMIT(s, 4000);
    cr_assert_eq(store_job_cancel(s, c, 4001, &e), RS_OK);
    cr_assert_eq(store_job_retry(s, c, 4002, &e), RS_OK);
    run_one(s, w, c, 4003);
    store_close(s);
}

Test(store, bye_releases_without_counting)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t id = SUBMIT(s, 1000, .max_attempts = 1);
    store_lease l;
    cr_assert(lease(s, w, 2000, &l));
    free(l.params_json);
    rs_error e = {0};
    cJSON *ws = NULL;
    cr_assert_eq(store_worker_list(s, 2100, &ws, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(ws), 1);
    cJSON *w0 = cJSON_GetArrayItem(ws, 0);
    cr_assert_str_eq(jstr(w0, "state"), "up");
    cr_assert_eq(jnum(w0, "heartbeat_age_ms"), 100);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(w0, "running")), 1);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(w0, "kinds")), 1);
    cr_assert_eq(jnum(w0, "slots"), 1);
    cJSON_Delete(ws);

    cr_assert_eq(store_worker_bye(s, w, 2200, &e), RS_OK, "%s", e.msg);
    cJSON *j = job(s, id);
    cr_assert_str_eq(jstr(task_at(j, 0), "state"), "queued");
    cr_assert_eq(jnum(task_at(j, 0), "attempts_used"), 0);
    cr_assert_str_eq(
        jstr(cJSON_GetArrayItem(cJSON_GetObjectItem(task_at(j, 0), "attempts"), 0), "state"),
        "released");
    cJSON_Delete(j);
    cr_assert_eq(store_worker_list(s, 2300, &ws, &e), RS_OK);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(ws, 0), "state"), "gone");
    cJSON_Delete(ws);
    cr_assert_eq(store_worker_bye(s, 4242, 2200, &e), RS_ENOENT);

    /* Re-hello keeps the id; the released task still has its one attempt. */
    cr_assert_eq(worker(s, "w1"), w);
    run_one(s, w, id, 2400);

    cJSON *counts = NULL;
    cr_assert_eq(store_counts(s, &counts, &e), RS_OK);
    cr_assert_eq(jnum(cJSON_GetObjectItem(counts, "jobs"), "running"), 1);
    cr_assert_eq(jnum(cJSON_GetObjectItem(counts, "jobs"), "queued"), 0);
    cr_assert_eq(jnum(cJSON_GetObjectItem(counts, "tasks"), "succeeded"), 1);
    cr_assert_eq(jnum(cJSON_GetObjectItem(counts, "tasks"), "retry_wait"), 0);
    cJSON_Delete(counts);
    store_close(s);
}

Test(store, batch_keeps_others_when_one_call_fails)
{
    store *s = open_new();
    rs_error e = {0};
    cr_assert_eq(store_batch_begin(s, &e), RS_OK);
    cr_assert_eq(store_batch_begin(s, &e), RS_ESTATE);
    int64_t a = SUBMIT(s, 1000, .key = "a");
    int64_t missing = 77;
    const char *tp[] = {"{}", "{}"};
    store_job_spec bad = {.project = "newproject",
                          .kind = "noop",
                          .max_attempts = 3,
                          .task_params_json = tp,
                          .ntasks = 2,
                          .depends_on = &missing,
                          .ndepends = 1,
                          .idempotency_key = "bad"};
    int64_t id = 0;
    bool existed = false;
    cr_assert_eq(store_job_submit(s, &bad, 1001, &id, &existed, &e), RS_ENOENT);
    int64_t c = SUBMIT(s, 1002, .key = "c");
    cr_assert_eq(store_batch_commit(s, &e), RS_OK, "%s", e.msg);
    store_close(s);

    /* Durable after reopening: the good calls, and nothing of the bad one. */
    s = open_new();
    expect_job_state(s, a, "queued");
    expect_job_state(s, c, "queued");
    cJSON *list = NULL;
    cr_assert_eq(store_job_list(s, NULL, NULL, 100, 0, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 2);
    cJSON_Delete(list);
    cr_assert_eq(store_job_list(s, NULL, "newproject", 100, 0, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 0);
    cJSON_Delete(list);
    store_close(s);
    cr_assert_eq(sql_int(dbpath, "SELECT count(*) FROM project WHERE name = 'newproject'"), 0);
    cr_assert_eq(sql_int(dbpath, "SELECT count(*) FROM task"), 2);

    /* A rolled-back batch leaves nothing. */
    s = open_new();
    cr_assert_eq(store_batch_begin(s, &e), RS_OK);
    SUBMIT(s, 2000);
    store_batch_rollback(s);
    cr_assert_eq(store_job_list(s, NULL, NULL, 100, 0, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 2);
    cJSON_Delete(list);
    cr_assert_eq(store_batch_commit(s, &e), RS_ESTATE);
    /* close with an open batch rolls it back */
    cr_assert_eq(store_batch_begin(s, &e), RS_OK);
    SUBMIT(s, 2001);
    store_close(s);
    cr_assert_eq(sql_int(dbpath, "SELECT count(*) FROM job"), 2);
}

/* A mark inside a batch: undo drops what came after it, keep commits it,
 * and what came before it commits either way. */
Test(store, mark_undo_and_keep)
{
    store *s = open_new();
    rs_error e = {0};
    cJSON *list = NULL;
    cr_assert_eq(store_batch_begin(s, &e), RS_OK);
    SUBMIT(s, 1000);
    cr_assert_eq(store_mark_set(s, &e), RS_OK, "%s", e.msg);
    SUBMIT(s, 1001);
    cr_assert_eq(store_mark_undo(s, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(store_mark_set(s, &e), RS_OK, "%s", e.msg);
    SUBMIT(s, 1002);
    cr_assert_eq(store_mark_keep(s, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(store_batch_commit(s, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(store_job_list(s, NULL, NULL, 100, 0, &list, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(list), 2, "the undone submit survived");
    cJSON_Delete(list);
    bool yes = true;
    cr_assert_eq(store_job_finalisable(s, 1, &yes, &e), RS_OK);
    cr_assert_not(yes, "a queued job is not finalisable");
    store_close(s);
}

Test(store, finalize_with_clips)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    int64_t id = SUBMIT(s, 1000, .kind = "noop", .ntasks = 2, .project = "film");
    store_lease l;
    cr_assert(lease(s, w, 2000, &l));
    free(l.params_json);
    cr_assert(report(s, w, l.attempt_id, true, "{\"files\":1}", 2001));
    rs_error e = {0};
    cJSON *fin = NULL;
    cr_assert_eq(store_jobs_to_finalize(s, 10, &fin, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(fin), 0, "not all tasks done yet");
    cJSON_Delete(fin);
    cr_assert_eq(store_job_complete(s, id, "{}", NULL, 2002, &e), RS_ESTATE);
    cr_assert(lease(s, w, 2003, &l));
    free(l.params_json);
    cr_assert(report(s, w, l.attempt_id, true, "{\"files\":2}", 2004));

    cr_assert_eq(store_jobs_to_finalize(s, 10, &fin, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(fin), 1);
    cr_assert_eq(cJSON_GetArrayItem(fin, 0)->valuedouble, (double)id);
    cJSON_Delete(fin);
    cJSON *res = NULL;
    cr_assert_eq(store_job_task_results(s, id, &res, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(res), 2);
    cr_assert_eq(jnum(cJSON_GetArrayItem(res, 1), "files"), 2);
    cJSON_Delete(res);

    store_clip_spec c1 = {.project = "film",
                          .job_id = id,
                          .name = "a.mp4",
                          .path = "/media/a.mp4",
                          .hash = "00ff",
                          .info_json = "{\"frames\":24}"};
    store_clip_spec c2 = {.project = "film",
                          .job_id = id,
                          .name = "b.mp4",
                          .path = "/media/b.mp4",
                          .hash = "11ee",
                          .info_json = NULL};
    int64_t cid1 = 0;
    int64_t cid2 = 0;
    int64_t again = 0;
    cr_assert_eq(store_clip_register(s, &c1, 2005, &cid1, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(store_clip_register(s, &c2, 2005, &cid2, &e), RS_OK);
    cr_assert_eq(store_clip_register(s, &c1, 2006, &again, &e), RS_OK);
    cr_assert_eq(again, cid1, "same project, path and hash is the same clip");
    cr_assert_neq(cid1, cid2);
    cr_assert_eq(store_job_complete(s, id, "{\"clips\":2}", NULL, 2007, &e), RS_OK, "%s", e.msg);
    cr_assert_eq(store_job_complete(s, id, NULL, "late failure", 2008, &e), RS_OK);

    cJSON *j = job(s, id);
    cr_assert_str_eq(jstr(j, "state"), "succeeded");
    cr_assert_eq(jnum(cJSON_GetObjectItem(j, "result"), "clips"), 2);
    cr_assert_eq(jnum(j, "progress"), 1);
    cr_assert_str_eq(jstr(j, "finished_at"), "1970-01-01T00:00:02.007Z");
    cJSON *clips = cJSON_GetObjectItem(j, "clips");
    cr_assert_eq(cJSON_GetArraySize(clips), 2);
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(clips, 0), "name"), "a.mp4");
    cr_assert_str_eq(jstr(cJSON_GetArrayItem(clips, 0), "project"), "film");
    cr_assert_eq(jnum(cJSON_GetObjectItem(cJSON_GetArrayItem(clips, 0), "info"), "frames"), 24);
    cJSON_Delete(j);
    cr_assert_eq(store_jobs_to_finalize(s, 10, &fin, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(fin), 0);
    cJSON_Delete(fin);
    cJSON *cl = NULL;
    cr_assert_eq(store_clip_list(s, "film", 0, &cl, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(cl), 2);
    cJSON_Delete(cl);
    cr_assert_eq(store_clip_list(s, "nope", 0, &cl, &e), RS_OK);
    cr_assert_eq(cJSON_GetArraySize(cl), 0);
    cJSON_Delete(cl);

    /* A finalize failure fails the job. */
    int64_t f = SUBMIT(s, 3000);
    run_one(s, w, f, 3001);
    cr_assert_eq(store_job_complete(s, f, NULL, "mhl write failed", 3002, &e), RS_OK);
    cJSON *jf = job(s, f);
    cr_assert_str_eq(jstr(jf, "state"), "failed");
    cr_assert_str_eq(jstr(jf, "error"), "mhl write failed");
    cJSON_Delete(jf);
    store_close(s);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Throughput with a deep queue. The design targets are 5,000 submits/s (group
 * commit of 100) and 2,000 lease+report round trips/s; the bounds asserted
 * here are lower so a busy CI machine does not flake, the printed figures
 * are what to compare. */
Test(store, throughput_with_deep_queue, .timeout = 120)
{
    store *s = open_new();
    int64_t w = worker(s, "w1");
    rs_error e = {0};
    const int njobs = 20000;
    double t0 = now_s();
    for (int i = 0; i < njobs; i += 100) {
        cr_assert_eq(store_batch_begin(s, &e), RS_OK);
        for (int k = 0; k < 100; k++) {
            char project[16];
            snprintf(project, sizeof project, "p%d", (i + k) % 7);
            submit_x(s, (sub){.project = project, .priority = (i + k) % 3, .ntasks = 5}, 1000,
                     NULL);
        }
        cr_assert_eq(store_batch_commit(s, &e), RS_OK, "%s", e.msg);
    }
    double t1 = now_s();
    double submits = njobs / (t1 - t0);

    /* Lease + report round trips, group-committed 50 calls at a time as the
     * daemon's loop does, then one transaction per call. */
    const int nlease = 4000;
    for (int i = 0; i < nlease; i += 25) {
        cr_assert_eq(store_batch_begin(s, &e), RS_OK);
        for (int k = 0; k < 25; k++) {
            store_lease l;
            cr_assert(lease(s, w, 2000 + i + k, &l));
            cr_assert(report(s, w, l.attempt_id, true, "{}", 2000 + i + k));
            free(l.params_json);
        }
        cr_assert_eq(store_batch_commit(s, &e), RS_OK, "%s", e.msg);
    }
    double t2 = now_s();
    double leases = nlease / (t2 - t1);
    const int nsingle = 500;
    for (int i = 0; i < nsingle; i++) {
        store_lease l;
        cr_assert(lease(s, w, 9000 + i, &l));
        cr_assert(report(s, w, l.attempt_id, true, "{}", 9000 + i));
        free(l.params_json);
    }
    double t3 = now_s();
    double singles = nsingle / (t3 - t2);
    fprintf(stderr,
            "store throughput: %.0f submits/s (5 tasks each, batches of 100); "
            "%.0f lease+report/s batched, %.0f unbatched; %d tasks queued\n",
            submits, leases, singles, njobs * 5);
    cr_assert_gt(submits, 2000, "%.0f submits/s", submits);
    cr_assert_gt(leases, 1000, "%.0f lease+report/s", leases);
    store_close(s);
}
