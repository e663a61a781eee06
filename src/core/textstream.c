/*
 * textstream.c: stop-sequence and UTF-8 hold-back for streamed text.
 */
#include "core/textstream.h"

#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

int ts_init(textstream *ts, const char *const *stops, size_t nstops)
{
    memset(ts, 0, sizeof *ts);
    ts->pending = buf_make(0);
    for (size_t i = 0; i < nstops; i++) {
        size_t l = strlen(stops[i]);
        if (l == 0)
            continue;
        if (l > TS_MAX_STOP_LEN || ts->nstops == TS_MAX_STOPS) {
            ts_free(ts);
            return -1;
        }
        ts->stops[ts->nstops] = strdup(stops[i]);
        ts->stop_len[ts->nstops++] = l;
    }
    return 0;
}

void ts_free(textstream *ts)
{
    for (size_t i = 0; i < ts->nstops; i++)
        free(ts->stops[i]);
    ts->nstops = 0;
    buf_free(&ts->pending);
}

/* Longest suffix of s[0..n) that is a proper prefix of stop. */
static size_t partial_match(const char *s, size_t n, const char *stop, size_t sl)
{
    size_t max = sl - 1 < n ? sl - 1 : n;
    for (size_t k = max; k > 0; k--)
        if (memcmp(s + n - k, stop, k) == 0)
            return k;
    return 0;
}

bool ts_feed(textstream *ts, const char *p, size_t n, buf *out)
{
    if (ts->stopped)
        return true;
    buf_append(&ts->pending, p, n);
    const char *s = ts->pending.data;
    size_t len = ts->pending.len;

    size_t first = len;
    for (size_t i = 0; i < ts->nstops; i++) {
        const char *hit = memmem(s, len, ts->stops[i], ts->stop_len[i]);
        if (hit && (size_t)(hit - s) < first)
            first = (size_t)(hit - s);
    }
    if (first < len) {
        buf_append(out, s, first);
        buf_reset(&ts->pending);
        ts->stopped = true;
        return true;
    }
    size_t hold = 0;
    for (size_t i = 0; i < ts->nstops; i++) {
        size_t k = partial_match(s, len, ts->stops[i], ts->stop_len[i]);
        if (k > hold)
            hold = k;
    }
    size_t emit = utf8_complete_prefix(s, len - hold);
    buf_append(out, s, emit);
    buf_consume(&ts->pending, emit);
    return false;
}

void ts_flush(textstream *ts, buf *out)
{
    if (!ts->stopped)
        buf_append(out, ts->pending.data ? ts->pending.data : "", ts->pending.len);
    buf_reset(&ts->pending);
}
