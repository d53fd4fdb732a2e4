/*
 * main.c: the `rushes` executable. Everything lives in cli_run (commands.c)
 * so tests can drive the same code with captured output.
 */
#include <signal.h>
#include <stdio.h>

#include "cli.h"

int main(int argc, char **argv)
{
    /* A closed pipe (rushes ls | head) must end us quietly, not mid-write. */
    signal(SIGPIPE, SIG_DFL);
    int rc = cli_run(argc, argv, stdout, stderr);
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        rc = CLI_EXIT_FAIL;
    }
    return rc;
}
