/*
 * args.h: command-line parsing for the CLI, pure and testable.
 *
 * Options are long only ("--name value" or "--name=value"; "-h" is
 * "--help"), may come before or after positionals, and "--" ends them.
 * Every command also accepts the global options (--server, --json,
 * --timeout-ms, --help). Errors are usage errors: one line naming the
 * option, and the caller exits 2.
 */
#ifndef RS_CLI_ARGS_H
#define RS_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"

#define CLI_ARGS_MAX 256

typedef enum cli_opt_kind {
    CLI_OPT_FLAG,  /* --wait */
    CLI_OPT_VALUE, /* --project P (last one wins) */
    CLI_OPT_MULTI, /* --param k=v (every one kept, in order) */
} cli_opt_kind;

typedef struct cli_opt_spec {
    const char *name; /* without the leading "--"; NULL ends a spec list */
    cli_opt_kind kind;
} cli_opt_spec;

typedef struct cli_opt_value {
    const char *name;  /* points into the spec */
    const char *value; /* "" for flags; borrowed from argv */
} cli_opt_value;

typedef struct cli_args {
    const char *pos[CLI_ARGS_MAX];
    int npos;
    cli_opt_value opts[CLI_ARGS_MAX];
    int nopts;
} cli_args;

/* The global options every command takes. */
extern const cli_opt_spec cli_global_opts[];

/*
 * Parses argv[0..argc) against spec plus the global options into *out.
 * RS_EINVAL "unknown option --x", "--x needs a value", "--x takes no value",
 * "too many arguments".
 */
rs_err cli_args_parse(int argc, char *const *argv, const cli_opt_spec *spec, cli_args *out,
                      rs_error *e);

/* Last value of an option, "" for a present flag, NULL if absent. */
const char *cli_args_get(const cli_args *a, const char *name);
bool cli_args_has(const cli_args *a, const char *name);

/* Strict integer in [min, max]; RS_EINVAL "--name: 'x' is not an integer in min..max". */
rs_err cli_parse_int(const char *name, const char *s, int64_t min, int64_t max, int64_t *out,
                     rs_error *e);

/*
 * Adds "key=value" to the object params: value becomes the JSON it parses
 * as (numbers, true/false/null, objects, arrays, quoted strings), else a
 * plain string. A repeated key replaces the earlier value.
 * RS_EINVAL "--param 'x': expected key=value" / "empty key".
 */
rs_err cli_param_parse(cJSON *params, const char *kv, rs_error *e);

/*
 * Builds the POST /api/v1/jobs body for kind from submit's options
 * (--project required, --param..., --params JSON | --params-file FILE,
 * --priority, --depends-on ID[,ID], --max-attempts, --pool, --window CRON
 * with --window-hours N | --window-min N and --tz ZONE). *out is a new
 * object the caller deletes. Errors name the option at fault.
 */
rs_err cli_submit_body(const char *kind, const cli_args *a, cJSON **out, rs_error *e);

/* The option list of submit/ingest. */
extern const cli_opt_spec cli_submit_opts[];

#endif
