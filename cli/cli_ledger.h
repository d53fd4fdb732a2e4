/*
 * cli_ledger.h: the compliance commands (cli/ledger.c, docs/COMPLIANCE.md):
 *   rushes consent add|ls|revoke     the consent registry on the server
 *   rushes audit JOB|CLIP|OUTPUT     recompute output - source against the
 *                                    recorded masks, verify chain and hashes
 *   rushes ledger export|pubkey|verify
 * `ledger verify` and `audit --export FILE --pubkey KEY --masks DIR` work
 * offline, without the farm.
 */
#ifndef RS_CLI_LEDGER_H
#define RS_CLI_LEDGER_H

#include "args.h"
#include "cli.h"

extern const cli_opt_spec cli_consent_opts[];
extern const cli_opt_spec cli_audit_opts[];
extern const cli_opt_spec cli_ledger_opts[];

int cli_cmd_consent(cli_ctx *c, const cli_args *a);
int cli_cmd_audit(cli_ctx *c, const cli_args *a);
int cli_cmd_ledger(cli_ctx *c, const cli_args *a);

#endif
