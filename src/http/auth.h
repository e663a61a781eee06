/*
 * auth.h: API keys.
 *
 * With no key configured every request is served (hearthd listens on
 * loopback by default). With keys, every request but GET /health must carry
 * one, as OpenAI's clients send it ("Authorization: Bearer KEY"), or as
 * "X-Api-Key: KEY". Keys are compared in time that does not depend on where
 * a guess first differs, and every configured key is compared on every
 * request, so timing tells nothing of which key or how much of it matched.
 *
 * Guessing is slowed per client address: after AUTH_MAX_FAILURES refused
 * requests within AUTH_WINDOW_S seconds, an address gets 429 for the rest of
 * that window, whatever key it sends, so it cannot learn when a guess was
 * right. Loopback addresses are not counted: every local program shares
 * them, and one misconfigured script must not lock the others out.
 *
 * Each key has scopes (core/config.h): a request its key's scopes do not
 * cover is refused with 403 before its body is read. A key may have a
 * rate: requests past it get 429 (a token bucket per key).
 *
 * Ownership: reads the config's keys; the failure table is process-wide,
 * behind a mutex.
 */
#ifndef HEARTH_AUTH_H
#define HEARTH_AUTH_H

#include <stdbool.h>

#include "core/config.h"

/* Whether a request whose headers are `authorization` and `x_api_key`
 * (either may be NULL) may proceed. On success *name is the key's name
 * (for the audit log), or NULL when no keys are configured, *scopes what
 * it may do (SCOPE_*; SCOPE_ADMIN without keys) and, unless key is NULL,
 * *key its index in c's api_key_* arrays (-1 without keys). */
bool auth_allows(const config *c, const char *authorization, const char *x_api_key,
                 const char **name, unsigned *scopes, int *key);

#define AUTH_MAX_FAILURES 10
#define AUTH_WINDOW_S     60
#define AUTH_TRACKED      256     /* addresses remembered; the oldest go first */

/* A request by the key `name` whose rate is at most n requests a burst,
 * refilled at per_s a second (config's api_key_rate_*), at time now
 * (seconds): 0 when it may go ahead (and is counted), else the seconds
 * until it may. Keys are told apart by name (AUTH_TRACKED of them; the
 * least recently used makes room). */
int auth_rate_take(const char *name, double n, double per_s, double now);

/* Seconds `addr` must wait before its key is checked again (0: go ahead),
 * at time `now` (seconds). */
int  auth_blocked(const char *addr, long long now);
/* A refused request from addr at now. */
void auth_failed(const char *addr, long long now);

#endif
