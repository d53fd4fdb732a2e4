/*
 * registry.c: the table of job kinds. A new kind adds one line here.
 */
#include "task.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

extern const task_kind task_kind_ingest;
extern const task_kind task_kind_noop;

#ifdef RUSHES_HAVE_REMOVAL
extern const task_kind task_kind_removal_train;
extern const task_kind task_kind_removal_infer;
static const task_kind *const kinds[] = {&task_kind_ingest, &task_kind_noop,
                                         &task_kind_removal_train, &task_kind_removal_infer};
static const char *const names[] = {"ingest", "noop", "removal_train", "removal_infer", NULL};
#else
static const task_kind *const kinds[] = {&task_kind_ingest, &task_kind_noop};
static const char *const names[] = {"ingest", "noop", NULL};
#endif

const task_kind *task_kind_find(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kinds[i]->name, name) == 0) {
            return kinds[i];
        }
    }
    return NULL;
}

const char *const *task_kind_names(void)
{
    return names;
}

void task_logf(const task_io *io, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (io != NULL && io->log != NULL) {
        io->log(io->ud, line);
    }
}
