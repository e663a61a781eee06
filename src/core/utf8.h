/*
 * utf8.h: UTF-8 boundary checks for streaming model output.
 *
 * A token can end in the middle of a multi-byte character; streamed chunks
 * must never split one, so the streamer only emits the prefix that
 * utf8_complete_prefix reports and keeps the rest for the next token.
 */
#ifndef HEARTH_UTF8_H
#define HEARTH_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the longest prefix of s[0..n) that does not end inside an
 * incomplete (but so far valid) multi-byte sequence. Invalid bytes count as
 * complete one-byte units (they are replaced when written as JSON). */
size_t utf8_complete_prefix(const char *s, size_t n);

/* True if s[0..n) is entirely valid UTF-8 (no overlongs, no surrogates). */
bool utf8_valid(const char *s, size_t n);

/* Decode one sequence at s (n bytes available). Returns its length (1..4) and
 * the code point in *cp, or 0 if the bytes are invalid or truncated. */
size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp);

#endif
