/*
 * test_log.c: unit tests for src/core/log.c: one line per message, and text
 * from outside (control bytes, invalid UTF-8) cannot forge a line or break
 * the file's encoding, while valid UTF-8 passes unchanged.
 */
#include "check.h"
#include "core/log.h"

#include <fcntl.h>
#include <unistd.h>

/* What one log_msg call writes to stderr. */
static void capture(char *out, size_t cap, const char *fmt, const char *arg)
{
    int p[2];
    CHECK(pipe(p) == 0);
    int saved = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    log_msg(LOG_WARN, fmt, arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[1]);
    ssize_t n = read(p[0], out, cap - 1);
    out[n > 0 ? n : 0] = '\0';
    close(p[0]);
}

TEST(request_text_cannot_forge_lines)
{
    char line[4096];
    capture(line, sizeof line, "model '%s' not found",
            "x\n2026-01-01T00:00:00.000Z ERROR hearthd FAKE\r\x1b[31m\x7f");
    const char *nl = strchr(line, '\n');
    CHECK(nl && nl[1] == '\0');                  /* exactly one line */
    /* (the adjacent question marks are split so as not to form trigraphs) */
    CHECK(strstr(line, "model 'x?2026-01-01T00:00:00.000Z ERROR hearthd FAKE?" "?[31m?' not found"));
}

TEST(invalid_utf8_is_replaced_valid_kept)
{
    char line[4096];
    capture(line, sizeof line, "path %s", "/v1/models/\xff\xfe/caf\xc3\xa9/\xe2\x82");
    CHECK(strstr(line, "path /v1/models/?" "?/caf\xc3\xa9/?" "?\n"));
}

int main(void)
{
    RUN(request_text_cannot_forge_lines);
    RUN(invalid_utf8_is_replaced_valid_kept);
    return check_summary();
}
