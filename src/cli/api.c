/*
 * api.c: the CLI's API calls; see api.h.
 */
#include "cli/api.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"

static const char *g_url = "http://127.0.0.1:8321";

void api_set_url(const char *url)
{
    g_url = url;
}

const char *api_url(void)
{
    return g_url;
}

void api_print_error(long status, const buf *body)
{
    arena *a = arena_new(CLIENT_MAX_BODY * 2ull);
    char e[64];
    const json *j = a && body->len ? json_parse(a, body->data, body->len, e, sizeof e) : NULL;
    const json *msg = json_get(json_get(j, "error"), "message");
    if (msg && msg->type == JSON_STRING)
        fprintf(stderr, "hearth: error %ld: %s\n", status, msg->str);
    else
        fprintf(stderr, "hearth: error %ld: %.*s\n", status, (int)(body->len > 500 ? 500 : body->len),
                body->data ? body->data : "");
    arena_free(a);
}

/* One call: method (NULL: GET, or POST with body) or, with file, a
 * multipart upload; true for a 2xx answer (in out), else false after
 * reporting. */
static bool fetch(const char *method, const char *path, const char *body, const char *file,
                  const char *const *fields, buf *out)
{
    char url[1200], err[512];
    snprintf(url, sizeof url, "%s%s", g_url, path);
    long st = 0;
    int rc = file ? client_upload(url, file, fields, isatty(STDERR_FILENO), out, &st, err,
                                  sizeof err)
                  : client_call(method, url, body, out, &st, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "hearth: %s\n", err);
        return false;
    }
    if (st < 200 || st >= 300) {
        api_print_error(st, out);
        return false;
    }
    return true;
}

const json *api_call(const char *method, const char *path, const char *body, arena *a)
{
    buf out = buf_make(0);
    const json *j = NULL;
    char err[64];
    if (fetch(method, path, body, NULL, NULL, &out) &&
        (!(j = json_parse(a, out.data ? out.data : "", out.len, err, sizeof err)) ||
         j->type != JSON_OBJECT)) {
        fprintf(stderr, "hearth: unexpected answer from %s%s\n", g_url, path);
        j = NULL;
    }
    buf_free(&out);
    return j;
}

const json *api(const char *path, const char *body, arena *a)
{
    return api_call(NULL, path, body, a);
}

bool api_get_raw(const char *path, buf *out)
{
    return fetch(NULL, path, NULL, NULL, NULL, out);
}

bool api_upload(const char *path, const char *file, const char *const *fields, buf *out)
{
    return fetch(NULL, path, NULL, file, fields, out);
}

void api_field(const char **fields, int *n, const char *name, const char *value)
{
    if (value) {
        fields[(*n)++] = name;
        fields[(*n)++] = value;
    }
    fields[*n] = NULL;
}

bool api_first_model(const char *kind, char *out, size_t n)
{
    arena *a = arena_new(0);
    const json *d = json_get(api("/v1/models", NULL, a), "data");
    bool found = false;
    for (const json *m = d && d->type == JSON_ARRAY ? d->child : NULL; m && !found; m = m->next) {
        const json *k = json_get(m, "kind"), *id = json_get(m, "id");
        if (k && k->type == JSON_STRING && !strcmp(k->str, kind) && id && id->type == JSON_STRING) {
            snprintf(out, n, "%s", id->str);
            found = true;
        }
    }
    arena_free(a);
    return found;
}

const char *api_str(const json *o, const char *key)
{
    const json *v = json_get(o, key);
    return v && v->type == JSON_STRING ? v->str : "";
}

double api_num(const json *o, const char *key)
{
    const json *v = json_get(o, key);
    return v && v->type == JSON_NUMBER ? v->number : 0;
}

bool cli_has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], flag))
            return true;
    return false;
}

bool cli_wants_help(int argc, char **argv)
{
    return cli_has_flag(argc, argv, "--help") || cli_has_flag(argc, argv, "-h");
}
