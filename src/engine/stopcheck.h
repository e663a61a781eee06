/*
 * stopcheck.h: a caller's "should this request stop?" check, as the
 * one-shot engines (engine/asr.h, engine/ocr.h) hold it: asked from inside
 * their engines' callbacks (whisper.cpp's abort hook, Tesseract's cancel
 * monitor), and remembered once it said yes, until the next request.
 *
 * Ownership: plain data inside its engine; the caller keeps ud alive while
 * the check is set.
 */
#ifndef HEARTH_STOPCHECK_H
#define HEARTH_STOPCHECK_H

#include <stdbool.h>
#include <stddef.h>

struct stop_check {
    bool (*should_stop)(void *ud);  /* NULL: never stop */
    void *ud;
    bool stopped;                   /* it said yes during this request */
};

/* Set (or, with NULL, remove) the check. */
static inline void stop_check_set(struct stop_check *s, bool (*should_stop)(void *ud), void *ud)
{
    *s = (struct stop_check){ should_stop, ud, false };
}

/* A new request: nothing said yet. */
static inline void stop_check_reset(struct stop_check *s)
{
    s->stopped = false;
}

/* True once the check said stop during this request. */
static inline bool stop_check_now(struct stop_check *s)
{
    if (!s->stopped && s->should_stop && s->should_stop(s->ud))
        s->stopped = true;
    return s->stopped;
}

#endif
