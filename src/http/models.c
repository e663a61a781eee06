/*
 * models.c: GET /health, GET /v1/models, GET /v1/models/{name}.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "http/http.h"

int http_health(http_req *r)
{
    buf b = buf_make(0);
    buf_puts(&b, "{\"status\":\"ok\"}");
    return http_reply_json(r, 200, &b);
}

static void model_object(buf *b, const model_info *mi)
{
    buf_puts(b, "{\"id\":");
    jw_cstr(b, mi->name);
    buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"hearth\",\"state\":\"%s\"}",
               (long long)mi->created, model_state_name(mi->state));
}

int http_models(http_req *r)
{
    buf b = buf_make(0);
    buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    size_t n = sched_model_count(r->sched);
    for (size_t i = 0; i < n; i++) {
        model_info mi;
        if (sched_model_info(r->sched, i, &mi) < 0)
            continue;
        if (i)
            buf_putc(&b, ',');
        model_object(&b, &mi);
    }
    buf_puts(&b, "]}");
    return http_reply_json(r, 200, &b);
}

int http_model_get(http_req *r, const char *name)
{
    size_t n = sched_model_count(r->sched);
    for (size_t i = 0; i < n; i++) {
        model_info mi;
        if (sched_model_info(r->sched, i, &mi) == 0 && strcmp(mi.name, name) == 0) {
            buf b = buf_make(0);
            model_object(&b, &mi);
            return http_reply_json(r, 200, &b);
        }
    }
    char msg[128];
    snprintf(msg, sizeof msg, "The model '%.64s' does not exist", name);
    return http_reply_error(r, 404, NULL, "model", "model_not_found", msg, 0);
}
