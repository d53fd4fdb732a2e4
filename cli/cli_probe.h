/*
 * cli_probe.h: `rushes probe FILE|PATTERN ... [--json]` (cli/probe.c).
 * Runs locally, no server: prints what the media readers see.
 */
#ifndef RS_CLI_PROBE_H
#define RS_CLI_PROBE_H

#include "args.h"
#include "cli.h"

int cli_cmd_probe(cli_ctx *c, const cli_args *a);

#endif
