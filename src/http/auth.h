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
 * Ownership: reads the config's keys; keeps nothing.
 */
#ifndef HEARTH_AUTH_H
#define HEARTH_AUTH_H

#include <stdbool.h>

#include "core/config.h"

/* Whether a request whose headers are `authorization` and `x_api_key`
 * (either may be NULL) may proceed. On success *name is the key's name
 * (for the audit log), or NULL when no keys are configured. */
bool auth_allows(const config *c, const char *authorization, const char *x_api_key,
                 const char **name);

#endif
