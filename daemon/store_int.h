/*
 * store_int.h: what store_ops.c (tokens, tenancy, limits, schedules,
 * metrics, backup) needs from store.c's private state. Not for other
 * modules: they use store.h.
 */
#ifndef RS_STORE_INT_H
#define RS_STORE_INT_H

#include <sqlite3.h>

#include "store.h"

sqlite3 *store_int_db(store *s);
/* One atomic call: BEGIN, or a SAVEPOINT inside a batch. */
rs_err store_int_begin(store *s, rs_error *e);
/* Commits/releases when rc is RS_OK, else undoes this call only. */
rs_err store_int_end(store *s, rs_err rc, rs_error *e);
/* RS_EDB naming the file, what and SQLite's message. */
rs_err store_int_dberr(store *s, rs_error *e, const char *what);
const char *store_int_path(const store *s);

#endif
