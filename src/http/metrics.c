/*
 * metrics.c: the request and token counters; see metrics.h.
 */
#include "http/metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/config.h"

#define MAX_ROUTES 256          /* route x status pairs */
#define MAX_MODELS 128

struct route_stat {
    char route[40];
    unsigned status;
    uint64_t count;
    double seconds;
};

struct model_stat {
    char model[MODEL_NAME_MAX + 1];
    uint64_t requests, tokens_in, tokens_cached, tokens_out;
    double compute_s;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct route_stat g_routes[MAX_ROUTES];
static struct model_stat g_models[MAX_MODELS];
static size_t g_nroutes, g_nmodels;
static uint64_t g_dropped;      /* requests past the caps, counted without labels */

void metrics_request(const char *route, unsigned status, double seconds, const char *model,
                     int tokens_in, int tokens_cached, int tokens_out, double compute_s)
{
    pthread_mutex_lock(&g_mu);
    struct route_stat *rs = NULL;
    for (size_t i = 0; i < g_nroutes && !rs; i++)
        if (g_routes[i].status == status && strcmp(g_routes[i].route, route) == 0)
            rs = &g_routes[i];
    if (!rs && g_nroutes < MAX_ROUTES) {
        rs = &g_routes[g_nroutes++];
        snprintf(rs->route, sizeof rs->route, "%s", route);
        rs->status = status;
    }
    if (rs) {
        rs->count++;
        rs->seconds += seconds;
    } else {
        g_dropped++;
    }
    if (model && *model) {
        struct model_stat *ms = NULL;
        for (size_t i = 0; i < g_nmodels && !ms; i++)
            if (strcmp(g_models[i].model, model) == 0)
                ms = &g_models[i];
        if (!ms && g_nmodels < MAX_MODELS) {
            ms = &g_models[g_nmodels++];
            snprintf(ms->model, sizeof ms->model, "%s", model);
        }
        if (ms) {
            ms->requests++;
            ms->tokens_in += tokens_in > 0 ? (uint64_t)tokens_in : 0;
            ms->tokens_cached += tokens_cached > 0 ? (uint64_t)tokens_cached : 0;
            ms->tokens_out += tokens_out > 0 ? (uint64_t)tokens_out : 0;
            ms->compute_s += compute_s > 0 ? compute_s : 0;
        }
    }
    pthread_mutex_unlock(&g_mu);
}

/* Label values are hearth's route templates and model names
 * ([A-Za-z0-9._:-]): nothing to escape. */
static void per_model(buf *b, const char *name, const char *help, const char *type,
                      size_t off, bool real)
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < g_nmodels; i++) {
        const char *p = (const char *)&g_models[i] + off;
        if (real)
            buf_printf(b, "%s{model=\"%s\"} %.3f\n", name, g_models[i].model, *(const double *)p);
        else
            buf_printf(b, "%s{model=\"%s\"} %llu\n", name, g_models[i].model,
                       (unsigned long long)*(const uint64_t *)p);
    }
}

void metrics_render(buf *b)
{
    pthread_mutex_lock(&g_mu);
    buf_puts(b, "# HELP hearth_requests_total HTTP requests finished, by route and status "
                "(status 0: the client left before an answer).\n"
                "# TYPE hearth_requests_total counter\n");
    for (size_t i = 0; i < g_nroutes; i++)
        buf_printf(b, "hearth_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                   g_routes[i].route, g_routes[i].status, (unsigned long long)g_routes[i].count);
    if (g_dropped)
        buf_printf(b, "hearth_requests_total{route=\"other\",status=\"other\"} %llu\n",
                   (unsigned long long)g_dropped);
    buf_puts(b, "# HELP hearth_request_seconds_total Time from arrival to the end of the "
                "response, summed, by route and status.\n"
                "# TYPE hearth_request_seconds_total counter\n");
    for (size_t i = 0; i < g_nroutes; i++)
        buf_printf(b, "hearth_request_seconds_total{route=\"%s\",status=\"%u\"} %.6f\n",
                   g_routes[i].route, g_routes[i].status, g_routes[i].seconds);
    per_model(b, "hearth_model_requests_total", "Requests a model finished.", "counter",
              offsetof(struct model_stat, requests), false);
    per_model(b, "hearth_prompt_tokens_total", "Prompt tokens a model was given.", "counter",
              offsetof(struct model_stat, tokens_in), false);
    per_model(b, "hearth_cached_tokens_total",
              "Prompt tokens reused from a model's cache (part of the prompt tokens).", "counter",
              offsetof(struct model_stat, tokens_cached), false);
    per_model(b, "hearth_completion_tokens_total", "Tokens a model generated.", "counter",
              offsetof(struct model_stat, tokens_out), false);
    per_model(b, "hearth_compute_seconds_total",
              "Time a model's worker spent on prompts and generation.", "counter",
              offsetof(struct model_stat, compute_s), true);
    pthread_mutex_unlock(&g_mu);
}
