/*
 * sock.c: nng_close on a detached thread with a bounded wait (see sock.h
 * for why). The waiter and the thread share one heap record; whichever of
 * them is last to let go of it frees it.
 */
#include "sock.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct close_job {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    nng_socket sock;
    bool done;
    int refs; /* guarded by mu */
} close_job;

static void job_release(close_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) {
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        free(j);
    }
}

static void *close_main(void *arg)
{
    close_job *j = arg;
    nng_close(j->sock);
    pthread_mutex_lock(&j->mu);
    j->done = true;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
    job_release(j);
    return NULL;
}

rs_err proto_sock_close_bounded(nng_socket s, int timeout_ms, rs_error *e)
{
    close_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        return rs_error_set(e, RS_ENOMEM, "closing socket: out of memory");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->sock = s;
    j->refs = 2;
    pthread_t t;
    int rv = pthread_create(&t, NULL, close_main, j);
    if (rv != 0) {
        pthread_cond_destroy(&j->cv);
        pthread_mutex_destroy(&j->mu);
        free(j);
        return rs_error_set(e, RS_EIO, "closing socket: cannot start a thread: %s", strerror(rv));
    }
    pthread_detach(t);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    while (!j->done) {
        if (pthread_cond_timedwait(&j->cv, &j->mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    bool done = j->done;
    pthread_mutex_unlock(&j->mu);
    job_release(j);
    if (!done) {
        return rs_error_set(e, RS_ETIMEDOUT,
                            "nng_close did not return within %d ms (nng 1.5.2 close deadlock); "
                            "leaving it behind",
                            timeout_ms);
    }
    return RS_OK;
}
