/*
 * fs.h: file-system helpers every process shares.
 *
 * - Atomic output: write to a temporary file in the destination folder,
 *   fsync it, rename it over the final name, fsync the folder. A reader
 *   never sees a half-written file under the final name.
 * - Media-root containment: a path is accepted only if its fully resolved
 *   form (symlinks and ".." followed) lies inside one of the configured
 *   roots, so "roots/../etc" and symlink escapes are refused.
 */
#ifndef RS_FS_H
#define RS_FS_H

#include <stddef.h>

#include "err.h"

/* Writes len bytes of data to path atomically (mode 0644). */
rs_err rs_fs_write_atomic(const char *path, const void *data, size_t len, rs_error *e);

/* Like rs_fs_write_atomic with an explicit mode (e.g. 0600 for keys). */
rs_err rs_fs_write_atomic_mode(const char *path, const void *data, size_t len, int mode,
                               rs_error *e);

/* mkdir -p with mode 0755. Existing folders are fine. */
rs_err rs_fs_mkdirs(const char *path, rs_error *e);

/*
 * Resolves path (must exist) with realpath() and checks it lies inside one
 * of roots[0..nroots) (each also resolved). On success writes the resolved
 * path into out (PATH_MAX bytes, caller-owned). RS_ENOENT if path does not
 * exist, RS_EPERM if it escapes every root.
 */
rs_err rs_fs_resolve_in_roots(const char *path, const char *const *roots, size_t nroots,
                              char *out, size_t outlen, rs_error *e);

/* rename(src, dst), then fsync dst's folder so the new name survives a
 * crash. Both must be in the same file system (the same folder, usually). */
rs_err rs_fs_rename_durable(const char *src, const char *dst, rs_error *e);

/* Reads a whole file (at most cap bytes) into a malloc'd, NUL-terminated
 * buffer the caller frees. RS_ETOOBIG if the file is larger than cap. */
rs_err rs_fs_read_all(const char *path, size_t cap, char **out, size_t *outlen, rs_error *e);

/*
 * Streaming atomic output, for writers that need a file name or descriptor
 * (libtiff, libpng, libsndfile, libavformat, OpenEXR). rs_fs_atomic_open
 * creates a unique temporary file beside path (mode 0644) and fills a: the
 * caller writes through a->fd or opens a->tmp by name. rs_fs_atomic_commit
 * fsyncs it, renames it over path and fsyncs the folder; rs_fs_atomic_abort
 * removes it. Exactly one of commit/abort must follow a successful open;
 * both close a->fd (set it to -1 first if a library already closed it).
 */
typedef struct rs_fs_atomic {
    int fd;
    char tmp[4096];
    char path[4096];
} rs_fs_atomic;

rs_err rs_fs_atomic_open(const char *path, rs_fs_atomic *a, rs_error *e);
rs_err rs_fs_atomic_commit(rs_fs_atomic *a, rs_error *e);
void rs_fs_atomic_abort(rs_fs_atomic *a);

#endif
