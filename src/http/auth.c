/*
 * auth.c: API key checks; see auth.h.
 */
#include "http/auth.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* 0 when a (length la) equals b (length lb); reads API_KEY_MAX bytes of each
 * whatever the lengths, so the time depends on neither. */
static unsigned differ(const char *a, size_t la, const char *b, size_t lb)
{
    unsigned d = (unsigned)(la ^ lb);
    for (size_t i = 0; i < API_KEY_MAX; i++) {
        unsigned char x = i < la ? (unsigned char)a[i] : 0;
        unsigned char y = i < lb ? (unsigned char)b[i] : 0;
        d |= (unsigned)(x ^ y);
    }
    return d;
}

/* The credential a request offers: the token of "Bearer TOKEN" (scheme
 * case-insensitive), else X-Api-Key; NULL when neither is usable. */
static const char *offered(const char *authorization, const char *x_api_key, size_t *len)
{
    const char *t = NULL;
    if (authorization && strncasecmp(authorization, "Bearer ", 7) == 0) {
        t = authorization + 7;
        while (*t == ' ')
            t++;
    } else if (x_api_key) {
        t = x_api_key;
    }
    if (!t)
        return NULL;
    size_t l = strlen(t);
    while (l && (t[l - 1] == ' ' || t[l - 1] == '\t'))
        l--;
    if (l == 0 || l > API_KEY_MAX)
        return NULL;
    *len = l;
    return t;
}

bool auth_allows(const config *c, const char *authorization, const char *x_api_key,
                 const char **name, unsigned *scopes, int *key)
{
    *name = NULL;
    *scopes = SCOPE_ADMIN;
    if (key)
        *key = -1;
    if (c->napi_keys == 0)
        return true;
    *scopes = 0;
    size_t len = 0;
    const char *t = offered(authorization, x_api_key, &len);
    if (!t)
        return false;
    int hit = -1;
    for (size_t i = 0; i < c->napi_keys; i++) {
        unsigned d = differ(c->api_keys[i], strlen(c->api_keys[i]), t, len);
        if (d == 0 && hit < 0)
            hit = (int)i;       /* and the other keys are still compared */
    }
    if (hit < 0)
        return false;
    *name = c->api_key_names[hit];
    *scopes = c->api_key_scopes[hit];
    if (key)
        *key = hit;
    return true;
}

/* ---- failures per address ----------------------------------------------- */

struct failures {
    char addr[64];
    long long window;       /* when its window started */
    int count;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct failures g_fail[AUTH_TRACKED];

static bool loopback(const char *a)
{
    return strncmp(a, "127.", 4) == 0 || strcmp(a, "::1") == 0 ||
           strncmp(a, "::ffff:127.", 11) == 0;
}

/* addr's entry (NULL if untracked); with make, a new one in an empty place
 * or in place of the one whose window is oldest. Under g_mu. */
static struct failures *entry_of(const char *addr, long long now, bool make)
{
    struct failures *spare = NULL;
    for (size_t i = 0; i < AUTH_TRACKED; i++) {
        struct failures *f = &g_fail[i];
        if (f->addr[0] && strcmp(f->addr, addr) == 0) {
            if (now - f->window >= AUTH_WINDOW_S) {      /* a new window */
                f->window = now;
                f->count = 0;
            }
            return f;
        }
        if (!spare || (spare->addr[0] && (!f->addr[0] || f->window < spare->window)))
            spare = f;
    }
    if (!make)
        return NULL;
    snprintf(spare->addr, sizeof spare->addr, "%s", addr);
    spare->window = now;
    spare->count = 0;
    return spare;
}

int auth_blocked(const char *addr, long long now)
{
    if (!addr || loopback(addr))
        return 0;
    pthread_mutex_lock(&g_mu);
    struct failures *f = entry_of(addr, now, false);
    int wait = f && f->count >= AUTH_MAX_FAILURES ? (int)(f->window + AUTH_WINDOW_S - now) : 0;
    pthread_mutex_unlock(&g_mu);
    return wait > 0 ? wait : 0;
}

void auth_failed(const char *addr, long long now)
{
    if (!addr || loopback(addr))
        return;
    pthread_mutex_lock(&g_mu);
    entry_of(addr, now, true)->count++;
    pthread_mutex_unlock(&g_mu);
}

/* ---- rates per key ------------------------------------------------------ */

struct bucket {
    char name[API_KEY_NAME_MAX + 1];
    double tokens, at;      /* tokens left at time `at` */
};

static struct bucket g_bucket[AUTH_TRACKED];

int auth_rate_take(const char *name, double n, double per_s, double now)
{
    if (!name || n <= 0 || per_s <= 0)
        return 0;
    pthread_mutex_lock(&g_mu);
    struct bucket *b = NULL, *spare = &g_bucket[0];
    for (size_t i = 0; i < AUTH_TRACKED && !b; i++) {
        if (g_bucket[i].name[0] && strcmp(g_bucket[i].name, name) == 0)
            b = &g_bucket[i];
        else if (spare->name[0] && (!g_bucket[i].name[0] || g_bucket[i].at < spare->at))
            spare = &g_bucket[i];
    }
    if (!b) {
        b = spare;
        snprintf(b->name, sizeof b->name, "%s", name);
        b->tokens = n;
        b->at = now;
    }
    b->tokens += (now - b->at) * per_s;
    if (b->tokens > n)
        b->tokens = n;          /* a rate lowered at a reload applies at once */
    b->at = now;
    int wait = 0;
    if (b->tokens >= 1)
        b->tokens -= 1;
    else
        wait = (int)ceil((1 - b->tokens) / per_s);
    pthread_mutex_unlock(&g_mu);
    return wait;
}
