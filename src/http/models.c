/*
 * models.c: the model family of endpoints: GET /health, GET /v1/models,
 * GET /v1/models/{name}, POST /v1/models/{name}/load|unload, GET /v1/status.
 */
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "http/http.h"
#include "http/metrics.h"

int http_health(http_req *r)
{
    buf b = buf_make(0);
    size_t n = sched_model_count(r->sched), nfailed = 0;
    buf failed = buf_make(0);
    for (size_t i = 0; i < n; i++) {
        model_info mi;
        if (sched_model_info(r->sched, i, &mi) == 0 && mi.state == MODEL_FAILED) {
            if (nfailed++)
                buf_putc(&failed, ',');
            jw_cstr(&failed, mi.name);
        }
    }
    if (nfailed)
        buf_printf(&b, "{\"status\":\"degraded\",\"failed_models\":[%s]}", failed.data);
    else
        buf_puts(&b, "{\"status\":\"ok\"}");
    buf_free(&failed);
    return http_reply_json(r, 200, &b);
}

static void model_object(buf *b, const model_info *mi)
{
    buf_puts(b, "{\"id\":");
    jw_cstr(b, mi->name);
    buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"hearth\",\"kind\":\"%s\","
               "\"state\":\"%s\"}", (long long)mi->created, model_kind_name(mi->kind),
               model_state_name(mi->state));
}

/* Append each live model, comma-separated, as written by one(). */
static void each_model(http_req *r, buf *b, void (*one)(buf *, const model_info *))
{
    size_t n = sched_model_count(r->sched);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        model_info mi;
        if (sched_model_info(r->sched, i, &mi) < 0)
            continue;       /* removed by a reload */
        if (!first)
            buf_putc(b, ',');
        first = false;
        one(b, &mi);
    }
}

int http_models(http_req *r)
{
    buf b = buf_make(0);
    buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    each_model(r, &b, model_object);
    buf_puts(&b, "]}");
    return http_reply_json(r, 200, &b);
}

static int not_found(http_req *r, const char *name)
{
    char msg[128];
    snprintf(msg, sizeof msg, "The model '%.64s' does not exist", name);
    return http_reply_error(r, 404, NULL, "model", "model_not_found", msg, 0);
}

bool http_model_find(http_req *r, const char *name, model_info *mi)
{
    size_t n = sched_model_count(r->sched);
    for (size_t i = 0; i < n; i++)
        if (sched_model_info(r->sched, i, mi) == 0 && strcmp(mi->name, name) == 0)
            return true;
    return false;
}

static int method_not_allowed(http_req *r, const char *allow)
{
    snprintf(r->allow, sizeof r->allow, "%s", allow);
    return http_reply_error(r, 405, NULL, NULL, "method_not_allowed",
                            "Method not allowed for this path", 0);
}

int http_model_get(http_req *r, const char *name)
{
    /* /v1/models/{name}/load and /unload take POST */
    const char *slash = strrchr(name, '/');
    if (slash && (!strcmp(slash + 1, "load") || !strcmp(slash + 1, "unload")))
        return method_not_allowed(r, "POST");
    model_info mi;
    if (!http_model_find(r, name, &mi))
        return not_found(r, name);
    buf b = buf_make(0);
    model_object(&b, &mi);
    return http_reply_json(r, 200, &b);
}

/* POST /v1/models/{name}/load and /unload */
int http_model_action(http_req *r, const char *rest)
{
    const char *slash = strrchr(rest, '/');
    char name[MODEL_NAME_MAX + 2];
    model_info mi;
    if (!slash && http_model_find(r, rest, &mi))      /* /v1/models/{name} takes GET */
        return method_not_allowed(r, "GET");
    if (!slash || slash == rest || (size_t)(slash - rest) > MODEL_NAME_MAX)
        return http_reply_error(r, 404, NULL, NULL, "unknown_url", "Unknown request URL", 0);
    snprintf(name, sizeof name, "%.*s", (int)(slash - rest), rest);
    const char *action = slash + 1;
    char err[320];
    int rc;
    if (strcmp(action, "load") == 0)
        rc = sched_load(r->sched, name, err, sizeof err);
    else if (strcmp(action, "unload") == 0)
        rc = sched_unload(r->sched, name, err, sizeof err);
    else
        return http_reply_error(r, 404, NULL, NULL, "unknown_url", "Unknown request URL", 0);
    if (rc == 404)
        return not_found(r, name);
    snprintf(r->model, sizeof r->model, "%s", name);   /* for the audit log */
    if (rc)
        return http_reply_error(r, (unsigned)rc, NULL, NULL,
                                rc == 409 ? "model_busy" : rc == 503 ? "model_unavailable"
                                                                     : "model_load_failed",
                                err, rc == 503 ? 5 : 0);
    buf b = buf_make(0);
    buf_puts(&b, "{\"id\":");
    jw_cstr(&b, name);
    buf_printf(&b, ",\"status\":\"%s\"}", action[0] == 'l' ? "ready" : "unloaded");
    return http_reply_json(r, 200, &b);
}

static void status_object(buf *b, const model_info *mi)
{
    buf_puts(b, "{\"name\":");
    jw_cstr(b, mi->name);
    buf_printf(b,
               ",\"kind\":\"%s\",\"state\":\"%s\",\"slots_busy\":%d,\"slots_total\":%d,\"queued\":%d,"
               "\"pid\":%d,\"uptime_s\":%.1f,\"restarts\":%d,\"load_failures\":%d,"
               "\"keep_alive_s\":%d,\"memory_estimated_bytes\":%llu,"
               "\"memory_measured_bytes\":%llu,\"memory_measured_at_load_bytes\":%llu,"
               "\"memory_peak_bytes\":%llu,\"backend\":\"%s\","
               "\"last_error\":",
               model_kind_name(mi->kind), model_state_name(mi->state), mi->busy, mi->slots,
               mi->queued, mi->pid, mi->uptime_s, mi->restarts, mi->load_failures, mi->keep_alive_s,
               (unsigned long long)mi->est_bytes, (unsigned long long)mi->rss_bytes,
               (unsigned long long)mi->loaded_rss_bytes,
               (unsigned long long)mi->peak_rss_bytes, mi->backend);
    jw_cstr(b, mi->last_error[0] ? mi->last_error : NULL);
    buf_putc(b, '}');
}

int http_status(http_req *r)
{
    sched_totals t;
    sched_get_totals(r->sched, &t);
    buf b = buf_make(0);
    buf_printf(&b,
               "{\"version\":\"" HEARTH_VERSION "\",\"memory\":{\"budget_bytes\":%llu,"
               "\"reserved_bytes\":%llu,\"index_vectors_bytes\":%llu,\"workers_rss_bytes\":%llu,"
               "\"workers_rss_peak_bytes\":%llu},\"models\":[",
               (unsigned long long)t.budget, (unsigned long long)t.reserved,
               (unsigned long long)t.index_vectors, (unsigned long long)t.rss,
               (unsigned long long)t.rss_peak);
    each_model(r, &b, status_object);
    buf_puts(&b, "],\"jobs\":");
    http_jobs_counts(r, &b, false);
    buf_puts(&b, ",\"index\":");
    http_index_counts(r, &b, false);
    buf_putc(&b, '}');
    return http_reply_json(r, 200, &b);
}

/* One gauge per model, from one snapshot of the scheduler's models. */
static void model_gauge(buf *b, const model_info *mi, size_t n, const char *name,
                        const char *help, const char *type,
                        double (*value)(const model_info *))
{
    buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s{model=\"%s\"} %.0f\n", name, mi[i].name, value(&mi[i]));
}

static double v_busy(const model_info *mi) { return mi->busy; }
static double v_slots(const model_info *mi) { return mi->slots; }
static double v_queued(const model_info *mi) { return mi->queued; }
static double v_rss(const model_info *mi) { return (double)mi->rss_bytes; }
static double v_est(const model_info *mi) { return (double)mi->est_bytes; }
static double v_restarts(const model_info *mi) { return mi->restarts; }
static double v_failures(const model_info *mi) { return mi->load_failures; }

/* GET /metrics: Prometheus' text format. */
int http_metrics(http_req *r)
{
    sched_totals t;
    sched_get_totals(r->sched, &t);
    size_t count = sched_model_count(r->sched), n = 0;
    model_info *mi = calloc(count ? count : 1, sizeof *mi);
    if (!mi)
        return http_reply_error(r, 500, NULL, NULL, "out_of_memory", "out of memory", 0);
    for (size_t i = 0; i < count; i++)
        if (sched_model_info(r->sched, i, &mi[n]) == 0)
            n++;                    /* a model a reload removed is skipped */
    buf b = buf_make(0);
    buf_printf(&b,
               "# HELP hearth_build_info hearthd's version.\n# TYPE hearth_build_info gauge\n"
               "hearth_build_info{version=\"" HEARTH_VERSION "\"} 1\n"
               "# HELP hearth_memory_budget_bytes Memory for the model workers and the index's vectors together.\n"
               "# TYPE hearth_memory_budget_bytes gauge\nhearth_memory_budget_bytes %llu\n"
               "# HELP hearth_memory_reserved_bytes Budget held by loaded or loading models and the index's vectors.\n"
               "# TYPE hearth_memory_reserved_bytes gauge\nhearth_memory_reserved_bytes %llu\n"
               "# HELP hearth_workers_rss_bytes Resident memory of all workers, measured.\n"
               "# TYPE hearth_workers_rss_bytes gauge\nhearth_workers_rss_bytes %llu\n",
               (unsigned long long)t.budget, (unsigned long long)t.reserved,
               (unsigned long long)t.rss);
    buf_puts(&b, "# HELP hearth_model_info A configured model: its kind and state.\n"
                 "# TYPE hearth_model_info gauge\n");
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "hearth_model_info{model=\"%s\",kind=\"%s\",state=\"%s\"} 1\n",
                   mi[i].name, model_kind_name(mi[i].kind), model_state_name(mi[i].state));
    model_gauge(&b, mi, n, "hearth_model_slots_busy", "Sequences being served.", "gauge", v_busy);
    model_gauge(&b, mi, n, "hearth_model_slots", "Sequences a model serves at once.", "gauge",
                v_slots);
    model_gauge(&b, mi, n, "hearth_model_queued", "Requests waiting for a slot.", "gauge",
                v_queued);
    model_gauge(&b, mi, n, "hearth_model_memory_bytes", "A loaded model's worker, measured.",
                "gauge", v_rss);
    model_gauge(&b, mi, n, "hearth_model_memory_estimated_bytes",
                "What the budget holds for a model while loaded.", "gauge", v_est);
    model_gauge(&b, mi, n, "hearth_model_restarts_total", "Worker restarts after a crash.",
                "counter", v_restarts);
    model_gauge(&b, mi, n, "hearth_model_load_failures_total", "Loads that failed.", "counter",
                v_failures);
    free(mi);
    http_jobs_counts(r, &b, true);
    http_index_counts(r, &b, true);
    metrics_render(&b);
    return http_reply_body(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}
