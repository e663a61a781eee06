/*
 * metrics.h: counters for GET /metrics (Prometheus' text format).
 *
 * Requests by route and status with their time, and per model the tokens it
 * read (and of them reused from its cache), the tokens it wrote and its
 * compute time. The labels come only from hearth's own routes and from
 * models that ran a request, never from raw client text, so a client
 * cannot make the series grow (and they are capped besides). The gauges
 * (models' states, slots, queues, memory) are read from the scheduler when
 * the page is asked for (models.c).
 *
 * Ownership: one process-wide table behind a mutex; nothing to free.
 */
#ifndef HEARTH_METRICS_H
#define HEARTH_METRICS_H

#include "core/buf.h"

/* One finished request: its route's template (e.g. "/v1/models/{name}"),
 * status (0: none sent) and seconds; model is NULL unless a model ran it,
 * in which case the counts are its tokens and compute seconds. */
void metrics_request(const char *route, unsigned status, double seconds, const char *model,
                     int tokens_in, int tokens_cached, int tokens_out, double compute_s);

/* Appends the counters in Prometheus' text format (with HELP and TYPE). */
void metrics_render(buf *b);

#endif
