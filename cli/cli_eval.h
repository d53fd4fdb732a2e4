/*
 * cli_eval.h: `rushes eval removal ...` (cli/eval.c). Scores removal
 * methods inside the mask against truth frames, locally; only --method
 * rushes talks to a server (--server, RUSHES_TOKEN) to run the trained
 * model through the queue (frames written under --media-root).
 */
#ifndef RS_CLI_EVAL_H
#define RS_CLI_EVAL_H

#include "args.h"
#include "cli.h"

extern const cli_opt_spec cli_eval_opts[];
int cli_cmd_eval(cli_ctx *c, const cli_args *a);

#endif
