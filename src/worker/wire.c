/*
 * wire.c: framing for the daemon <-> worker socket; see wire.h.
 */
#include "worker/wire.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

const char *wire_type_name(unsigned t)
{
    static const char *names[] = { "?", "HELLO", "LOAD_FAILED", "REQUEST", "CANCEL",
                                   "SHUTDOWN", "START", "DELTA", "DONE", "ERROR",
                                   "PROGRESS", "LOGPROBS" };
    return t < WIRE_TYPE_MAX ? names[t] : "?";
}

int wire_hdr_check(const wire_hdr *h)
{
    if (h->magic != WIRE_MAGIC || h->version != WIRE_VERSION)
        return -1;
    if (h->type == 0 || h->type >= WIRE_TYPE_MAX)
        return -1;
    if (h->len > WIRE_MAX_PAYLOAD)
        return -1;
    return 0;
}

int wire_send(int fd, unsigned type, uint32_t id, const void *payload, size_t len)
{
    if (len > WIRE_MAX_PAYLOAD) {
        errno = EMSGSIZE;
        return -1;
    }
    wire_hdr h = { WIRE_MAGIC, WIRE_VERSION, (uint16_t)type, id, (uint32_t)len };
    unsigned char hdr[WIRE_HDR_SIZE];
    memcpy(hdr, &h, sizeof hdr);
    struct iovec iov[2] = { { hdr, sizeof hdr }, { (void *)payload, len } };
    int iovcnt = len ? 2 : 1;
    struct iovec *v = iov;
    while (iovcnt > 0) {
        struct msghdr m = { .msg_iov = v, .msg_iovlen = (size_t)iovcnt };
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                poll(&pfd, 1, 1000);
                continue;
            }
            return -1;
        }
        size_t left = (size_t)w;
        while (iovcnt > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

void wire_reader_init(wire_reader *r)
{
    r->in = buf_make(WIRE_HDR_SIZE + WIRE_MAX_PAYLOAD + 65536);
    r->taken = 0;
}

void wire_reader_free(wire_reader *r)
{
    buf_free(&r->in);
}

long wire_reader_fill(wire_reader *r, int fd)
{
    buf_consume(&r->in, r->taken);
    r->taken = 0;
    if (buf_reserve(&r->in, 65536) < 0) {
        errno = ENOBUFS;
        return -1;
    }
    ssize_t n;
    do {
        n = read(fd, r->in.data + r->in.len, 65536);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        r->in.len += (size_t)n;
        r->in.data[r->in.len] = '\0';
    }
    return (long)n;
}

/* Frames already handed out are consumed lazily at the next call, so the
 * payload pointer stays valid until then. */
int wire_reader_next(wire_reader *r, wire_hdr *h, const char **payload)
{
    buf_consume(&r->in, r->taken);
    r->taken = 0;
    if (r->in.len < WIRE_HDR_SIZE)
        return 0;
    memcpy(h, r->in.data, sizeof *h);
    if (wire_hdr_check(h) < 0)
        return -1;
    if (r->in.len - WIRE_HDR_SIZE < h->len)
        return 0;
    *payload = r->in.data + WIRE_HDR_SIZE;
    r->taken = WIRE_HDR_SIZE + h->len;
    return 1;
}

bool wire_reader_holds(const wire_reader *r, unsigned type, uint32_t id, bool any_id)
{
    size_t off = r->taken;
    while (r->in.len - off >= WIRE_HDR_SIZE) {
        wire_hdr h;
        memcpy(&h, r->in.data + off, sizeof h);
        if (wire_hdr_check(&h) < 0 || r->in.len - off - WIRE_HDR_SIZE < h.len)
            return false;
        if (h.type == type && (any_id || h.id == id))
            return true;
        off += WIRE_HDR_SIZE + h.len;
    }
    return false;
}
