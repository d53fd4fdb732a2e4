/*
 * mhl.c: `rushes mhl verify`, a thin front for the ingest task's verifier
 * (tasks/ingest/ingest.h). Built only when that header declares mhl_verify,
 * so the CLI does not wait on the ingest module to compile.
 */
#include <stdlib.h>

#include "cli.h"
#include "ingest.h"

int cli_mhl_verify(const cli_ctx *c, const char *mhl, const char *root)
{
    rs_error e;
    rs_error_clear(&e);
    size_t n = 0;
    rs_err rc = mhl_verify(mhl, root, &n, &e);
    cJSON *o = c->json ? cJSON_CreateObject() : NULL;
    if (o != NULL) {
        cJSON_AddBoolToObject(o, "ok", rc == RS_OK);
        cJSON_AddStringToObject(o, "mhl", mhl);
        cJSON_AddStringToObject(o, "root", root);
        cJSON_AddNumberToObject(o, "verified", (double)n);
        if (rc != RS_OK) {
            cJSON_AddStringToObject(o, "error", rs_error_text(&e));
        }
        char *s = cJSON_PrintUnformatted(o);
        if (s != NULL) {
            fprintf(c->out, "%s\n", s);
        }
        free(s);
        cJSON_Delete(o);
    }
    if (rc != RS_OK) {
        fprintf(c->err, "rushes: mhl verify: %s\n", rs_error_text(&e));
        return CLI_EXIT_FAIL;
    }
    if (!c->json) {
        fprintf(c->out, "ok: %zu file%s verified\n", n, n == 1 ? "" : "s");
    }
    return CLI_EXIT_OK;
}
