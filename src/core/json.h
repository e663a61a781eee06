/*
 * json.h: a strict JSON (RFC 8259) parser into an arena, and writer helpers.
 *
 * Parsing: json_parse builds a read-only tree whose every node and string lives
 * in the caller's arena; the tree is freed with the arena. Limits: nesting depth
 * (JSON_MAX_DEPTH) and the arena's cap; strings must be valid UTF-8 and may
 * contain NUL (use .len, not strlen). On error the message says where and why,
 * never echoing input.
 *
 * Writing: the jw_* helpers append to a buf; jw_str escapes and replaces
 * invalid UTF-8 with U+FFFD so output is always valid JSON.
 */
#ifndef HEARTH_JSON_H
#define HEARTH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"

#define JSON_MAX_DEPTH 64

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json json;
struct json {
    json_type type;
    const char *key;      /* member name when inside an object */
    size_t keylen;
    bool boolean;
    double number;
    bool is_int;          /* number had no fraction/exponent and fits int64 */
    int64_t integer;
    const char *str;      /* JSON_STRING: NUL-terminated, may contain NUL */
    size_t len;           /* string length, or number of children */
    json *child;          /* first element/member */
    json *next;           /* next sibling */
};

/* Parse text[0..n). Returns the root or NULL with a message in err. */
json *json_parse(arena *a, const char *text, size_t n, char *err, size_t errlen);

/* Member of an object by name (NULL if absent or v is not an object). */
const json *json_get(const json *obj, const char *key);
const char *json_type_name(json_type t);
/* True if v is a string exactly equal to lit (no embedded NUL tricks). */
bool json_str_is(const json *v, const char *lit);

/* Writers: each returns 0, or -1 when the buf cap is hit. */
int jw_str(buf *b, const char *s, size_t n);      /* "escaped" */
int jw_cstr(buf *b, const char *s);               /* NULL writes null */
/* A number as the shortest text that reads back as the same double (null
 * when not finite). */
int jw_number(buf *b, double d);
/* Re-serialise a parsed value compactly. */
int jw_value(buf *b, const json *v);

#endif
