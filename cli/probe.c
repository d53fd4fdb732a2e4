/*
 * probe.c: `rushes probe FILE|PATTERN ...`, the media readers' view of
 * files without a server. A file is probed by content (media_probe); a
 * still image is also decoded so the channels, sample type, colour
 * encoding and metadata (EXR attributes, PNG text, DPX header text) are
 * shown as the readers return them; WAV/AIFF shows bext and iXML. A
 * pattern ("shot.%04d.exr", "shot.####.dpx") is scanned: frame range,
 * count and gaps, plus the first frame's probe. --json prints one JSON
 * document (an object for one argument, an array for several).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "audio.h"
#include "cli_probe.h"
#include "frame.h"
#include "magic.h"
#include "probe.h"
#include "seq.h"

/* Adds what the image reader returns under "reader". */
static rs_err add_image_view(const char *path, cJSON *o, rs_error *e)
{
    media_frame *f = NULL;
    rs_err rc = media_image_read(path, NULL, &f, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *r = cJSON_AddObjectToObject(o, "reader");
    cJSON *names = cJSON_AddArrayToObject(r, "channels");
    for (uint32_t c = 0; c < f->channels; c++) {
        cJSON_AddItemToArray(names, cJSON_CreateString(f->names[c]));
    }
    cJSON_AddStringToObject(r, "sample", media_sample_name(f->sample));
    cJSON_AddNumberToObject(r, "bit_depth", f->bit_depth);
    cJSON_AddStringToObject(r, "colour", media_colour_name(f->colour));
    cJSON *meta = cJSON_AddObjectToObject(r, "metadata");
    for (size_t i = 0; i < f->nmeta; i++) {
        cJSON_AddStringToObject(meta, f->meta[i].key, f->meta[i].value);
    }
    media_frame_destroy(f);
    return RS_OK;
}

static rs_err add_audio_view(const char *path, cJSON *o, rs_error *e)
{
    media_audio *a = NULL;
    rs_err rc = media_audio_read(path, &a, e);
    if (rc != RS_OK) {
        return rc;
    }
    cJSON *r = cJSON_AddObjectToObject(o, "reader");
    cJSON_AddNumberToObject(r, "sample_rate", a->rate);
    cJSON_AddNumberToObject(r, "channels", a->channels);
    cJSON_AddNumberToObject(r, "frames", (double)a->frames);
    cJSON_AddNumberToObject(r, "bits", a->bits);
    cJSON_AddBoolToObject(r, "float", a->is_float);
    if (a->bext.present) {
        cJSON *b = cJSON_AddObjectToObject(r, "bext");
        cJSON_AddStringToObject(b, "description", a->bext.description);
        cJSON_AddStringToObject(b, "originator", a->bext.originator);
        cJSON_AddStringToObject(b, "originator_reference", a->bext.originator_reference);
        cJSON_AddStringToObject(b, "origination_date", a->bext.origination_date);
        cJSON_AddStringToObject(b, "origination_time", a->bext.origination_time);
        cJSON_AddNumberToObject(b, "time_reference", (double)a->bext.time_reference);
    }
    if (a->ixml != NULL) {
        cJSON_AddStringToObject(r, "ixml", a->ixml);
    }
    media_audio_destroy(a);
    return RS_OK;
}

static rs_err probe_file(const char *path, cJSON **out, rs_error *e)
{
    cJSON *o = NULL;
    rs_err rc = media_probe(path, &o, e);
    if (rc != RS_OK) {
        return rc;
    }
    unsigned char head[16] = {0};
    FILE *fp = fopen(path, "rb");
    size_t n = fp != NULL ? fread(head, 1, sizeof head, fp) : 0;
    if (fp != NULL) {
        fclose(fp);
    }
    media_format fmt = media_format_sniff(head, n);
    if (media_format_is_image(fmt)) {
        rc = add_image_view(path, o, e);
    } else if (fmt == MEDIA_FORMAT_WAV || fmt == MEDIA_FORMAT_AIFF) {
        rc = add_audio_view(path, o, e);
    }
    if (rc != RS_OK) {
        cJSON_Delete(o);
        return rc;
    }
    cJSON_AddStringToObject(o, "path", path);
    *out = o;
    return RS_OK;
}

static rs_err probe_pattern(const char *pattern, cJSON **out, rs_error *e)
{
    media_seq *s = NULL;
    rs_err rc = media_seq_scan(pattern, &s, e);
    if (rc != RS_OK) {
        return rc;
    }
    char first[4096];
    cJSON *o = NULL;
    rc = media_seq_path(s, s->first, first, sizeof first, e);
    if (rc == RS_OK) {
        rc = probe_file(first, &o, e);
    }
    if (rc != RS_OK) {
        media_seq_destroy(s);
        return rc;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(o, "path");
    cJSON_AddStringToObject(o, "path", pattern);
    cJSON_AddStringToObject(o, "first_file", first);
    cJSON *q = cJSON_AddObjectToObject(o, "sequence");
    cJSON_AddNumberToObject(q, "first", (double)s->first);
    cJSON_AddNumberToObject(q, "last", (double)s->last);
    cJSON_AddNumberToObject(q, "count", (double)s->count);
    cJSON_AddNumberToObject(q, "missing", (double)s->missing);
    cJSON *gaps = cJSON_AddArrayToObject(q, "gaps");
    for (size_t i = 0; i < s->ngaps; i++) {
        const double g[2] = {(double)s->gaps[i].first, (double)s->gaps[i].last};
        cJSON_AddItemToArray(gaps, cJSON_CreateDoubleArray(g, 2));
    }
    media_seq_destroy(s);
    *out = o;
    return RS_OK;
}

static void print_human(FILE *out, const cJSON *o)
{
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(o, "path");
    fprintf(out, "%s\n", cJSON_IsString(path) ? path->valuestring : "?");
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        if (strcmp(it->string, "path") == 0) {
            continue;
        }
        if (cJSON_IsString(it)) {
            fprintf(out, "  %-16s %s\n", it->string, it->valuestring);
        } else {
            char *s = cJSON_PrintUnformatted(it);
            fprintf(out, "  %-16s %s\n", it->string, s != NULL ? s : "?");
            free(s);
        }
    }
}

int cli_cmd_probe(cli_ctx *c, const cli_args *a)
{
    int status = CLI_EXIT_OK;
    cJSON *all = cJSON_CreateArray();
    if (all == NULL) {
        fprintf(c->err, "rushes: probe: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < a->npos; i++) {
        const char *arg = a->pos[i];
        rs_error e;
        rs_error_clear(&e);
        cJSON *o = NULL;
        struct stat st;
        bool literal = stat(arg, &st) == 0;
        rs_err rc = !literal && media_seq_is_pattern(arg) ? probe_pattern(arg, &o, &e)
                                                          : probe_file(arg, &o, &e);
        if (rc != RS_OK) {
            fprintf(c->err, "rushes: probe: %s\n", rs_error_text(&e));
            status = CLI_EXIT_FAIL;
            o = cJSON_CreateObject();
            if (o == NULL) {
                continue;
            }
            cJSON_AddStringToObject(o, "path", arg);
            cJSON_AddStringToObject(o, "error", rs_error_text(&e));
        }
        if (!c->json && rc == RS_OK) {
            print_human(c->out, o);
        }
        cJSON_AddItemToArray(all, o);
    }
    if (c->json) {
        cJSON *doc = a->npos == 1 ? cJSON_GetArrayItem(all, 0) : all;
        char *s = doc != NULL ? cJSON_Print(doc) : NULL;
        if (s != NULL) {
            fprintf(c->out, "%s\n", s);
        }
        free(s);
    }
    cJSON_Delete(all);
    return status;
}
