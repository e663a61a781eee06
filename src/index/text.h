/*
 * text.h: what a file's text goes through before the index keeps it:
 * cleaning (text_clean), cutting into chunks (text_chunk) and the hygiene
 * that drops chunks which would only add noise to search (text_hygiene).
 *
 * Cleaning keeps every line where it was, so a chunk's line numbers are
 * the file's own and citations point at the right place. Chunks end at
 * paragraph breaks where they can, then at sentence ends, then at spaces;
 * never inside a UTF-8 sequence.
 *
 * Pure functions over caller-owned memory; no I/O, no global state.
 */
#ifndef HEARTH_INDEX_TEXT_H
#define HEARTH_INDEX_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define CHUNK_TARGET 1000       /* bytes a chunk aims for (about 250 tokens) */
#define CHUNK_MAX    1600       /* bytes a chunk never exceeds */

/* What a file is to the indexer, from its name (and, without an
 * extension, its first bytes). */
typedef enum { TK_NONE, TK_TEXT, TK_HTML, TK_IMAGE, TK_AUDIO } text_kind;
text_kind   text_kind_of(const char *name);
const char *text_kind_name(text_kind k);

/* Not text: a NUL byte in the first 8 KiB. */
bool text_looks_binary(const char *p, size_t n);

/* Clean raw file bytes into out: CRLF and lone CR become LF, control
 * characters other than tab and LF become spaces, invalid UTF-8 is read
 * as Latin-1 when most of it is invalid (an old 8-bit file), else each bad
 * byte becomes U+FFFD. With html, tags become spaces and the common
 * entities are decoded (newlines are kept). 0, or -1 when out's cap is hit. */
int text_clean(buf *out, const char *p, size_t n, bool html);

typedef struct text_chunk {
    size_t start, end;          /* bytes of the cleaned text, [start, end) */
    int line0, line1;           /* first and last line, 1-based */
} text_chunk;

/* Cut text into chunks (leading and trailing blanks trimmed, empty ones
 * left out). Returns how many, or -1 when out of memory; *out is malloc'd
 * (NULL when none). */
long text_chunks(const char *text, size_t n, text_chunk **out);

/* A transcript's segments (whisper's "segments": [{"start","end","text"}])
 * as text, one segment a line (newlines inside a segment become spaces),
 * into out, and each line's start and end in seconds into *times (2 per
 * line, malloc'd). The number of lines, or -1 (out of memory, or out's
 * cap). */
struct json;
long text_from_segments(const struct json *segments, buf *out, double **times);

/* Why a chunk is not worth keeping, or NULL when it is: too short, mostly
 * digits and symbols (tables of numbers, base64, minified code), or the
 * same words as a chunk seen before (seen: hashes of the kept ones, which
 * the caller grows; *nseen counts them). */
const char *text_hygiene(const char *p, size_t n, uint64_t *seen, size_t *nseen);

#endif
