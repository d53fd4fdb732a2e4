/*
 * http_load.c: a small closed-loop HTTP/1.1 load generator for bench/queue.
 * C connections, each with one keep-alive socket, send the same request
 * again as soon as the previous answer arrives, for S seconds. Prints
 * requests/s, latency percentiles and the count of each status code, as one
 * JSON line, so the bench script can compute ratios.
 *
 *   http_load HOST PORT METHOD PATH BODY_FILE|- CONNECTIONS SECONDS [KEY_PREFIX]
 *
 * With KEY_PREFIX every request carries a unique Idempotency-Key. With
 * RUSHES_TOKEN set every request carries it as a bearer token; with
 * RUSHES_LOAD_GAP_MS each connection pauses that long before each request
 * (an open-ended think time, so a submit load can match what workers drain).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 4000000

typedef struct load_cfg {
    const char *host;
    int port;
    const char *method;
    const char *path;
    const char *body;
    size_t body_len;
    const char *key_prefix;
    double seconds;
    char authz[160]; /* "Authorization: Bearer ...\r\n" from $RUSHES_TOKEN, or "" */
    long gap_us;     /* pause between a reply and the next request ($RUSHES_LOAD_GAP_MS) */
} load_cfg;

typedef struct load_thread {
    const load_cfg *cfg;
    int index;
    pthread_t tid;
    double *lat_ms;
    size_t nlat;
    size_t cap;
    long status[6]; /* 1xx..5xx, [0] = errors */
} load_thread;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const load_cfg *c)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    inet_pton(AF_INET, c->host, &sa.sin_addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response; returns the status code or -1. */
static int read_response(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, cap - have - 1);
        if (r <= 0) {
            return -1;
        }
        have += (size_t)r;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL) {
            if (have >= cap - 1) {
                return -1;
            }
            continue;
        }
        size_t hdr = (size_t)(end - buf) + 4;
        long clen = 0;
        char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl != NULL && cl < end) {
            clen = strtol(cl + 17, NULL, 10);
        }
        while (have < hdr + (size_t)clen) {
            if (have >= cap - 1) {
                return -1;
            }
            r = read(fd, buf + have, cap - have - 1);
            if (r <= 0) {
                return -1;
            }
            have += (size_t)r;
        }
        int status = 0;
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
            return -1;
        }
        return status;
    }
}

static void *run(void *arg)
{
    load_thread *t = arg;
    const load_cfg *c = t->cfg;
    char *req = malloc(c->body_len + 1024);
    char *resp = malloc(1 << 20);
    int fd = connect_to(c);
    double end = now_s() + c->seconds;
    long seq = 0;
    while (fd >= 0 && now_s() < end) {
        char key[128] = "";
        if (c->key_prefix != NULL) {
            snprintf(key, sizeof key, "Idempotency-Key: %s-%d-%ld\r\n", c->key_prefix, t->index,
                     seq++);
        }
        int n = snprintf(req, 1024,
                         "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         "%s%sContent-Length: %zu\r\n\r\n",
                         c->method, c->path, c->host, key, c->authz, c->body_len);
        memcpy(req + n, c->body, c->body_len);
        if (c->gap_us > 0) {
            usleep((useconds_t)c->gap_us);
        }
        double t0 = now_s();
        size_t len = (size_t)n + c->body_len;
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(fd, req + off, len - off);
            if (w <= 0) {
                break;
            }
            off += (size_t)w;
        }
        int status = off == len ? read_response(fd, resp, 1 << 20) : -1;
        double dt = (now_s() - t0) * 1000.0;
        if (status < 100 || status > 599) {
            t->status[0]++;
            close(fd);
            fd = connect_to(c);
            continue;
        }
        t->status[status / 100]++;
        if (t->nlat < t->cap) {
            t->lat_ms[t->nlat++] = dt;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    free(req);
    free(resp);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: http_load HOST PORT METHOD PATH BODY_FILE|- CONNECTIONS SECONDS "
                        "[KEY_PREFIX]\n");
        return 2;
    }
    load_cfg c = {.host = argv[1], .port = atoi(argv[2]), .method = argv[3], .path = argv[4]};
    static char body[1 << 16];
    if (strcmp(argv[5], "-") != 0) {
        FILE *f = fopen(argv[5], "rb");
        if (f == NULL) {
            fprintf(stderr, "http_load: %s: %s\n", argv[5], strerror(errno));
            return 1;
        }
        c.body_len = fread(body, 1, sizeof body, f);
        fclose(f);
    }
    c.body = body;
    int nconn = atoi(argv[6]);
    c.seconds = atof(argv[7]);
    c.key_prefix = argc > 8 ? argv[8] : NULL;
    const char *gap = getenv("RUSHES_LOAD_GAP_MS");
    c.gap_us = gap != NULL ? (long)(atof(gap) * 1000) : 0;
    const char *token = getenv("RUSHES_TOKEN");
    if (token != NULL && token[0] != '\0' && strlen(token) < 100) {
        snprintf(c.authz, sizeof c.authz, "Authorization: Bearer %s\r\n", token);
    }
    if (nconn < 1 || nconn > 1024 || c.seconds <= 0) {
        fprintf(stderr, "http_load: bad CONNECTIONS or SECONDS\n");
        return 2;
    }
    load_thread *th = calloc((size_t)nconn, sizeof *th);
    for (int i = 0; i < nconn; i++) {
        th[i].cfg = &c;
        th[i].index = i;
        th[i].cap = MAX_SAMPLES / (size_t)nconn;
        th[i].lat_ms = malloc(th[i].cap * sizeof(double));
        pthread_create(&th[i].tid, NULL, run, &th[i]);
    }
    size_t total = 0;
    long status[6] = {0};
    for (int i = 0; i < nconn; i++) {
        pthread_join(th[i].tid, NULL);
        total += th[i].nlat;
        for (int s = 0; s < 6; s++) {
            status[s] += th[i].status[s];
        }
    }
    double *all = malloc((total + 1) * sizeof(double));
    size_t k = 0;
    for (int i = 0; i < nconn; i++) {
        memcpy(all + k, th[i].lat_ms, th[i].nlat * sizeof(double));
        k += th[i].nlat;
        free(th[i].lat_ms);
    }
    qsort(all, total, sizeof(double), cmp_double);
    double p50 = total ? all[total / 2] : 0;
    double p99 = total ? all[(size_t)((double)total * 0.99)] : 0;
    double max = total ? all[total - 1] : 0;
    printf("{\"requests\":%zu,\"seconds\":%.2f,\"rps\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"max_ms\":%.3f,\"errors\":%ld,\"2xx\":%ld,\"3xx\":%ld,\"4xx\":%ld,\"5xx\":%ld}\n",
           total, c.seconds, (double)total / c.seconds, p50, p99, max, status[0], status[2],
           status[3], status[4], status[5]);
    free(all);
    free(th);
    return status[0] > 0 || status[5] > 0 ? 1 : 0;
}
