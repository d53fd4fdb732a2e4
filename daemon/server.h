/*
 * server.h: rushesd's one libuv loop, which owns the store and all state.
 *
 * nng's threads (HTTP handler callbacks, REP context callbacks) never touch
 * the store. They parse and validate what they can, then hand a request
 * record (an srv_item) to the loop with server_item_push(); that is the only
 * thread hop a request takes. The loop drains everything that has arrived,
 * opens one store batch, applies each item (each atomic on its own through
 * the store's savepoints), commits once, and only then lets every item send
 * its reply. If the commit fails, every item of the batch replies with an
 * error: nothing is acknowledged that is not committed (group commit, see
 * DESIGN.md "Measured facts").
 *
 * The loop also runs the timers (lease expiry, job finalisation) and the
 * signal handlers (SIGTERM/SIGINT: stop accepting, finish the batch in hand,
 * close listeners and the store, exit 0).
 */
#ifndef RSD_SERVER_H
#define RSD_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "store.h"

typedef struct server server;

/*
 * Test-only fault injection: RUSHES_CRASH_AT=<point>[:N] makes rushesd
 * raise(SIGKILL) the Nth time (default 1st) it passes <point>, so crash
 * tests can prove that nothing acknowledged is lost and nothing is
 * acknowledged before it is committed. Points:
 *   submit_committed  a batch holding a submit committed, replies not sent
 *   dispatch_leased   a batch holding a granted lease committed, reply not sent
 *   report_received   a worker report decoded, its batch not committed
 *   report_committed  a batch holding a report committed, reply not sent
 *   finalize          the kind's finalize wrote its outputs, job not completed
 * Parsed once in main and handed to the server; the pass counter lives in
 * the server (no globals).
 */
typedef struct rsd_crash {
    char point[32]; /* "" = off */
    int64_t at;     /* crash on this pass (1-based) */
    int64_t passed;
} rsd_crash;

/* Parses spec (NULL or "" = off). RS_EINVAL names a bad point or count. */
rs_err server_crash_parse(const char *spec, rsd_crash *out, rs_error *e);

/* What the items of one batch did; decides crash points and finalisation. */
typedef struct srv_batch {
    int64_t now_ms;
    bool submitted; /* a job was inserted */
    bool leased;    /* a lease was granted */
    bool reported;  /* a worker report was applied */
    bool succeeded; /* a report of success was accepted: finalise soon */
} srv_batch;

typedef struct srv_item srv_item;

typedef struct srv_item_ops {
    /* Loop thread, inside the open batch. */
    void (*apply)(server *sv, srv_item *it, srv_batch *b);
    /* Loop thread, after the commit (committed=false: it failed, or the
     * item never reached a batch because the daemon is stopping). Sends the
     * reply and frees the item. */
    void (*reply)(server *sv, srv_item *it, bool committed);
} srv_item_ops;

struct srv_item {
    srv_item *next;
    const srv_item_ops *ops;
};

/*
 * Any thread. Queues it for the loop and wakes it. Returns false (and keeps
 * nothing) once the daemon is stopping; the caller then answers itself with
 * "unavailable".
 */
bool server_item_push(server *sv, srv_item *it);

/* Loop thread: the store, the settings, the crash hook. */
store *server_store(server *sv);
const rsd_config *server_config(const server *sv);
void server_crash_point(server *sv, const char *point);

/*
 * The clock schedules are evaluated with: the wall clock, or for tests the
 * milliseconds written in the file named by RUSHES_TEST_CLOCK_FILE (read on
 * every call; a test-only hook like RUSHES_CRASH_AT).
 */
int64_t server_now_ms(server *sv);

/* Creates the loop, opens the store, starts both listeners. */
rs_err server_create(const rsd_config *cfg, const rsd_crash *crash, server **out, rs_error *e);
/* Runs until SIGTERM/SIGINT; returns RS_OK after a clean stop. */
rs_err server_run(server *sv, rs_error *e);
/* Accepts NULL. */
void server_destroy(server *sv);

#endif
