/*
 * upload.c: streaming multipart parser glue (libmicrohttpd's post processor)
 * writing the "file" part to a temp file; see upload.h.
 */
#include "http/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

struct field {
    char name[64];
    buf value;
};

struct upload {
    struct MHD_PostProcessor *pp;
    char path[512];
    int fd;
    size_t file_size, max_file;
    bool too_large, malformed, have_file;
    char file_name[256];       /* the client's name for it: display only */
    struct field fields[UPLOAD_MAX_FIELDS];
    size_t nfields;
};

static struct field *field_for(upload *u, const char *key)
{
    for (size_t i = 0; i < u->nfields; i++)
        if (strcmp(u->fields[i].name, key) == 0)
            return &u->fields[i];
    if (u->nfields == UPLOAD_MAX_FIELDS || strlen(key) >= sizeof u->fields[0].name)
        return NULL;
    struct field *f = &u->fields[u->nfields++];
    snprintf(f->name, sizeof f->name, "%s", key);
    f->value = buf_make(UPLOAD_FIELD_MAX);
    return f;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    upload *u = cls;
    (void)kind;
    /* the client's file name is kept for display (batch jobs list it),
     * printable bytes only, and never becomes part of a path */
    (void)content_type;
    (void)transfer_encoding;
    if (!key)
        return MHD_YES;
    if (strcmp(key, "file") == 0) {
        if (off == 0 && u->have_file && u->file_size > 0) {
            u->malformed = true;          /* a second file part */
            return MHD_NO;
        }
        u->have_file = true;
        if (off == 0 && filename && !u->file_name[0]) {
            size_t o = 0;
            for (const char *c = filename; *c && o + 1 < sizeof u->file_name; c++)
                u->file_name[o++] = (unsigned char)*c < 0x20 || *c == 0x7f ? '?' : *c;
            u->file_name[o] = '\0';
        }
        if (u->too_large || size == 0)
            return MHD_YES;
        if (u->file_size + size > u->max_file) {
            u->too_large = true;
            return MHD_YES;               /* keep reading so we can answer 413 */
        }
        const char *p = data;
        size_t left = size;
        while (left) {
            ssize_t w = write(u->fd, p, left);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                log_error("upload: cannot write the temp file: %s", strerror(errno));
                u->malformed = true;
                return MHD_NO;
            }
            p += w;
            left -= (size_t)w;
        }
        u->file_size += size;
        return MHD_YES;
    }
    struct field *f = field_for(u, key);
    if (!f)
        return MHD_YES;               /* too many fields: ignore the rest */
    if (off == 0 && f->value.len)
        buf_putc(&f->value, ',');     /* a repeated name */
    if (buf_append(&f->value, data, size) < 0)
        u->malformed = true;
    return MHD_YES;
}

upload *upload_begin(http_req *r, const char *tmpdir, size_t max_file, char *err, size_t el,
                     int *status)
{
    *status = 400;
    const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0) {
        snprintf(err, el, "this endpoint takes multipart/form-data");
        return NULL;
    }
    upload *u = calloc(1, sizeof *u);
    if (!u) {
        snprintf(err, el, "out of memory");
        *status = 500;
        return NULL;
    }
    u->fd = -1;
    u->max_file = max_file;
    mkdir(tmpdir, 0700);
    snprintf(u->path, sizeof u->path, "%s/upload-XXXXXX", tmpdir);
    u->fd = mkostemp(u->path, O_CLOEXEC);
    if (u->fd < 0) {
        snprintf(err, el, "cannot create a temporary file for the upload");
        *status = 500;
        u->path[0] = '\0';
        upload_free(u);
        return NULL;
    }
    u->pp = MHD_create_post_processor(r->conn, 64 * 1024, on_part, u);
    if (!u->pp) {
        snprintf(err, el, "malformed multipart/form-data content type (no boundary?)");
        upload_free(u);
        return NULL;
    }
    return u;
}

int upload_feed(upload *u, const char *data, size_t n)
{
    if (u->malformed)
        return -1;
    if (MHD_post_process(u->pp, data, n) != MHD_YES)
        u->malformed = true;
    return u->malformed ? -1 : 0;
}

const char *upload_field(const upload *u, const char *name)
{
    for (size_t i = 0; i < u->nfields; i++)
        if (strcmp(u->fields[i].name, name) == 0)
            return u->fields[i].value.data ? u->fields[i].value.data : "";
    return NULL;
}

const char *upload_file_path(const upload *u)
{
    return u->have_file && u->file_size > 0 ? u->path : NULL;
}

bool upload_refused(http_req *r, int *ret)
{
    upload *u = r->up;
    if (!u && r->upload_status >= 500)
        *ret = http_reply_error(r, 500, NULL, NULL, "upload_failed", r->upload_err, 0);
    else if (!u)
        *ret = http_reply_error(r, 400, NULL, NULL, "invalid_multipart",
                                r->upload_err[0] ? r->upload_err : "expected multipart/form-data",
                                0);
    else if (u->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the file is larger than the upload limit of %zu bytes",
                 r->cfg->max_upload);
        *ret = http_reply_error(r, 413, NULL, "file", "request_too_large", msg, 0);
    } else if (u->malformed)
        *ret = http_reply_error(r, 400, NULL, NULL, "invalid_multipart",
                                "the multipart/form-data body is malformed", 0);
    else if (u->have_file && u->file_size == 0)
        *ret = http_reply_error(r, 400, NULL, "file", "invalid_value", "the 'file' part is empty",
                                0);
    else
        return false;
    return true;
}

size_t upload_file_size(const upload *u)
{
    return u->file_size;
}

const char *upload_file_name(const upload *u)
{
    return u->file_name;
}

int upload_keep_file(upload *u, const char *dest)
{
    if (!upload_file_path(u) || u->fd < 0)
        return -1;
    if (fsync(u->fd) < 0 || rename(u->path, dest) < 0)
        return -1;
    close(u->fd);
    u->fd = -1;
    u->path[0] = '\0';
    u->have_file = false;
    /* the rename itself must reach the disk too: sync the folder */
    char dir[600];
    snprintf(dir, sizeof dir, "%s", dest);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = dfd >= 0 && fsync(dfd) == 0 ? 0 : -1;
    if (dfd >= 0)
        close(dfd);
    if (rc < 0)
        unlink(dest);
    return rc;
}

void upload_release_file(upload *u)
{
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->path[0])
        unlink(u->path);
    u->path[0] = '\0';
    u->have_file = false;
}

void upload_free(upload *u)
{
    if (!u)
        return;
    if (u->pp)
        MHD_destroy_post_processor(u->pp);
    if (u->fd >= 0)
        close(u->fd);
    if (u->path[0])
        unlink(u->path);
    for (size_t i = 0; i < u->nfields; i++)
        buf_free(&u->fields[i].value);
    free(u);
}
