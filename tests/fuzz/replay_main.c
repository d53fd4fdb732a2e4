/*
 * replay_main.c: runs LLVMFuzzerTestOneInput over saved inputs without
 * libFuzzer, so the normal (gcc) test suite replays the seed corpus and
 * every crash ever found. Arguments are files or folders (read one level
 * deep, in name order; names starting with '.' and README files skipped).
 * A crash shows as the test process dying; exit 1 if an input is unreadable.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX (8u << 20) /* no fuzz input is near this; a bigger file is a mistake */

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: %s: cannot open\n", path);
        return 1;
    }
    uint8_t *buf = malloc(REPLAY_MAX);
    size_t n = buf != NULL ? fread(buf, 1, REPLAY_MAX, f) : 0;
    int bad = buf == NULL || ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: unreadable or over %u bytes\n", path, REPLAY_MAX);
        free(buf);
        return 1;
    }
    /* an exact-size copy, so ASan builds catch a read one byte past the input */
    uint8_t *exact = malloc(n > 0 ? n : 1);
    if (exact == NULL) {
        free(buf);
        return 1;
    }
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: %s: cannot open folder\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL) {
        if (ent->d_name[0] == '.' || strncmp(ent->d_name, "README", 6) == 0) {
            continue;
        }
        char **grown = realloc(names, (n + 1) * sizeof *names);
        if (grown == NULL) {
            rc = 1;
            break;
        }
        names = grown;
        names[n] = strdup(ent->d_name);
        if (names[n] == NULL) {
            rc = 1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 0) {
        qsort(names, n, sizeof *names, by_name);
    }
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            rc |= replay_file(path);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 0;
    int count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: not found\n", argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            rc |= replay_dir(argv[i], &count);
        } else {
            rc |= replay_file(argv[i]);
            count++;
        }
    }
    printf("replay: %d inputs, %s\n", count, rc == 0 ? "all passed" : "some unreadable");
    return rc;
}
