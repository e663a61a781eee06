/*
 * config.c: defaults (XDG), the config file, flags; see config.h.
 */
#include "core/config.h"

#include <ctype.h>
#include <stdbool.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static char *xdg_dir(const char *env, const char *fallback)
{
    const char *x = getenv(env);
    char tmp[PATH_MAX];
    if (x && x[0] == '/') {
        snprintf(tmp, sizeof tmp, "%s/hearth", x);
    } else {
        const char *home = getenv("HOME");
        snprintf(tmp, sizeof tmp, "%s/%s/hearth", home ? home : "/tmp", fallback);
    }
    return xstrdup(tmp);
}

char *config_default_file(void)
{
    char *d = xdg_dir("XDG_CONFIG_HOME", ".config");
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/hearthd.conf", d);
    free(d);
    return xstrdup(tmp);
}

void config_defaults(config *c)
{
    memset(c, 0, sizeof *c);
    c->listen_host = xstrdup("127.0.0.1");
    c->listen_port = HEARTH_DEFAULT_PORT;
    c->data_dir = xdg_dir("XDG_DATA_HOME", ".local/share");
    c->threads = 0;           /* 0: number of online CPUs */
    c->parallel = 4;
    c->ctx_size = 4096;
    c->batch_size = 512;
    c->stream_interval = 10;
    c->max_body = 8u << 20;
    c->max_upload = 25u << 20;
    c->queue_size = 64;
    c->max_connections = 128;
    c->per_ip_connections = 64;
    c->timeout = 600;
    c->log_level = xstrdup("info");
    c->blas = xstrdup("auto");
    c->kernels = xstrdup("auto");
    c->keep_alive = 300;
    static const char *tess[] = { "/usr/share/tesseract-ocr/5/tessdata",
                                  "/usr/share/tesseract-ocr/4.00/tessdata",
                                  "/usr/share/tessdata" };
    for (size_t i = 0; i < sizeof tess / sizeof *tess && !c->tessdata; i++) {
        char p[300];
        snprintf(p, sizeof p, "%s/eng.traineddata", tess[i]);
        if (access(p, R_OK) == 0)
            c->tessdata = xstrdup(tess[i]);
    }
    c->load_timeout = 60;
    c->audit_log = 1;
    c->job_workers = 1;
    c->job_attempts = 3;
    c->job_retry_delay = 10;
    c->max_jobs = 10000;
    c->job_timeout = 7200;
    c->job_retention = 30;
    c->index_scan_interval = 60;
    c->index_max_file = 16u << 20;
    c->index_vector_memory = 256u << 20;
}

void config_free(config *c)
{
    free(c->config_file);
    free(c->listen_host);
    free(c->data_dir);
    free(c->models_dir);
    free(c->log_level);
    free(c->blas);
    free(c->kernels);
    free(c->tessdata);
    free(c->index_embed_model);
    free(c->index_asr_model);
    free(c->index_roots);
    free(c->api_key_file);
    for (size_t i = 0; i < c->nmodels; i++)
        free(c->models[i].path);
    for (size_t i = 0; i < c->napi_keys; i++) {
        /* a key should not outlive its use in freed memory */
        explicit_bzero(c->api_keys[i], strlen(c->api_keys[i]));
        free(c->api_keys[i]);
        free(c->api_key_folders[i]);
    }
    memset(c, 0, sizeof *c);
}

int config_valid_model_name(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > MODEL_NAME_MAX || n[0] == '.')
        return 0;
    for (size_t i = 0; i < l; i++) {
        unsigned char ch = (unsigned char)n[i];
        if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-' && ch != ':')
            return 0;
    }
    return 1;
}

int config_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || !isfinite(v))
        return -1;
    uint64_t mul = 1;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': mul = 1ull << 10; end++; break;
    case 'M': mul = 1ull << 20; end++; break;
    case 'G': mul = 1ull << 30; end++; break;
    case 'T': mul = 1ull << 40; end++; break;
    default: return -1;
    }
    if (*end == 'i' || *end == 'I')
        end++;
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end)
        return -1;
    double r = v * (double)mul;
    if (r > 9.0e18)
        return -1;
    *out = (uint64_t)r;
    return 0;
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

static int add_model(config *c, const char *name, const char *path, char *err, size_t el)
{
    if (!config_valid_model_name(name)) {
        snprintf(err, el, "invalid model name '%.64s' (use letters, digits, . _ - :)", name);
        return -1;
    }
    for (size_t i = 0; i < c->nmodels; i++)
        if (strcmp(c->models[i].name, name) == 0) {
            free(c->models[i].path);          /* later definition wins */
            c->models[i].path = xstrdup(path);
            return 0;
        }
    if (c->nmodels == CONFIG_MAX_MODELS) {
        snprintf(err, el, "too many models (max %d)", CONFIG_MAX_MODELS);
        return -1;
    }
    model_entry *m = &c->models[c->nmodels++];
    snprintf(m->name, sizeof m->name, "%s", name);
    m->path = xstrdup(path);
    return 0;
}

/* Cuts a line at its comment: a '#' at the start or after a blank (so a
 * value such as a key or a path may hold '#'). */
static void strip_comment(char *line)
{
    for (char *p = line; *p; p++)
        if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
}

static const struct {
    const char *name;
    unsigned mask;
} scope_names[] = {
    { "infer", SCOPE_INFER },     { "jobs", SCOPE_JOBS },       { "search", SCOPE_SEARCH },
    { "monitor", SCOPE_MONITOR }, { "admin", SCOPE_ADMIN },
};

/* A folder of a "search:FOLDER" scope: absolute, no "." or ".." part, at
 * most SCOPE_FOLDER_MAX bytes; a trailing '/' is dropped. Appended to *folders
 * ('\n' between). 0, or -1 with err set. */
static int add_scope_folder(char **folders, size_t *nfolders, const char *p, size_t l, char *err,
                            size_t el)
{
    while (l > 1 && p[l - 1] == '/')
        l--;
    bool ok = l >= 1 && p[0] == '/' && l <= SCOPE_FOLDER_MAX && *nfolders < SCOPE_FOLDERS_MAX;
    for (size_t i = 0; ok && i < l; i++) {
        if (p[i] != '/')
            continue;
        size_t n = strcspn(p + i + 1, "/");
        n = n > l - i - 1 ? l - i - 1 : n;
        ok = !(n == 1 && p[i + 1] == '.') && !(n == 2 && p[i + 1] == '.' && p[i + 2] == '.') &&
             !(n == 0 && i + 1 < l);
    }
    if (!ok) {
        snprintf(err, el, "api-key-file: 'search:%.*s' needs an absolute folder without '.' or "
                 "'..' parts, of at most %d bytes, and a key has at most %d of them",
                 (int)(l > 60 ? 60 : l), p, SCOPE_FOLDER_MAX, SCOPE_FOLDERS_MAX);
        return -1;
    }
    size_t had = *folders ? strlen(*folders) : 0;
    char *f = realloc(*folders, had + l + 2);
    if (!f) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    if (had)
        f[had++] = '\n';
    memcpy(f + had, p, l);
    f[had + l] = '\0';
    *folders = f;
    (*nfolders)++;
    return 0;
}

unsigned config_scopes_parse(const char *list, char **folders, char *err, size_t el)
{
    unsigned mask = 0;
    size_t nfolders = 0;
    bool plain_search = false;
    const char *p = list;
    for (;;) {
        size_t l = strcspn(p, ",");
        unsigned m = 0;
        for (size_t i = 0; i < sizeof scope_names / sizeof *scope_names; i++)
            if (strlen(scope_names[i].name) == l && strncmp(p, scope_names[i].name, l) == 0)
                m = scope_names[i].mask;
        plain_search |= m == SCOPE_SEARCH;
        if (!m && folders && l > 7 && strncmp(p, "search:", 7) == 0) {
            if (add_scope_folder(folders, &nfolders, p + 7, l - 7, err, el) < 0)
                goto bad;
            m = SCOPE_SEARCH;
        }
        if (!m) {
            snprintf(err, el, "api-key-file: unknown scope '%.*s' (scopes: infer, jobs, "
                     "search, search:FOLDER, monitor, admin)", (int)(l > 32 ? 32 : l), p);
            goto bad;
        }
        mask |= m;
        if (!p[l])
            break;
        p += l + 1;
    }
    /* plain "search" (and admin) is every folder: with search:FOLDER it
     * would be unclear which was meant */
    if (folders && *folders && (plain_search || (mask & SCOPE_ADMIN_ONLY))) {
        snprintf(err, el, "api-key-file: 'search' and 'admin' search every folder; a key "
                 "limited to some has only search:FOLDER scopes");
        goto bad;
    }
    return mask;
bad:
    if (folders) {
        free(*folders);
        *folders = NULL;
    }
    return 0;
}

int config_rate_parse(const char *s, double *n, double *period_s, char *err, size_t el)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    double per = !strcmp(end, "/s") ? 1 : !strcmp(end, "/min") ? 60 : !strcmp(end, "/h") ? 3600 : 0;
    if (errno || end == s || v < 1 || v > 1000000 || per == 0 || !(*s >= '0' && *s <= '9')) {
        snprintf(err, el, "api-key-file: a rate is N/s, N/min or N/h with N from 1 to "
                 "1000000, not '%.40s'", s);
        return -1;
    }
    *n = (double)v;
    *period_s = per;
    return 0;
}

void config_scopes_str(unsigned scopes, char *out, size_t n)
{
    size_t used = 0;
    if (n)
        out[0] = '\0';
    if ((scopes & SCOPE_ADMIN) == SCOPE_ADMIN) {
        snprintf(out, n, "admin");
        return;
    }
    for (size_t i = 0; i + 1 < sizeof scope_names / sizeof *scope_names; i++)
        if (scopes & scope_names[i].mask) {
            int w = snprintf(out + used, n - used, "%s%s", used ? "," : "", scope_names[i].name);
            if (w < 0 || (size_t)w >= n - used)
                return;
            used += (size_t)w;
        }
}

/* A key: API_KEY_MIN..API_KEY_MAX printable ASCII characters, no blanks
 * (it travels in an HTTP header). folders: its search scope's, taken (freed
 * on an error); NULL: every folder. */
static int add_api_key(config *c, const char *name, const char *key, unsigned scopes,
                       char *folders, double rate_n, double rate_period, char *err, size_t el)
{
    size_t l = strlen(key);
    if (l < API_KEY_MIN || l > API_KEY_MAX) {
        snprintf(err, el, "api-key: a key must be %d to %d characters long", API_KEY_MIN,
                 API_KEY_MAX);
        goto bad;
    }
    for (size_t i = 0; i < l; i++)
        if (key[i] <= ' ' || key[i] > '~') {
            snprintf(err, el, "api-key: a key may hold only printable ASCII, no blanks");
            goto bad;
        }
    if (c->napi_keys == CONFIG_MAX_KEYS) {
        snprintf(err, el, "api-key: at most %d keys", CONFIG_MAX_KEYS);
        goto bad;
    }
    size_t k = c->napi_keys;
    if (name && *name)
        snprintf(c->api_key_names[k], sizeof c->api_key_names[k], "%s", name);
    else
        snprintf(c->api_key_names[k], sizeof c->api_key_names[k], "key-%zu", k + 1);
    for (size_t i = 0; i < k; i++)
        if (strcmp(c->api_key_names[i], c->api_key_names[k]) == 0) {
            snprintf(err, el, "api-key: two keys are named '%s' (names tell them apart in "
                     "the audit log)", c->api_key_names[k]);
            goto bad;
        }
    c->api_keys[k] = xstrdup(key);
    c->api_key_scopes[k] = scopes;
    c->api_key_folders[k] = folders;
    c->api_key_rate_n[k] = rate_n;
    c->api_key_rate_per_s[k] = rate_n > 0 ? rate_n / rate_period : 0;
    c->napi_keys++;
    return 0;
bad:
    free(folders);
    return -1;
}

/* " (FILE:LINE)" after the message in err */
static void at_line(char *err, size_t el, const char *path, int lineno)
{
    size_t n = strlen(err);
    snprintf(err + n, el - n, " (%.200s:%d)", path, lineno);
}

/* One key per line, "KEY", "NAME KEY", "NAME KEY SCOPES" or "NAME KEY
 * SCOPES RATE"; '#' starts a comment. */
static int load_api_keys(config *c, const char *path, char *err, size_t el)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, el, "api-key-file: cannot open %.200s: %s", path, strerror(errno));
        return -1;
    }
    char line[API_KEY_MAX + API_KEY_NAME_MAX + SCOPE_NAMES_MAX + 32];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        size_t l = strlen(line);
        if (l == sizeof line - 1 && line[l - 1] != '\n') {
            snprintf(err, el, "api-key-file %.200s:%d: line too long", path, lineno);
            rc = -1;
            break;
        }
        strip_comment(line);
        char *a = strtok(line, " \t\r\n"), *b = a ? strtok(NULL, " \t\r\n") : NULL;
        char *sc = b ? strtok(NULL, " \t\r\n") : NULL;
        char *rate = sc ? strtok(NULL, " \t\r\n") : NULL;
        if (!a)
            continue;
        if (rate && strtok(NULL, " \t\r\n")) {
            snprintf(err, el, "api-key-file %.200s:%d: expected KEY, NAME KEY, NAME KEY "
                     "SCOPES or NAME KEY SCOPES RATE", path, lineno);
            rc = -1;
            break;
        }
        double rate_n = 0, rate_period = 1;
        if (rate && config_rate_parse(rate, &rate_n, &rate_period, err, el) < 0) {
            at_line(err, el, path, lineno);
            rc = -1;
            break;
        }
        unsigned scopes = SCOPE_ADMIN;
        char *folders = NULL;
        if (sc && !(scopes = config_scopes_parse(sc, &folders, err, el))) {
            at_line(err, el, path, lineno);
            rc = -1;
            break;
        }
        if (b && strlen(a) > API_KEY_NAME_MAX) {
            snprintf(err, el, "api-key-file %.200s:%d: a name is at most %d characters", path,
                     lineno, API_KEY_NAME_MAX);
            rc = -1;
            break;
        }
        if (add_api_key(c, b ? a : NULL, b ? b : a, scopes, folders, rate_n, rate_period, err,
                        el) < 0) {
            at_line(err, el, path, lineno);
            rc = -1;
        }
    }
    explicit_bzero(line, sizeof line);
    fclose(f);
    return rc;
}

int config_set(config *c, const char *key, const char *v, char *err, size_t el)
{
    uint64_t sz;
    if (strcmp(key, "listen") == 0) {
        const char *colon = strrchr(v, ':');
        int port;
        if (!colon || parse_int(colon + 1, 0, 65535, &port) < 0) {
            snprintf(err, el, "listen: expected HOST:PORT, got '%.100s'", v);
            return -1;
        }
        size_t hl = (size_t)(colon - v);
        if (hl >= 2 && v[0] == '[' && v[hl - 1] == ']') {   /* [::1]:8321 */
            v++;
            hl -= 2;
        }
        free(c->listen_host);
        c->listen_host = strndup(v, hl);
        c->listen_port = port;
    } else if (strcmp(key, "data-dir") == 0) {
        free(c->data_dir);
        c->data_dir = xstrdup(v);
    } else if (strcmp(key, "models-dir") == 0) {
        free(c->models_dir);
        c->models_dir = xstrdup(v);
    } else if (strcmp(key, "model") == 0) {
        const char *eq = strchr(v, '=');
        if (!eq || eq == v || !eq[1]) {
            snprintf(err, el, "model: expected NAME=PATH, got '%.100s'", v);
            return -1;
        }
        char name[MODEL_NAME_MAX + 2];
        size_t nl = (size_t)(eq - v);
        if (nl > MODEL_NAME_MAX) {
            snprintf(err, el, "model: name longer than %d", MODEL_NAME_MAX);
            return -1;
        }
        memcpy(name, v, nl);
        name[nl] = '\0';
        return add_model(c, name, eq + 1, err, el);
    } else if (strcmp(key, "threads") == 0) {
        if (parse_int(v, 0, 256, &c->threads) < 0)
            goto bad_int;
    } else if (strcmp(key, "parallel") == 0) {
        if (parse_int(v, 1, 64, &c->parallel) < 0)
            goto bad_int;
    } else if (strcmp(key, "ctx-size") == 0) {
        if (parse_int(v, 64, 1 << 20, &c->ctx_size) < 0)
            goto bad_int;
    } else if (strcmp(key, "batch-size") == 0) {
        if (parse_int(v, 16, 1 << 16, &c->batch_size) < 0)
            goto bad_int;
    } else if (strcmp(key, "stream-interval") == 0) {
        if (parse_int(v, 0, 1000, &c->stream_interval) < 0)
            goto bad_int;
    } else if (strcmp(key, "queue-size") == 0) {
        if (parse_int(v, 0, 100000, &c->queue_size) < 0)
            goto bad_int;
    } else if (strcmp(key, "job-workers") == 0) {
        if (parse_int(v, 1, 8, &c->job_workers) < 0)
            goto bad_int;
    } else if (strcmp(key, "job-attempts") == 0) {
        if (parse_int(v, 1, 100, &c->job_attempts) < 0)
            goto bad_int;
    } else if (strcmp(key, "job-retry-delay") == 0) {
        if (parse_int(v, 0, 3600, &c->job_retry_delay) < 0)
            goto bad_int;
    } else if (strcmp(key, "job-timeout") == 0) {
        if (parse_int(v, 0, 7 * 86400, &c->job_timeout) < 0)
            goto bad_int;
    } else if (strcmp(key, "job-retention") == 0) {
        if (parse_int(v, 0, 36500, &c->job_retention) < 0)
            goto bad_int;
    } else if (strcmp(key, "index-scan-interval") == 0) {
        if (parse_int(v, 1, 86400, &c->index_scan_interval) < 0)
            goto bad_int;
    } else if (strcmp(key, "index-embed-model") == 0 || strcmp(key, "index-asr-model") == 0) {
        char **dst = key[6] == 'e' ? &c->index_embed_model : &c->index_asr_model;
        if (strcmp(v, "none") && !config_valid_model_name(v)) {
            snprintf(err, el, "%s: '%s' is not a model name", key, v);
            return -1;
        }
        free(*dst);
        *dst = strcmp(v, "none") ? xstrdup(v) : NULL;
    } else if (strcmp(key, "index-roots") == 0) {
        bool ok = *v && (!strcmp(v, "any") || v[0] == '/');
        for (const char *p = v; ok && (p = strchr(p, ':')); p++)
            ok = p[1] == '/';       /* every entry absolute */
        if (!ok) {
            snprintf(err, el, "index-roots: absolute folders separated by ':', or 'any'");
            return -1;
        }
        free(c->index_roots);
        c->index_roots = xstrdup(v);
    } else if (strcmp(key, "index-max-file") == 0) {
        uint64_t size;
        if (config_parse_size(v, &size) < 0 || size == 0) {
            snprintf(err, el, "index-max-file: '%s' is not a size", v);
            return -1;
        }
        c->index_max_file = size;
    } else if (strcmp(key, "index-vector-memory") == 0) {
        uint64_t size;
        if (config_parse_size(v, &size) < 0) {
            snprintf(err, el, "index-vector-memory: '%s' is not a size", v);
            return -1;
        }
        c->index_vector_memory = size;
    } else if (strcmp(key, "max-jobs") == 0) {
        if (parse_int(v, 1, 10000000, &c->max_jobs) < 0)
            goto bad_int;
    } else if (strcmp(key, "max-connections") == 0) {
        if (parse_int(v, 1, 100000, &c->max_connections) < 0)
            goto bad_int;
    } else if (strcmp(key, "per-ip-connections") == 0) {
        if (parse_int(v, 1, 100000, &c->per_ip_connections) < 0)
            goto bad_int;
    } else if (strcmp(key, "timeout") == 0) {
        if (parse_int(v, 1, 86400, &c->timeout) < 0)
            goto bad_int;
    } else if (strcmp(key, "max-body") == 0) {
        if (config_parse_size(v, &sz) < 0 || sz < 1024 || sz > (1ull << 30)) {
            snprintf(err, el, "max-body: expected a size between 1K and 1G, got '%.100s'", v);
            return -1;
        }
        c->max_body = (size_t)sz;
    } else if (strcmp(key, "memory-budget") == 0) {
        if (config_parse_size(v, &sz) < 0 || sz < (16ull << 20)) {
            snprintf(err, el, "memory-budget: expected a size of at least 16M, got '%.100s'", v);
            return -1;
        }
        c->memory_budget = sz;
    } else if (strcmp(key, "keep-alive") == 0) {
        if (parse_int(v, -1, 1 << 30, &c->keep_alive) < 0)
            goto bad_int;
    } else if (strcmp(key, "load-timeout") == 0) {
        if (parse_int(v, 1, 86400, &c->load_timeout) < 0)
            goto bad_int;
    } else if (strcmp(key, "max-upload") == 0) {
        if (config_parse_size(v, &sz) < 0 || sz < 1024 || sz > (4ull << 30)) {
            snprintf(err, el, "max-upload: expected a size between 1K and 4G, got '%.100s'", v);
            return -1;
        }
        c->max_upload = (size_t)sz;
    } else if (strcmp(key, "blas") == 0) {
        if (!*v) {
            snprintf(err, el, "blas: expected auto, off or the path of libggml-blas.so");
            return -1;
        }
        free(c->blas);
        c->blas = xstrdup(v);
    } else if (strcmp(key, "kernels") == 0) {
        if (strcmp(v, "auto") && strcmp(v, "off")) {
            snprintf(err, el, "kernels: expected auto or off, got '%.100s'", v);
            return -1;
        }
        free(c->kernels);
        c->kernels = xstrdup(v);
    } else if (strcmp(key, "tessdata") == 0) {
        free(c->tessdata);
        c->tessdata = strcmp(v, "none") ? xstrdup(v) : NULL;
    } else if (strcmp(key, "api-key") == 0) {
        return add_api_key(c, NULL, v, SCOPE_ADMIN, NULL, 0, 1, err, el);
    } else if (strcmp(key, "api-key-file") == 0) {
        if (load_api_keys(c, v, err, el) < 0)
            return -1;
        free(c->api_key_file);
        c->api_key_file = xstrdup(v);
    } else if (strcmp(key, "audit-log") == 0) {
        if (strcmp(v, "on") && strcmp(v, "off")) {
            snprintf(err, el, "audit-log: expected on or off, got '%.100s'", v);
            return -1;
        }
        c->audit_log = strcmp(v, "on") == 0;
    } else if (strcmp(key, "log-level") == 0) {
        if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error")) {
            snprintf(err, el, "log-level: expected debug|info|warn|error");
            return -1;
        }
        free(c->log_level);
        c->log_level = xstrdup(v);
    } else {
        snprintf(err, el, "unknown option '%.100s'", key);
        return -1;
    }
    return 0;
bad_int:
    snprintf(err, el, "%s: invalid value '%.100s'", key, v);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_load_file(config *c, const char *path, char *err, size_t el)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, el, "cannot open config %s: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        strip_comment(line);
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        char *ws = s + strcspn(s, " \t");
        char *key = s, *val;
        /* "key = value" when '=' comes before any blank or only blanks precede it */
        bool kv = eq && (eq < ws || strspn(ws, " \t") == (size_t)(eq - ws));
        if (kv) {
            *eq = '\0';
            val = eq + 1;
        } else {
            /* "key value" form */
            char *sp = s + strcspn(s, " \t");
            if (!*sp) {
                snprintf(err, el, "%s:%d: expected 'key = value'", path, lineno);
                rc = -1;
                break;
            }
            *sp = '\0';
            val = sp + 1;
        }
        key = trim(key);
        val = trim(val);
        char e2[256];
        if (config_set(c, key, val, e2, sizeof e2) < 0) {
            snprintf(err, el, "%s:%d: %s", path, lineno, e2);
            rc = -1;
            break;
        }
    }
    explicit_bzero(line, sizeof line);     /* it may have held an api-key */
    fclose(f);
    if (rc == 0) {
        free(c->config_file);
        c->config_file = xstrdup(path);
    }
    return rc;
}

void config_print_help(const char *prog)
{
    printf("Usage: %s [OPTIONS]\n"
           "\n"
           "hearthd: the hearth daemon. Serves an OpenAI-compatible API for local models.\n"
           "Every option is also a config-file key of the same name (key = value).\n"
           "\n"
           "  --config FILE          config file (default $XDG_CONFIG_HOME/hearth/hearthd.conf\n"
           "                         when it exists)\n"
           "  --listen HOST:PORT     address to serve on (default 127.0.0.1:%d; loopback only)\n"
           "  --data-dir DIR         state directory (default $XDG_DATA_HOME/hearth)\n"
           "  --model NAME=PATH      serve the GGUF file PATH as NAME (repeatable)\n"
           "  --models-dir DIR       serve every *.gguf in DIR under its file name\n"
           "  --threads N            inference threads per model (default: all CPUs)\n"
           "  --parallel N           concurrent sequences (slots) per model (default 4)\n"
           "  --ctx-size N           context tokens per slot (default 4096)\n"
           "  --batch-size N         max tokens per decode step (default 512)\n"
           "  --stream-interval MS   streamed text goes out at most every MS milliseconds,\n"
           "                         the first piece at once (default 10; 0 = every token)\n"
           "  --queue-size N         requests that may wait per model before 503 (default 64)\n"
           "  --max-body SIZE        request body cap, e.g. 8M (default 8M)\n"
           "  --max-upload SIZE      uploaded file cap for transcription (default 25M)\n"
           "  --max-connections N    simultaneous HTTP connections (default 128)\n"
           "  --per-ip-connections N simultaneous connections per client address (default 64)\n"
           "  --timeout SECONDS      how long a request may stay silent (default 600);\n"
           "                         connections without a whole request close after 15 s\n"
           "  --memory-budget SIZE   memory for all model workers together, e.g. 12G\n"
           "                         (default 70%% of physical RAM)\n"
           "  --keep-alive SECONDS   how long an idle model stays loaded (default 300;\n"
           "                         -1 = forever, 0 = unload after each request)\n"
           "  --load-timeout SECONDS how long a request may wait for memory or a load\n"
           "                         before 503 (default 60)\n"
           "  --blas auto|off|PATH   ggml's BLAS backend (OpenBLAS) for embedding and speech\n"
           "                         models and the prompts of chat models kept in F16,\n"
           "                         BF16 or F32: auto = the one setup installed (default)\n"
           "  --kernels auto|off     hearth's AVX-512 kernels for quantized matrices and\n"
           "                         attention in place of ggml's: auto = when the CPU has\n"
           "                         them and their start-up checks pass (default)\n"
           "  --tessdata DIR|none    Tesseract data for the built-in \"ocr\" model (default:\n"
           "                         the system's tessdata when installed)\n"
           "  --api-key KEY          require this key (Authorization: Bearer KEY) on every\n"
           "                         request but GET /health (repeatable; see also\n"
           "                         --api-key-file, which keeps keys out of ps)\n"
           "  --api-key-file FILE    more keys, one per line: KEY, NAME KEY or NAME KEY\n"
           "                         SCOPES (the name goes to the audit log, never the\n"
           "                         key); SCOPES limit the key, comma-separated: infer,\n"
           "                         jobs (its own), search, search:FOLDER (only there),\n"
           "                         monitor, admin (default);\n"
           "                         a fourth column RATE (N/s, N/min, N/h) limits its\n"
           "                         requests\n"
           "  --audit-log on|off     one line per request in DATA-DIR/audit.log: time,\n"
           "                         client, key name, method, path, model, status,\n"
           "                         duration; never a prompt or answer (default on)\n"
           "  --job-workers N        batch jobs (POST /v1/jobs) run at once (default 1)\n"
           "  --job-attempts N       attempts before a failing batch job is dead (default 3)\n"
           "  --job-retry-delay S    seconds before a failed batch job's second attempt;\n"
           "                         doubles with each further one (default 10)\n"
           "  --job-timeout S        a batch job attempt running longer is stopped and\n"
           "                         counts as failed (default 7200; 0 = no limit)\n"
           "  --job-retention DAYS   completed and cancelled batch jobs are deleted this\n"
           "                         long after they finished (default 30; 0 = never);\n"
           "                         failed and dead ones stay until retried or deleted\n"
           "  --max-jobs N           batch jobs that may wait or run before 429 (default\n"
           "                         10000)\n"
           "  --index-embed-model M  the embedding model that gives the search index its\n"
           "                         vectors (hybrid search); without it BM25 alone\n"
           "  --index-asr-model M    the transcription model for voice notes in watched\n"
           "                         folders (default: the first one configured)\n"
           "  --index-scan-interval S  seconds between walks of the watched folders\n"
           "                         (default 60)\n"
           "  --index-max-file SIZE  larger text files are not indexed (default 16M)\n"
           "  --index-vector-memory SIZE  the index's vectors kept in memory, 8-bit, for\n"
           "                         fast vector search (~400 MB a million 384-wide;\n"
           "                         default 256M; 0 = read them from disk each query)\n"
           "  --index-roots DIRS     watched folders must be inside one of these\n"
           "                         (':'-separated; default $HOME; 'any' = anywhere)\n"
           "  --log-level LEVEL      debug|info|warn|error (default info)\n"
           "  --help                 show this help\n"
           "  --version              show the version\n",
           prog, HEARTH_DEFAULT_PORT);
}

int config_parse_args(config *c, int argc, char **argv, char *err, size_t el)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_print_help(argv[0]);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("hearthd %s\n", HEARTH_VERSION);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, el, "unexpected argument '%.100s' (see --help)", a);
            return -1;
        }
        char key[64];
        const char *val;
        const char *eq = strchr(a, '=');
        if (eq && strncmp(a, "--model=", 8) != 0 && (size_t)(eq - a - 2) < sizeof key) {
            snprintf(key, sizeof key, "%.*s", (int)(eq - a - 2), a + 2);
            val = eq + 1;
        } else {
            snprintf(key, sizeof key, "%s", a + 2);
            if (strncmp(a, "--model=", 8) == 0) {
                snprintf(key, sizeof key, "model");
                val = a + 8;
            } else {
                if (i + 1 >= argc) {
                    snprintf(err, el, "%s needs a value (see --help)", a);
                    return -1;
                }
                val = argv[++i];
            }
        }
        if (strcmp(key, "config") == 0)
            continue;                       /* handled before the file is loaded */
        if (config_set(c, key, val, err, el) < 0)
            return -1;
    }
    return 0;
}

int config_add_ocr(config *c, char *err, size_t el)
{
    if (!c->tessdata)
        return 0;
    for (size_t i = 0; i < c->nmodels; i++)
        if (strcmp(c->models[i].name, "ocr") == 0)
            return 0;       /* the user named a model "ocr": theirs wins */
    return add_model(c, "ocr", c->tessdata, err, el);
}

int config_scan_models_dir(config *c, char *err, size_t el)
{
    if (!c->models_dir)
        return 0;
    DIR *d = opendir(c->models_dir);
    if (!d) {
        snprintf(err, el, "models-dir %s: %s", c->models_dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l <= 5 || strcmp(e->d_name + l - 5, ".gguf") != 0)
            continue;
        char name[MODEL_NAME_MAX + 1];
        if (l - 5 > MODEL_NAME_MAX)
            continue;
        snprintf(name, sizeof name, "%.*s", (int)(l - 5), e->d_name);
        if (!config_valid_model_name(name))
            continue;
        int dup = 0;
        for (size_t i = 0; i < c->nmodels; i++)
            if (strcmp(c->models[i].name, name) == 0)
                dup = 1;        /* an explicit --model wins */
        if (dup)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", c->models_dir, e->d_name);
        if ((rc = add_model(c, name, path, err, el)) < 0)
            break;
    }
    closedir(d);
    return rc;
}
