/*
 * ingest.h: the "ingest" job kind and the pieces other modules reuse.
 *
 * params {"path": FILE|FOLDER|PATTERN, "files_per_task": 1..1000 (16)}.
 * plan (daemon) resolves the path inside the media roots and splits the file
 * list into tasks {"root": folder, "files": [relative paths]}; run (worker
 * child) stats, hashes (xxh3) and probes each file; finalize (daemon) groups
 * files into clips and writes an ASC MHL v2.0 manifest plus its chain file.
 */
#ifndef RS_INGEST_H
#define RS_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "task.h"

extern const task_kind task_kind_ingest;

/* The three entry points (also reachable through task_kind_ingest). */
rs_err ingest_plan(const cJSON *params, const task_env *env, cJSON **tasks, rs_error *e);
rs_err ingest_run(const cJSON *task_params, const task_io *io, cJSON **result, rs_error *e);
rs_err ingest_finalize(const cJSON *params, const cJSON *results, const task_env *env,
                       cJSON **job_result, cJSON **clips, rs_error *e);

/*
 * True if a relative path is safe to join under a root: not empty, not
 * absolute, no "." / ".." / empty components.
 */
int ingest_relpath_ok(const char *rel);

/*
 * Parses the frame token of a sequence pattern's file name: "%04d", "%d" or
 * "####". On success fills prefix/suffix lengths and the minimum digit count
 * and returns 1; returns 0 if name holds no token (or more than one).
 */
int ingest_pattern_split(const char *name, size_t *prefix_len, size_t *suffix_off,
                         int *min_digits);

/*
 * Parses and checks the ASC MHL at mhl_path, then rehashes every file it
 * lists (relative to root) and compares size and hash. Fails naming the
 * first file that is missing or differs; *nverified counts files checked.
 */
rs_err mhl_verify(const char *mhl_path, const char *root, size_t *nverified, rs_error *e);

/* The C4 ID (SMPTE ST 2114: "c4" + base58 of SHA-512, 90 chars) of a
 * buffer, as the ASC MHL chain file records it. out must hold 91 bytes. */
void mhl_c4_id(const void *data, size_t len, char out[91]);

#endif
