/*
 * metrics.h: /metrics in the Prometheus text exposition format (0.0.4).
 *
 * Figures come from store_metrics() (the database: durable counters that
 * survive restarts) plus the API's in-memory count of responses by status
 * code. Names are listed in docs/OPERATIONS.md "Metrics".
 */
#ifndef RSD_METRICS_H
#define RSD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define METRICS_NBOUNDS 12

/* Histogram bucket upper bounds in seconds (queue wait, run time). */
extern const double metrics_bounds[METRICS_NBOUNDS];

/* malloc'd text, or NULL when out of memory. codes[i] = responses with
 * status i (ncodes entries). */
char *metrics_render(const cJSON *m, const uint64_t *codes, size_t ncodes);

#endif
