/*
 * auth.c: API key checks; see auth.h.
 */
#include "http/auth.h"

#include <stddef.h>
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
                 const char **name)
{
    *name = NULL;
    if (c->napi_keys == 0)
        return true;
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
    return true;
}
