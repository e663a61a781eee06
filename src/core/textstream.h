/*
 * textstream.h: turns a model's token pieces into client-safe text deltas.
 *
 * Two things must never reach a client: half of a UTF-8 character, and any
 * part of a stop sequence. The stream keeps back the shortest tail that could
 * still become either, and emits the rest. When a stop sequence appears, the
 * text before it is emitted and everything after is dropped.
 *
 * Ownership: the stream copies the stop strings; ts_free releases them.
 */
#ifndef HEARTH_TEXTSTREAM_H
#define HEARTH_TEXTSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define TS_MAX_STOPS    16
#define TS_MAX_STOP_LEN 256

typedef struct textstream {
    buf pending;                  /* received, not yet emitted */
    char *stops[TS_MAX_STOPS];
    size_t stop_len[TS_MAX_STOPS];
    size_t nstops;
    bool stopped;
} textstream;

/* Stops longer than TS_MAX_STOP_LEN or beyond TS_MAX_STOPS are rejected
 * (returns -1); empty stops are ignored. */
int  ts_init(textstream *ts, const char *const *stops, size_t nstops);
void ts_free(textstream *ts);

/* Feed n bytes; append what is safe to emit to out. Returns true once a stop
 * sequence has been matched (further feeds are ignored). */
bool ts_feed(textstream *ts, const char *p, size_t n, buf *out);

/* End of generation: emit everything still held back (unless stopped). */
void ts_flush(textstream *ts, buf *out);

#endif
