/*
 * log.c: one write(2) per line so concurrent threads and processes sharing
 * stderr never interleave inside a line.
 */
#include "core/log.h"

#include "core/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static log_level g_level = LOG_INFO;
static char g_proc[32] = "hearthd";
static _Thread_local char t_rid[40];

void log_set_level(log_level lv) { g_level = lv; }

int log_parse_level(const char *s, log_level *out)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    return -1;
}

void log_set_process(const char *name)
{
    snprintf(g_proc, sizeof g_proc, "%s", name);
}

void log_set_rid(const char *rid)
{
    snprintf(t_rid, sizeof t_rid, "%s", rid ? rid : "");
}

const char *log_rid(void) { return t_rid; }

void log_msg(log_level lv, const char *fmt, ...)
{
    static const char *tags[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
    if (lv < g_level)
        return;
    char line[2048];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)(tv.tv_usec / 1000), tags[lv], g_proc);
    if (t_rid[0])
        n += snprintf(line + n, sizeof line - (size_t)n, "[%s] ", t_rid);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    int start = n;
    n += m;
    if ((size_t)n > sizeof line - 2)
        n = sizeof line - 2;
    /* text from requests (a model name, a path) must not forge lines or
     * break the file's encoding: control bytes and invalid UTF-8 become '?' */
    for (int i = start; i < n;) {
        unsigned char c = (unsigned char)line[i];
        unsigned cp;
        size_t k = c < 0x80 ? 1 : utf8_decode((const unsigned char *)line + i, (size_t)(n - i), &cp);
        if (c < 0x20 || c == 0x7F || k == 0) {
            line[i++] = '?';
            continue;
        }
        i += (int)k;
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
