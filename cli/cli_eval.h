/*
 * cli_eval.h: `rushes eval removal ...` (cli/eval.c). Runs locally, no
 * server: scores removal methods inside the mask against truth frames.
 */
#ifndef RS_CLI_EVAL_H
#define RS_CLI_EVAL_H

#include "args.h"
#include "cli.h"

extern const cli_opt_spec cli_eval_opts[];
int cli_cmd_eval(cli_ctx *c, const cli_args *a);

#endif
