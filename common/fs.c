/*
 * fs.c: atomic writes, mkdir -p, containment checks. See fs.h.
 */
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static rs_err fsync_dir_of(const char *path, rs_error *e)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof dir, ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return rs_error_set(e, RS_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
    }
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) {
        return rs_error_set(e, RS_EIO, "%s: fsync folder: %s", dir, strerror(errno));
    }
    return RS_OK;
}

rs_err rs_fs_write_atomic_mode(const char *path, const void *data, size_t len, int mode,
                               rs_error *e)
{
    char tmp[PATH_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return rs_error_set(e, RS_EINVAL, "%s: path too long", path);
    }
    rs_err rc = RS_OK;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return rs_error_set(e, RS_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = rs_error_set(e, RS_EIO, "%s: write: %s", tmp, strerror(errno));
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: fsync: %s", tmp, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = rs_error_set(e, RS_EIO, "%s: close: %s", tmp, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: rename into place: %s", path, strerror(errno));
        goto out;
    }
    rc = fsync_dir_of(path, e);
out:
    if (fd >= 0) {
        close(fd);
    }
    if (rc != RS_OK) {
        unlink(tmp);
    }
    return rc;
}

rs_err rs_fs_write_atomic(const char *path, const void *data, size_t len, rs_error *e)
{
    return rs_fs_write_atomic_mode(path, data, len, 0644, e);
}

rs_err rs_fs_mkdirs(const char *path, rs_error *e)
{
    char buf[PATH_MAX];
    int n = snprintf(buf, sizeof buf, "%s", path);
    if (n < 0 || (size_t)n >= sizeof buf) {
        return rs_error_set(e, RS_EINVAL, "%s: path too long", path);
    }
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            return rs_error_set(e, RS_EIO, "%s: mkdir: %s", buf, strerror(errno));
        }
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
        return rs_error_set(e, RS_EIO, "%s: mkdir: %s", buf, strerror(errno));
    }
    return RS_OK;
}

static int path_within(const char *path, const char *root)
{
    size_t rl = strlen(root);
    if (rl == 1 && root[0] == '/') {
        return 1;
    }
    if (strncmp(path, root, rl) != 0) {
        return 0;
    }
    return path[rl] == '\0' || path[rl] == '/';
}

rs_err rs_fs_resolve_in_roots(const char *path, const char *const *roots, size_t nroots,
                              char *out, size_t outlen, rs_error *e)
{
    char real[PATH_MAX];
    if (realpath(path, real) == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return rs_error_set(e, RS_ENOENT, "%s: no such file or folder", path);
        }
        return rs_error_set(e, RS_EIO, "%s: %s", path, strerror(errno));
    }
    for (size_t i = 0; i < nroots; i++) {
        char rroot[PATH_MAX];
        if (realpath(roots[i], rroot) == NULL) {
            continue;
        }
        if (path_within(real, rroot)) {
            if (strlen(real) + 1 > outlen) {
                return rs_error_set(e, RS_EINVAL, "%s: resolved path too long", path);
            }
            memcpy(out, real, strlen(real) + 1);
            return RS_OK;
        }
    }
    return rs_error_set(e, RS_EPERM, "%s: outside the configured media roots", path);
}

rs_err rs_fs_read_all(const char *path, size_t cap, char **out, size_t *outlen, rs_error *e)
{
    rs_err rc = RS_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (errno == ENOENT) {
            return rs_error_set(e, RS_ENOENT, "%s: no such file", path);
        }
        return rs_error_set(e, RS_EIO, "%s: %s", path, strerror(errno));
    }
    size_t size = 0;
    size_t alloc = 4096;
    buf = malloc(alloc + 1);
    if (buf == NULL) {
        rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (;;) {
        if (size == alloc) {
            if (alloc >= cap + 1) {
                rc = rs_error_set(e, RS_ETOOBIG, "%s: larger than %zu bytes", path, cap);
                goto out;
            }
            size_t na = alloc * 2;
            char *nb = realloc(buf, na + 1);
            if (nb == NULL) {
                rc = rs_error_set(e, RS_ENOMEM, "%s: out of memory", path);
                goto out;
            }
            buf = nb;
            alloc = na;
        }
        size_t r = fread(buf + size, 1, alloc - size, f);
        size += r;
        if (r == 0) {
            break;
        }
    }
    if (ferror(f)) {
        rc = rs_error_set(e, RS_EIO, "%s: read error", path);
        goto out;
    }
    if (size > cap) {
        rc = rs_error_set(e, RS_ETOOBIG, "%s: larger than %zu bytes", path, cap);
        goto out;
    }
    buf[size] = '\0';
    *out = buf;
    buf = NULL;
    if (outlen != NULL) {
        *outlen = size;
    }
out:
    free(buf);
    fclose(f);
    return rc;
}

rs_err rs_fs_atomic_open(const char *path, rs_fs_atomic *a, rs_error *e)
{
    a->fd = -1;
    int n = snprintf(a->path, sizeof a->path, "%s", path);
    int m = snprintf(a->tmp, sizeof a->tmp, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof a->path || m < 0 || (size_t)m >= sizeof a->tmp) {
        return rs_error_set(e, RS_EINVAL, "%s: path too long", path);
    }
    int fd = mkostemp(a->tmp, O_CLOEXEC);
    if (fd < 0) {
        return rs_error_set(e, RS_EIO, "%s: cannot create: %s", a->tmp, strerror(errno));
    }
    /* mkostemp makes 0600; outputs are shared files. */
    if (fchmod(fd, 0644) != 0) {
        int err = errno;
        close(fd);
        unlink(a->tmp);
        return rs_error_set(e, RS_EIO, "%s: chmod: %s", a->tmp, strerror(err));
    }
    a->fd = fd;
    return RS_OK;
}

rs_err rs_fs_atomic_commit(rs_fs_atomic *a, rs_error *e)
{
    rs_err rc = RS_OK;
    int fd = a->fd;
    a->fd = -1;
    if (fd < 0) {
        /* the library closed our descriptor: reopen to fsync the same inode */
        fd = open(a->tmp, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = rs_error_set(e, RS_EIO, "%s: reopen: %s", a->tmp, strerror(errno));
            goto out;
        }
    }
    if (fsync(fd) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: fsync: %s", a->tmp, strerror(errno));
        close(fd);
        goto out;
    }
    if (close(fd) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: close: %s", a->tmp, strerror(errno));
        goto out;
    }
    if (rename(a->tmp, a->path) != 0) {
        rc = rs_error_set(e, RS_EIO, "%s: rename into place: %s", a->path, strerror(errno));
        goto out;
    }
    rc = fsync_dir_of(a->path, e);
out:
    if (rc != RS_OK) {
        unlink(a->tmp);
    }
    return rc;
}

rs_err rs_fs_rename_durable(const char *src, const char *dst, rs_error *e)
{
    if (rename(src, dst) != 0) {
        return rs_error_set(e, RS_EIO, "%s: rename from %s: %s", dst, src, strerror(errno));
    }
    return fsync_dir_of(dst, e);
}

void rs_fs_atomic_abort(rs_fs_atomic *a)
{
    if (a->fd >= 0) {
        close(a->fd);
        a->fd = -1;
    }
    unlink(a->tmp);
}
