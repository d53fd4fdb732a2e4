/*
 * cli_models.h: `rushes models` (the model registry) and `rushes submit
 * removal` (a removal_train job plus a removal_infer job that depends on it),
 * in cli/models.c.
 */
#ifndef RS_CLI_MODELS_H
#define RS_CLI_MODELS_H

#include "args.h"
#include "cli.h"

extern const cli_opt_spec cli_models_opts[];

/* rushes models [ID] [--project P] */
int cli_cmd_models(cli_ctx *c, const cli_args *a);

/* rushes submit removal --project P --param frames=... --param masks=...
 * --param output=... [--param steps=N] [--param from=MODEL] ...: submits
 * removal_train, then removal_infer with train_job and depends_on set to
 * it; prints both ids ("train ID" / "infer ID"), or with --json
 * {"train":{job},"infer":{job}}. --wait watches both to the end. */
int cli_removal_submit(cli_ctx *c, const cli_args *a);

#endif
