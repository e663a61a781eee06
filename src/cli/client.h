/*
 * client.h: the CLI's HTTP client (libcurl) for talking to hearthd.
 *
 * Bodies received are capped (CLIENT_MAX_BODY) so a misbehaving server
 * cannot make the CLI grow without bound. Streaming calls hand each
 * server-sent event's data line to a callback as it arrives.
 */
#ifndef HEARTH_CLIENT_H
#define HEARTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define CLIENT_MAX_BODY (64u << 20)

/* The daemon URL: --url, else $HEARTH_URL, else http://127.0.0.1:8321. */
const char *client_default_url(void);

/* Every request carries "Authorization: Bearer $HEARTH_API_KEY" when that
 * variable is set (hearthd started with API keys needs one). */

/* GET or POST (body != NULL). Fills out and *status. Returns 0, or -1 with a
 * human message in err when the daemon cannot be reached. */
int client_request(const char *url, const char *body, buf *out, long *status, char *err,
                   size_t errlen);

/* The same with another method (DELETE); NULL: GET, or POST with a body. */
int client_call(const char *method, const char *url, const char *body, buf *out, long *status,
                char *err, size_t errlen);

/* POST with an SSE response. on_event gets each "data:" payload (without the
 * prefix); return non-zero from it to stop. Non-2xx responses are collected
 * into errbody instead. */
typedef int (*client_event_fn)(void *ud, const char *data, size_t len);
int client_stream(const char *url, const char *body, client_event_fn fn, void *ud, long *status,
                  buf *errbody, char *err, size_t errlen);

/* POST multipart/form-data: the file at file_path as part "file", plus the
 * NULL-terminated name/value pairs in fields. With progress, a status line
 * on stderr shows the upload and the time waited. */
int client_upload(const char *url, const char *file_path, const char *const *fields, bool progress,
                  buf *out, long *status, char *err, size_t errlen);

#endif
