/*
 * upload.h: multipart/form-data uploads, streamed to a capped temp file.
 *
 * The part named "file" goes to a private temporary file (mkstemp, mode 0600)
 * in the data dir's tmp/ folder and nowhere else: the client's file name is
 * never used in a path. Every other part is a small text field, capped at
 * UPLOAD_FIELD_MAX bytes. Past max_file bytes the upload is marked too large
 * and the rest is discarded (the caller answers 413). upload_free unlinks the
 * temp file, so no request leaves a file behind.
 */
#ifndef HEARTH_UPLOAD_H
#define HEARTH_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "http/http.h"

#define UPLOAD_FIELD_MAX  (64u * 1024)
#define UPLOAD_MAX_FIELDS 16

typedef struct upload upload;

/* NULL with err set and *status 400 when the request is not
 * multipart/form-data or has no boundary, 500 when the temp folder cannot be
 * used or memory is short. */
upload *upload_begin(http_req *r, const char *tmpdir, size_t max_file, char *err, size_t errlen,
                     int *status);
/* Feed body bytes. Returns -1 when the body is malformed. */
int     upload_feed(upload *u, const char *data, size_t n);
/* After the body: the text field (NULL if absent). Repeated names (such as
 * timestamp_granularities[]) are joined with ','. */
const char *upload_field(const upload *u, const char *name);
/* The stored file, NULL if there was no "file" part or it was empty. */
const char *upload_file_path(const upload *u);
size_t      upload_file_size(const upload *u);
/* The client's name for the file (printable, at most 255 bytes; "" when it
 * sent none). For display only: it never becomes part of a path. */
const char *upload_file_name(const upload *u);
/* Make the stored file durable under dest (fsync, rename, fsync of dest's
 * folder, which must be on the same file system); the upload no longer owns
 * it. 0, or -1 (errno) with nothing left at dest. */
int         upload_keep_file(upload *u, const char *dest);
/* When the request's upload cannot be used (it could not start: r->up is
 * NULL with r->upload_err; over the cap; malformed; an empty file part),
 * queues the error response, stores the handler's return value in *ret and
 * returns true. */
bool        upload_refused(http_req *r, int *ret);
/* Delete the stored file now (the handler calls this before it answers, so a
 * client never sees a response while its upload still sits on disk). */
void        upload_release_file(upload *u);
void        upload_free(upload *u);

#endif
