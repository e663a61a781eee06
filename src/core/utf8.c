/*
 * utf8.c: strict UTF-8 decoding (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF).
 */
#include "core/utf8.h"

size_t utf8_decode(const unsigned char *s, size_t n, unsigned *cp)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2; min = 0x80; c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3; min = 0x800; c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4; min = 0x10000; c &= 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Expected length of a sequence starting with lead byte c, 0 if not a lead. */
static size_t seq_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 0;
}

size_t utf8_complete_prefix(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    /* Only the last 3 bytes can start an incomplete sequence. */
    size_t start = n > 3 ? n - 3 : 0;
    for (size_t i = n; i > start; i--) {
        unsigned char c = s[i - 1];
        if ((c & 0xC0) == 0x80)
            continue;               /* continuation byte: look further back */
        size_t want = seq_len(c);
        size_t have = n - (i - 1);
        if (want > have) {
            /* hold back only what can still become a valid character */
            if (c == 0xC0 || c == 0xC1 || c > 0xF4)
                return n;
            for (size_t k = i; k < n; k++)
                if ((s[k] & 0xC0) != 0x80)
                    return n;
            if (have >= 2) {
                unsigned char c1 = s[i];
                if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) ||
                    (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 > 0x8F))
                    return n;
            }
            return i - 1;
        }
        return n;
    }
    return n;
}

bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        unsigned cp;
        size_t l = utf8_decode(s + i, n - i, &cp);
        if (!l)
            return false;
        i += l;
    }
    return true;
}
