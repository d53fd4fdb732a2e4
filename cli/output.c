/*
 * output.c: pure rendering helpers for the CLI (see output.h). Nothing here
 * talks to the network or the terminal; everything writes into caller
 * buffers or a caller FILE, which is what lets cli_test.c check exact text.
 */
#include "output.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clamp01(double frac)
{
    if (isnan(frac) || frac < 0.0) {
        return 0.0;
    }
    if (frac > 1.0) {
        return 1.0;
    }
    return frac;
}

void cli_progress_bar(double frac, int width, char *buf, size_t buflen)
{
    if (buflen == 0) {
        return;
    }
    buf[0] = '\0';
    if (width < 3) {
        return;
    }
    if ((size_t)width > buflen - 1) {
        width = (int)(buflen - 1);
        if (width < 3) {
            return;
        }
    }
    int inner = width - 2;
    int fill = (int)floor(clamp01(frac) * inner);
    if (fill > inner) {
        fill = inner;
    }
    buf[0] = '[';
    for (int i = 0; i < inner; i++) {
        buf[1 + i] = i < fill ? '#' : '-';
    }
    buf[width - 1] = ']';
    buf[width] = '\0';
}

int cli_percent(double frac)
{
    int p = (int)floor(clamp01(frac) * 100.0 + 1e-9);
    return p > 100 ? 100 : p;
}

void cli_duration_format(int64_t ms, char *buf, size_t buflen)
{
    if (ms < 0) {
        ms = 0;
    }
    int64_t s = ms / 1000;
    if (s < 60) {
        snprintf(buf, buflen, "%llds", (long long)s);
    } else if (s < 3600) {
        snprintf(buf, buflen, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    } else if (s < 86400) {
        snprintf(buf, buflen, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    } else {
        snprintf(buf, buflen, "%lldd%02lldh", (long long)(s / 86400),
                 (long long)(s % 86400 / 3600));
    }
}

/* Reads exactly n digits. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) {
            return false;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool expect(const char **p, char c)
{
    if (**p != c) {
        return false;
    }
    (*p)++;
    return true;
}

bool cli_time_parse(const char *iso, int64_t *ms_out)
{
    if (iso == NULL) {
        return false;
    }
    const char *p = iso;
    int y, mo, d, h, mi, s;
    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
        !digits(&p, 2, &d)) {
        return false;
    }
    if (*p != 'T' && *p != 't' && *p != ' ') {
        return false;
    }
    p++;
    if (!digits(&p, 2, &h) || !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') ||
        !digits(&p, 2, &s)) {
        return false;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
        return false;
    }
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        int64_t scale = 100;
        while (isdigit((unsigned char)*p)) {
            if (nd < 3) {
                frac_ms += (*p - '0') * scale;
                scale /= 10;
            }
            nd++;
            p++;
        }
        if (nd == 0) {
            return false;
        }
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        p++;
        int oh, om;
        if (!digits(&p, 2, &oh) || !expect(&p, ':') || !digits(&p, 2, &om)) {
            return false;
        }
        offset_s = sign * (int64_t)(oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (*p != '\0') {
        return false;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    time_t t = timegm(&tm);
    *ms_out = ((int64_t)t - offset_s) * 1000 + frac_ms;
    return true;
}

void cli_age_format(const char *iso, int64_t now_ms, char *buf, size_t buflen)
{
    int64_t t;
    if (!cli_time_parse(iso, &t)) {
        snprintf(buf, buflen, "-");
        return;
    }
    cli_duration_format(now_ms - t, buf, buflen);
}

void cli_sanitize(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f) {
            *s = ' ';
        }
    }
}

void cli_truncate(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) {
        return;
    }
    if (max < 3) {
        s[max] = '\0';
        return;
    }
    memcpy(s + max - 3, "...", 4);
}

const char *cli_json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double cli_json_num(const cJSON *o, const char *key, double dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

bool cli_json_is_null_or_missing(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v == NULL || cJSON_IsNull(v);
}

bool cli_state_finished(const char *state)
{
    return state != NULL && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
                             strcmp(state, "cancelled") == 0);
}

/* A number printed without trailing zeros: 24 -> "24", 23.976 -> "23.976". */
static void fmt_num(double v, char *buf, size_t buflen)
{
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, buflen, "%lld", (long long)v);
    } else {
        snprintf(buf, buflen, "%.3f", v);
        char *end = buf + strlen(buf) - 1;
        while (end > buf && *end == '0') {
            *end-- = '\0';
        }
        if (*end == '.') {
            *end = '\0';
        }
    }
}

void cli_clip_fields(const cJSON *clip, char *res, char *frames, char *fps, char *codec,
                     size_t buflen)
{
    snprintf(res, buflen, "-");
    snprintf(frames, buflen, "-");
    snprintf(fps, buflen, "-");
    snprintf(codec, buflen, "-");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(clip, "info");
    if (!cJSON_IsObject(info)) {
        return;
    }
    double w = cli_json_num(info, "width", -1);
    double h = cli_json_num(info, "height", -1);
    if (w > 0 && h > 0 && w < 1e9 && h < 1e9) {
        snprintf(res, buflen, "%lldx%lld", (long long)w, (long long)h);
    }
    double nf = cli_json_num(info, "frames", -1);
    if (nf >= 0 && nf < 1e15) {
        snprintf(frames, buflen, "%lld", (long long)nf);
    }
    double ff = cli_json_num(info, "fps_float", -1);
    double fn = cli_json_num(info, "fps_num", -1);
    double fd = cli_json_num(info, "fps_den", -1);
    if (ff <= 0 && fn > 0 && fd > 0) {
        ff = fn / fd;
    }
    if (ff > 0 && ff < 1e6) {
        fmt_num(ff, fps, buflen);
    } else if (cli_json_str(info, "fps") != NULL) {
        snprintf(fps, buflen, "%s", cli_json_str(info, "fps"));
    }
    const char *c = cli_json_str(info, "codec");
    if (c == NULL) {
        c = cli_json_str(info, "format");
    }
    if (c != NULL) {
        snprintf(codec, buflen, "%s", c);
        cli_sanitize(codec);
    }
}

struct cli_table {
    int ncols;
    size_t nrows; /* row 0 is the header */
    size_t cap;
    char **cells; /* nrows * ncols */
};

rs_err cli_table_create(int ncols, const char *const *headers, cli_table **out)
{
    if (ncols < 1) {
        return RS_EINVAL;
    }
    cli_table *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return RS_ENOMEM;
    }
    t->ncols = ncols;
    rs_err rc = cli_table_add(t, headers);
    if (rc != RS_OK) {
        cli_table_destroy(t);
        return rc;
    }
    *out = t;
    return RS_OK;
}

rs_err cli_table_add(cli_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t ncap = t->cap == 0 ? 16 : t->cap * 2;
        char **n = realloc(t->cells, ncap * (size_t)t->ncols * sizeof *n);
        if (n == NULL) {
            return RS_ENOMEM;
        }
        t->cells = n;
        t->cap = ncap;
    }
    char **row = t->cells + t->nrows * (size_t)t->ncols;
    for (int c = 0; c < t->ncols; c++) {
        const char *v = cells[c] != NULL && cells[c][0] != '\0' ? cells[c] : "-";
        row[c] = strdup(v);
        if (row[c] == NULL) {
            for (int k = 0; k < c; k++) {
                free(row[k]);
            }
            return RS_ENOMEM;
        }
        cli_sanitize(row[c]);
    }
    t->nrows++;
    return RS_OK;
}

void cli_table_print(const cli_table *t, FILE *f)
{
    size_t *w = calloc((size_t)t->ncols, sizeof *w);
    if (w == NULL) {
        return;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (n > w[c]) {
                w[c] = n;
            }
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *v = t->cells[r * (size_t)t->ncols + (size_t)c];
            if (c == t->ncols - 1) {
                fprintf(f, "%s\n", v);
            } else {
                fprintf(f, "%-*s  ", (int)w[c], v);
            }
        }
    }
    free(w);
}

void cli_table_destroy(cli_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
}
