/*
 * cli_ops.h: operator commands of `rushes` (cli/ops.c): tokens, schedules,
 * backup, worker drain, job priority, project limits.
 */
#ifndef RS_CLI_OPS_H
#define RS_CLI_OPS_H

#include "args.h"
#include "cli.h"

extern const cli_opt_spec cli_token_opts[];
extern const cli_opt_spec cli_schedule_opts[];
extern const cli_opt_spec cli_admin_opts[];

int cli_cmd_token(cli_ctx *c, const cli_args *a);
int cli_cmd_schedule(cli_ctx *c, const cli_args *a);
int cli_cmd_admin(cli_ctx *c, const cli_args *a);
int cli_cmd_drain(cli_ctx *c, const cli_args *a);
int cli_cmd_undrain(cli_ctx *c, const cli_args *a);
int cli_cmd_priority(cli_ctx *c, const cli_args *a);
int cli_cmd_limit(cli_ctx *c, const cli_args *a);

#endif
