/*
 * wire.h: the daemon <-> worker message format.
 *
 * A frame is a fixed 16-byte header followed by `len` payload bytes:
 *   magic "HRTH" | u16 version | u16 type | u32 job id | u32 len
 * (host byte order: both ends are the same build on the same machine).
 * Payloads are JSON objects except DELTA, which is raw UTF-8 text.
 * Every frame is checked before use: magic, version, a known type and
 * len <= WIRE_MAX_PAYLOAD; a bad frame means the peer is broken and the
 * connection is dropped, never trusted.
 *
 * Directions:
 *   worker -> daemon: HELLO (loaded; model facts), LOAD_FAILED, START (prompt
 *                     accepted; token counts), DELTA, DONE, ERROR, PROGRESS
 *                     (a document's share done: {"progress":0.42})
 *   daemon -> worker: REQUEST (generation params), CANCEL, SHUTDOWN
 */
#ifndef HEARTH_WIRE_H
#define HEARTH_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define WIRE_MAGIC        0x48545248u   /* "HRTH" little-endian */
#define WIRE_VERSION      1
#define WIRE_HDR_SIZE     16
#define WIRE_MAX_PAYLOAD  (16u << 20)

enum wire_type {
    WIRE_HELLO = 1,
    WIRE_LOAD_FAILED,
    WIRE_REQUEST,
    WIRE_CANCEL,
    WIRE_SHUTDOWN,
    WIRE_START,
    WIRE_DELTA,
    WIRE_DONE,
    WIRE_ERROR,
    WIRE_PROGRESS,
    WIRE_LOGPROBS,      /* a JSON array of the logprobs of the tokens of the next DELTA */
    WIRE_TYPE_MAX
};

typedef struct wire_hdr {
    uint32_t magic;
    uint16_t version;
    uint16_t type;
    uint32_t id;
    uint32_t len;
} wire_hdr;

const char *wire_type_name(unsigned type);

/* Send one frame; blocks until written. Returns 0, or -1 (errno set). */
int wire_send(int fd, unsigned type, uint32_t id, const void *payload, size_t len);

/* Incremental reader: wire_reader_fill reads what the fd has (one read(2));
 * wire_reader_next extracts complete frames. */
typedef struct wire_reader {
    buf in;
    size_t taken;     /* bytes of the frame last handed out */
} wire_reader;

void wire_reader_init(wire_reader *r);
void wire_reader_free(wire_reader *r);
/* Returns bytes read, 0 on EOF, -1 on error (EAGAIN included). */
long wire_reader_fill(wire_reader *r, int fd);
/* 1: a frame is in *h / *payload (valid until the next call); 0: need more
 * bytes; -1: the stream is corrupt (bad magic/version/type/length). */
int  wire_reader_next(wire_reader *r, wire_hdr *h, const char **payload);

/* True when the bytes read but not yet handed out hold a complete frame of
 * this type (for any id when any_id, else for this id). Consumes nothing:
 * a worker busy in one request looks ahead for a cancel this way. */
bool wire_reader_holds(const wire_reader *r, unsigned type, uint32_t id, bool any_id);

/* Validate a header alone (used by the reader and by tests). */
int wire_hdr_check(const wire_hdr *h);

#endif
