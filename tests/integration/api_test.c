/*
 * api_test.c: the real rushesd binary on loopback, driven over raw HTTP and
 * a raw nng REQ socket. Covers the REST API of docs/API.md (status codes and
 * error bodies), the worker socket's handling of bad messages, refusal of a
 * foreign database without touching it, config errors, and a clean SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sqlite3.h>

#include "proto.h"

#define RUSHESD RS_BINARY_DIR "/daemon/rushesd"

typedef struct daemon_proc {
    pid_t pid;
    int api_port;
    int worker_port;
    char dir[256]; /* temp folder: data/, media/, log */
    char log[300];
    char api[64];
    char workers[64];
} daemon_proc;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return strdup("");
    }
    char *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void make_dir_tree(daemon_proc *d)
{
    snprintf(d->dir, sizeof d->dir, "/tmp/rushesd-api-XXXXXX");
    cr_assert_not_null(mkdtemp(d->dir));
    char p[400];
    snprintf(p, sizeof p, "%s/media", d->dir);
    cr_assert(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/media/a.txt", d->dir);
    FILE *f = fopen(p, "w");
    fputs("hello\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/outside.txt", d->dir);
    f = fopen(p, "w");
    fputs("secret\n", f);
    fclose(f);
    /* A symlink inside the media root that points outside it. */
    char target[400];
    snprintf(target, sizeof target, "%s/outside.txt", d->dir);
    snprintf(p, sizeof p, "%s/media/escape.txt", d->dir);
    cr_assert(symlink(target, p) == 0);
    snprintf(d->log, sizeof d->log, "%s/rushesd.log", d->dir);
}

/* Runs rushesd with argv (NULL-terminated, after the program name); stderr to d->log. */
static pid_t spawn(daemon_proc *d, const char *const *args)
{
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        dup2(fd, 1);
        char *argv[32];
        int n = 0;
        argv[n++] = (char *)RUSHESD;
        /* These tests cover the API itself; auth is covered by ops_auth_test. */
        argv[n++] = (char *)"--no-auth";
        for (int i = 0; args[i] != NULL && n < 31; i++) {
            argv[n++] = (char *)args[i];
        }
        argv[n] = NULL;
        execv(RUSHESD, argv);
        _exit(127);
    }
    return pid;
}

/* Waits for the child; returns its exit status, or -signal. */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int st = 0;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    cr_assert_fail("rushesd did not exit within %d ms", timeout_ms);
    return -1000;
}

static void start_daemon(daemon_proc *d)
{
    memset(d, 0, sizeof *d);
    make_dir_tree(d);
    d->api_port = free_port();
    d->worker_port = free_port();
    snprintf(d->api, sizeof d->api, "http://127.0.0.1:%d", d->api_port);
    snprintf(d->workers, sizeof d->workers, "tcp://127.0.0.1:%d", d->worker_port);
    char data[300];
    char media[300];
    snprintf(data, sizeof data, "%s/data", d->dir);
    snprintf(media, sizeof media, "%s/media", d->dir);
    const char *args[] = {"--data-dir",
                          data,
                          "--media-root",
                          media,
                          "--api-listen",
                          d->api,
                          "--worker-listen",
                          d->workers,
                          "--max-body",
                          "4096",
                          NULL};
    d->pid = spawn(d, args);
    for (int i = 0; i < 1000; i++) {
        char *log = slurp(d->log);
        bool up = strstr(log, "rushesd: listening api=") != NULL;
        free(log);
        if (up) {
            return;
        }
        int st = 0;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            char *l = slurp(d->log);
            cr_assert_fail("rushesd exited at start: %s", l);
        }
        usleep(10000);
    }
    cr_assert_fail("rushesd did not start listening");
}

static void stop_daemon(daemon_proc *d)
{
    cr_assert(kill(d->pid, SIGTERM) == 0);
    int rc = wait_exit(d->pid, 10000);
    char *log = slurp(d->log);
    cr_expect_eq(rc, 0, "rushesd exit %d after SIGTERM; log:\n%s", rc, log);
    cr_expect_not_null(strstr(log, "rushesd: stopped cleanly"), "log:\n%s", log);
    free(log);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    cr_expect(system(cmd) == 0);
}

/* ---- raw HTTP ------------------------------------------------------------ */

typedef struct http_res {
    int status;
    char *body;
    cJSON *json;
} http_res;

static void http_res_free(http_res *r)
{
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

static int connect_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0) {
            return; /* the server may close early (413) */
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Reads until EOF and parses status and body. */
static void read_response(int fd, http_res *out)
{
    size_t cap = 1 << 20;
    char *buf = malloc(cap);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    memset(out, 0, sizeof *out);
    cr_assert(sscanf(buf, "HTTP/1.1 %d", &out->status) == 1, "no status line in: %s", buf);
    char *body = strstr(buf, "\r\n\r\n");
    out->body = strdup(body != NULL ? body + 4 : "");
    out->json = cJSON_Parse(out->body);
    free(buf);
}

static void http(const daemon_proc *d, const char *method, const char *path, const char *extra,
                 const char *body, http_res *out)
{
    int fd = connect_port(d->api_port);
    char head[2048];
    size_t blen = body != NULL ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n",
                     method, path, blen, extra != NULL ? extra : "");
    write_all(fd, head, (size_t)n);
    if (blen > 0) {
        write_all(fd, body, blen);
    }
    read_response(fd, out);
}

static const char *error_code(const http_res *r)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    return cJSON_IsString(c) ? c->valuestring : "";
}

static const char *error_message(const http_res *r)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    return cJSON_IsString(m) ? m->valuestring : "";
}

static double job_field_num(const http_res *r, const char *field)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(r->json, "job");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
    cr_assert(cJSON_IsNumber(v), "job.%s missing in %s", field, r->body);
    return v->valuedouble;
}

static const char *job_field_str(const http_res *r, const char *field)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(r->json, "job");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int64_t submit_noop(const daemon_proc *d, const char *project, int tasks)
{
    char body[256];
    snprintf(body, sizeof body, "{\"project\":\"%s\",\"kind\":\"noop\",\"params\":{\"tasks\":%d}}",
             project, tasks);
    http_res r;
    http(d, "POST", "/api/v1/jobs", NULL, body, &r);
    cr_assert_eq(r.status, 201, "submit: %d %s", r.status, r.body);
    int64_t id = (int64_t)job_field_num(&r, "id");
    http_res_free(&r);
    return id;
}

/* ---- REST API ------------------------------------------------------------ */

Test(api, submit_idempotency_and_errors, .timeout = 30)
{
    daemon_proc d;
    start_daemon(&d);
    http_res r;

    const char *body = "{\"project\":\"demo\",\"kind\":\"noop\",\"params\":{\"tasks\":2}}";
    http(&d, "POST", "/api/v1/jobs", "Idempotency-Key: abc-1\r\n", body, &r);
    cr_assert_eq(r.status, 201, "%d %s", r.status, r.body);
    int64_t id = (int64_t)job_field_num(&r, "id");
    cr_expect_str_eq(job_field_str(&r, "state"), "queued");
    cr_expect_eq(job_field_num(&r, "tasks_total"), 2);
    http_res_free(&r);

    http(&d, "POST", "/api/v1/jobs", "Idempotency-Key: abc-1\r\n", body, &r);
    cr_expect_eq(r.status, 200, "repeat with the same key: %d %s", r.status, r.body);
    cr_expect_eq((int64_t)job_field_num(&r, "id"), id);
    http_res_free(&r);

    http(&d, "POST", "/api/v1/jobs", NULL, "{\"project\":\"demo\",\n\"kind\" \"noop\"}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect_str_eq(error_code(&r), "bad_request");
    cr_expect_not_null(strstr(error_message(&r), "malformed JSON at byte"), "%s", r.body);
    cr_expect_not_null(strstr(error_message(&r), "line 2"), "%s", r.body);
    http_res_free(&r);

    http(&d, "POST", "/api/v1/jobs", NULL, "{\"project\":\"demo\",\"kind\":\"nosuch\"}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(error_message(&r), "nosuch"), "%s", r.body);
    http_res_free(&r);

    http(&d, "POST", "/api/v1/jobs", NULL,
         "{\"project\":\"demo\",\"kind\":\"noop\",\"colour\":\"red\"}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(error_message(&r), "colour"), "%s", r.body);
    http_res_free(&r);

    http(&d, "POST", "/api/v1/jobs", NULL,
         "{\"project\":\"demo\",\"kind\":\"noop\",\"params\":{\"tasks\":\"x\"}}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(error_message(&r), "params.tasks"), "%s", r.body);
    http_res_free(&r);

    http(&d, "POST", "/api/v1/jobs", NULL, "{\"project\":\"bad project!\",\"kind\":\"noop\"}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(error_message(&r), "project"), "%s", r.body);
    http_res_free(&r);

    http(&d, "POST", "/api/v1/jobs", NULL,
         "{\"project\":\"demo\",\"kind\":\"noop\",\"priority\":500}", &r);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(error_message(&r), "priority"), "%s", r.body);
    http_res_free(&r);

    /* ".." that leaves the media root, and a symlink that points out of it. */
    char b2[1024];
    snprintf(b2, sizeof b2,
             "{\"project\":\"demo\",\"kind\":\"ingest\",\"params\":{\"path\":\"%s/media/../"
             "outside.txt\"}}",
             d.dir);
    http(&d, "POST", "/api/v1/jobs", NULL, b2, &r);
    cr_expect_eq(r.status, 403, "%d %s", r.status, r.body);
    cr_expect_str_eq(error_code(&r), "forbidden");
    http_res_free(&r);
    snprintf(
        b2, sizeof b2,
        "{\"project\":\"demo\",\"kind\":\"ingest\",\"params\":{\"path\":\"%s/media/escape.txt\"}}",
        d.dir);
    http(&d, "POST", "/api/v1/jobs", NULL, b2, &r);
    cr_expect_eq(r.status, 403, "%d %s", r.status, r.body);
    http_res_free(&r);

    stop_daemon(&d);
}

Test(api, body_over_cap_is_413, .timeout = 30)
{
    daemon_proc d;
    start_daemon(&d); /* --max-body 4096 */
    /* Announce a large body and send only part of it: the answer must come
     * from the header alone, as our JSON error. */
    int fd = connect_port(d.api_port);
    const char *head = "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n"
                       "{\"project\":";
    write_all(fd, head, strlen(head));
    http_res r;
    read_response(fd, &r);
    cr_expect_eq(r.status, 413, "%d %s", r.status, r.body);
    cr_expect_str_eq(error_code(&r), "too_large");
    http_res_free(&r);

    /* A whole body just over the cap. */
    char *big = malloc(5000);
    memset(big, ' ', 4999);
    big[0] = '{';
    big[4997] = '}';
    big[4998] = '\0';
    http(&d, "POST", "/api/v1/jobs", NULL, big, &r);
    cr_expect_eq(r.status, 413, "%d %s", r.status, r.body);
    http_res_free(&r);
    free(big);

    /* Expect: 100-continue is answered before the body is sent (curl waits
     * a second for it otherwise). */
    fd = connect_port(d.api_port);
    const char *jb = "{\"project\":\"demo\",\"kind\":\"noop\"}";
    char h2[512];
    int hn = snprintf(h2, sizeof h2,
                      "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Expect: 100-continue\r\nContent-Length: %zu\r\n\r\n",
                      strlen(jb));
    write_all(fd, h2, (size_t)hn);
    char cont[64] = "";
    ssize_t cn = read(fd, cont, sizeof cont - 1);
    cr_expect_gt(cn, 0);
    cr_expect_not_null(strstr(cont, "100 Continue"), "got: %s", cont);
    write_all(fd, jb, strlen(jb));
    read_response(fd, &r);
    cr_expect_eq(r.status, 201, "%d %s", r.status, r.body);
    http_res_free(&r);

    /* The daemon still serves. */
    http(&d, "GET", "/healthz", NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    http_res_free(&r);
    stop_daemon(&d);
}

Test(api, routes_list_cancel_retry, .timeout = 30)
{
    daemon_proc d;
    start_daemon(&d);
    http_res r;

    int64_t a = submit_noop(&d, "alpha", 1);
    int64_t b = submit_noop(&d, "beta", 1);
    int64_t c = submit_noop(&d, "alpha", 3);

    http(&d, "GET", "/api/v1/jobs?project=alpha", NULL, NULL, &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(r.json, "jobs");
    cr_assert_eq(cJSON_GetArraySize(jobs), 2, "%s", r.body);
    /* newest first */
    cr_expect_eq((int64_t)cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 0), "id")->valuedouble, c);
    cr_expect_eq((int64_t)cJSON_GetObjectItem(cJSON_GetArrayItem(jobs, 1), "id")->valuedouble, a);
    http_res_free(&r);

    http(&d, "GET", "/api/v1/jobs?limit=1", NULL, NULL, &r);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "jobs")), 1, "%s", r.body);
    http_res_free(&r);

    char path[128];
    snprintf(path, sizeof path, "/api/v1/jobs?before=%lld", (long long)c);
    http(&d, "GET", path, NULL, NULL, &r);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "jobs")), 2, "%s", r.body);
    http_res_free(&r);

    http(&d, "GET", "/api/v1/jobs?limit=0", NULL, NULL, &r);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(error_message(&r), "limit"), "%s", r.body);
    http_res_free(&r);
    http(&d, "GET", "/api/v1/jobs?state=sleepy", NULL, NULL, &r);
    cr_expect_eq(r.status, 400);
    http_res_free(&r);
    http(&d, "GET", "/api/v1/jobs?colour=red", NULL, NULL, &r);
    cr_expect_eq(r.status, 400);
    cr_expect_not_null(strstr(error_message(&r), "colour"), "%s", r.body);
    http_res_free(&r);

    /* cancel -> cancelled; cancel again -> 409; retry of a queued job -> 409 */
    snprintf(path, sizeof path, "/api/v1/jobs/%lld/cancel", (long long)b);
    http(&d, "POST", path, NULL, NULL, &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(job_field_str(&r, "state"), "cancelled");
    http_res_free(&r);
    http(&d, "POST", path, NULL, NULL, &r);
    cr_expect_eq(r.status, 409, "%s", r.body);
    cr_expect_str_eq(error_code(&r), "conflict");
    http_res_free(&r);

    http(&d, "GET", "/api/v1/jobs?state=cancelled", NULL, NULL, &r);
    jobs = cJSON_GetObjectItemCaseSensitive(r.json, "jobs");
    cr_expect_eq(cJSON_GetArraySize(jobs), 1, "%s", r.body);
    http_res_free(&r);

    snprintf(path, sizeof path, "/api/v1/jobs/%lld/retry", (long long)a);
    http(&d, "POST", path, NULL, NULL, &r);
    cr_expect_eq(r.status, 409, "%s", r.body);
    http_res_free(&r);

    snprintf(path, sizeof path, "/api/v1/jobs/%lld", (long long)c);
    http(&d, "GET", path, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "job"), "tasks")), 3,
        "%s", r.body);
    http_res_free(&r);

    snprintf(path, sizeof path, "/api/v1/jobs/%lld/log", (long long)c);
    http(&d, "GET", path, NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect(cJSON_IsArray(cJSON_GetObjectItem(r.json, "lines")), "%s", r.body);
    http_res_free(&r);

    http(&d, "GET", "/api/v1/jobs/999999", NULL, NULL, &r);
    cr_expect_eq(r.status, 404);
    cr_expect_str_eq(error_code(&r), "not_found");
    http_res_free(&r);
    http(&d, "GET", "/api/v1/nothing", NULL, NULL, &r);
    cr_expect_eq(r.status, 404);
    cr_expect_str_eq(error_code(&r), "not_found");
    http_res_free(&r);
    http(&d, "DELETE", "/api/v1/jobs", NULL, NULL, &r);
    cr_expect_eq(r.status, 405);
    cr_expect_str_eq(error_code(&r), "method_not_allowed");
    http_res_free(&r);

    http(&d, "GET", "/api/v1/clips?project=alpha", NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect(cJSON_IsArray(cJSON_GetObjectItem(r.json, "clips")), "%s", r.body);
    http_res_free(&r);
    http(&d, "GET", "/api/v1/workers", NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    cr_expect(cJSON_IsArray(cJSON_GetObjectItem(r.json, "workers")), "%s", r.body);
    http_res_free(&r);

    http(&d, "GET", "/healthz", NULL, NULL, &r);
    cr_expect_eq(r.status, 200);
    const cJSON *st = cJSON_GetObjectItem(r.json, "status");
    cr_expect(cJSON_IsString(st) && strcmp(st->valuestring, "ok") == 0, "%s", r.body);
    http_res_free(&r);

    stop_daemon(&d);
}

/* ---- worker socket ------------------------------------------------------- */

static void req_roundtrip(nng_socket s, const char *buf, size_t len, proto_msg *reply)
{
    cr_assert_eq(nng_send(s, (void *)buf, len, 0), 0);
    char *in = NULL;
    size_t inlen = 0;
    cr_assert_eq(nng_recv(s, &in, &inlen, NNG_FLAG_ALLOC), 0);
    rs_error e;
    rs_err rc = proto_decode(in, inlen, true, reply, NULL, &e);
    cr_assert_eq(rc, RS_OK, "reply did not decode: %s: %.*s", e.msg, (int)inlen, in);
    nng_free(in, inlen);
}

static void req_msg(nng_socket s, const proto_msg *m, proto_msg *reply)
{
    char *buf = NULL;
    size_t len = 0;
    rs_error e;
    cr_assert_eq(proto_encode(m, &buf, &len, &e), RS_OK, "%s", e.msg);
    req_roundtrip(s, buf, len, reply);
    free(buf);
}

Test(dispatch, bad_messages_then_a_full_task, .timeout = 30)
{
    daemon_proc d;
    start_daemon(&d);
    int64_t job = submit_noop(&d, "w", 1);

    nng_socket s;
    cr_assert_eq(nng_req0_open(&s), 0);
    cr_assert_eq(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000), 0);
    cr_assert_eq(nng_dial(s, d.workers, NULL, 0), 0);

    proto_msg rep;
    proto_msg_init(&rep);
    req_roundtrip(s, "garbage\x01\x02", 9, &rep);
    cr_expect_eq(rep.type, PROTO_ERROR);
    cr_expect_str_eq(rep.u.error.code, "bad_request");
    proto_msg_free(&rep);

    const char *v9 = "{\"v\":9,\"type\":\"lease\",\"id\":7,\"worker_id\":1}";
    req_roundtrip(s, v9, strlen(v9), &rep);
    cr_expect_eq(rep.type, PROTO_ERROR);
    cr_expect_str_eq(rep.u.error.code, "unsupported_version");
    proto_msg_free(&rep);

    /* A worker id this daemon never greeted. */
    proto_msg m;
    proto_msg_init(&m);
    m.type = PROTO_LEASE;
    m.id = 8;
    m.u.lease.worker_id = 4242;
    req_msg(s, &m, &rep);
    cr_expect_eq(rep.type, PROTO_ERROR);
    cr_expect_str_eq(rep.u.error.code, "unknown_worker");
    proto_msg_free(&rep);

    proto_msg_init(&m);
    m.type = PROTO_HELLO;
    m.id = 9;
    snprintf(m.u.hello.worker_name, sizeof m.u.hello.worker_name, "w1");
    m.u.hello.slots = 1;
    m.u.hello.ndevices = 1;
    snprintf(m.u.hello.devices[0].name, sizeof m.u.hello.devices[0].name, "cpu");
    snprintf(m.u.hello.devices[0].type, sizeof m.u.hello.devices[0].type, "cpu");
    m.u.hello.devices[0].memory_mb = 1024;
    m.u.hello.nkinds = 1;
    snprintf(m.u.hello.kinds[0], sizeof m.u.hello.kinds[0], "noop");
    req_msg(s, &m, &rep);
    cr_assert_eq(rep.type, PROTO_HELLO, "hello reply type %d", rep.type);
    cr_expect_eq(rep.id, 9);
    int64_t wid = rep.u.hello_reply.worker_id;
    cr_assert_gt(wid, 0);
    proto_msg_free(&rep);

    proto_msg_init(&m);
    m.type = PROTO_LEASE;
    m.id = 10;
    m.u.lease.worker_id = wid;
    req_msg(s, &m, &rep);
    cr_assert_eq(rep.type, PROTO_LEASE);
    cr_assert(rep.u.lease_reply.has_task);
    cr_expect_eq(rep.u.lease_reply.job_id, job);
    cr_expect_str_eq(rep.u.lease_reply.kind, "noop");
    int64_t attempt = rep.u.lease_reply.attempt_id;
    proto_msg_free(&rep);

    /* Nothing else to do: no task, ask again later. */
    m.id = 11;
    req_msg(s, &m, &rep);
    cr_expect(!rep.u.lease_reply.has_task);
    cr_expect_gt(rep.u.lease_reply.retry_ms, 0);
    proto_msg_free(&rep);

    proto_msg_init(&m);
    m.type = PROTO_REPORT;
    m.id = 12;
    m.u.report.worker_id = wid;
    m.u.report.attempt_id = attempt;
    m.u.report.outcome = PROTO_OUTCOME_SUCCEEDED;
    m.u.report.result = cJSON_CreateObject();
    cJSON_AddNumberToObject(m.u.report.result, "index", 0);
    req_msg(s, &m, &rep);
    cr_assert_eq(rep.type, PROTO_REPORT);
    cr_expect(rep.u.report_reply.accepted);
    proto_msg_free(&rep);
    /* The same report again changes nothing. */
    m.id = 13;
    req_msg(s, &m, &rep);
    cr_expect(!rep.u.report_reply.accepted);
    proto_msg_free(&rep);
    proto_msg_free(&m);

    /* The job is finalised promptly after the successful report. */
    char path[64];
    snprintf(path, sizeof path, "/api/v1/jobs/%lld", (long long)job);
    bool done = false;
    for (int i = 0; i < 100 && !done; i++) {
        http_res r;
        http(&d, "GET", path, NULL, NULL, &r);
        done = strcmp(job_field_str(&r, "state"), "succeeded") == 0;
        http_res_free(&r);
        if (!done) {
            usleep(20000);
        }
    }
    cr_expect(done, "job %lld did not succeed", (long long)job);

    proto_msg_init(&m);
    m.type = PROTO_BYE;
    m.id = 14;
    m.u.bye.worker_id = wid;
    req_msg(s, &m, &rep);
    cr_expect_eq(rep.type, PROTO_BYE);
    proto_msg_free(&rep);

    nng_close(s);
    stop_daemon(&d);
}

/* ---- start-up refusals --------------------------------------------------- */

static char *read_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void expect_refused_db(daemon_proc *d, const char *db)
{
    size_t before_len = 0;
    char *before = read_bytes(db, &before_len);
    char data[300];
    snprintf(data, sizeof data, "%s/data", d->dir);
    char api[64];
    char wk[64];
    snprintf(api, sizeof api, "http://127.0.0.1:%d", free_port());
    snprintf(wk, sizeof wk, "tcp://127.0.0.1:%d", free_port());
    const char *args[] = {"--data-dir",      data, "--db", db, "--api-listen", api,
                          "--worker-listen", wk,   NULL};
    pid_t pid = spawn(d, args);
    int rc = wait_exit(pid, 10000);
    char *log = slurp(d->log);
    cr_expect_neq(rc, 0, "rushesd accepted a foreign database; log:\n%s", log);
    cr_expect_not_null(strstr(log, db), "message does not name the file:\n%s", log);
    cr_expect_null(strstr(log, "listening"), "%s", log);
    free(log);
    size_t after_len = 0;
    char *after = read_bytes(db, &after_len);
    cr_expect(before_len == after_len && memcmp(before, after, before_len) == 0, "%s was modified",
              db);
    free(before);
    free(after);
}

Test(startup, foreign_database_refused_untouched, .timeout = 30)
{
    daemon_proc d;
    memset(&d, 0, sizeof d);
    make_dir_tree(&d);
    char db[400];
    snprintf(db, sizeof db, "%s/random.db", d.dir);
    FILE *f = fopen(db, "wb");
    unsigned int seed = 12345;
    for (int i = 0; i < 8192; i++) {
        fputc(rand_r(&seed) & 0xff, f);
    }
    fclose(f);
    expect_refused_db(&d, db);

    snprintf(db, sizeof db, "%s/other-app.db", d.dir);
    sqlite3 *sq = NULL;
    cr_assert_eq(sqlite3_open(db, &sq), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(sq,
                              "CREATE TABLE recipes(id INTEGER PRIMARY KEY, name TEXT);"
                              "INSERT INTO recipes(name) VALUES('soup');",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(sq);
    expect_refused_db(&d, db);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d.dir);
    cr_expect(system(cmd) == 0);
}

Test(startup, config_errors_exit_2, .timeout = 30)
{
    daemon_proc d;
    memset(&d, 0, sizeof d);
    make_dir_tree(&d);
    char data[300];
    snprintf(data, sizeof data, "%s/data", d.dir);

    const char *a1[] = {"--data-dir", data, "--frobnicate", "1", NULL};
    int rc = wait_exit(spawn(&d, a1), 10000);
    char *log = slurp(d.log);
    cr_expect_eq(rc, 2, "%s", log);
    cr_expect_not_null(strstr(log, "--frobnicate"), "%s", log);
    free(log);

    char conf[400];
    snprintf(conf, sizeof conf, "%s/rushesd.json", d.dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "{\n  // comments are allowed\n  \"data_dir\": \"%s\",\n  \"lease_tll_ms\": 5\n}\n",
            data);
    fclose(f);
    const char *a2[] = {"--config", conf, NULL};
    rc = wait_exit(spawn(&d, a2), 10000);
    log = slurp(d.log);
    cr_expect_eq(rc, 2, "%s", log);
    cr_expect_not_null(strstr(log, "lease_tll_ms"), "%s", log);
    free(log);

    const char *a3[] = {"--data-dir", data, "--media-root", "/nonexistent/rushes-root", NULL};
    rc = wait_exit(spawn(&d, a3), 10000);
    log = slurp(d.log);
    cr_expect_neq(rc, 0, "%s", log);
    cr_expect_not_null(strstr(log, "/nonexistent/rushes-root"), "%s", log);
    free(log);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d.dir);
    cr_expect(system(cmd) == 0);
}
