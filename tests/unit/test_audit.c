/*
 * test_audit.c: unit tests for src/http/audit.{h,c}: lines, caps, rotation,
 * a file that cannot be written.
 */
#include <sys/stat.h>

#include "check.h"
#include "core/arena.h"
#include "core/json.h"
#include "../../src/http/audit.c"

static char g_dir[] = "/tmp/hearth-test-audit-XXXXXX";

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char data[1 << 20];
    *n = fread(data, 1, sizeof data - 1, f);
    data[*n] = '\0';
    fclose(f);
    return data;
}

static audit_entry entry(const char *path, unsigned status)
{
    return (audit_entry){ .wall = 1795688448.25, .rid = "req_0123", .client = "127.0.0.1",
                          .key = "alice", .method = "POST", .path = path, .model = "qwen",
                          .status = status, .outcome = "ok", .ms = 12.5, .bytes_in = 99,
                          .tokens_in = 20, .tokens_cached = 4, .tokens_out = 7,
                          .compute_ms = 33.25 };
}

TEST(lines)
{
    char err[256];
    audit *a = audit_open(g_dir, 0, err, sizeof err);
    CHECK(a != NULL);
    audit_entry e = entry("/v1/chat/completions", 200);
    audit_write(a, &e);
    e = entry("/v1/models/\xff\"odd\n", 404);
    e.key = NULL;
    e.model = NULL;
    e.tokens_in = -1;           /* no model ran: no counts */
    audit_write(a, &e);
    audit_close(a);
    char path[128];
    snprintf(path, sizeof path, "%s/audit.log", g_dir);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    size_t n;
    char *text = slurp(path, &n);
    CHECK(text != NULL);
    if (!text)
        return;
    char *nl = strchr(text, '\n');
    CHECK(nl != NULL && strchr(nl + 1, '\n') != NULL);
    arena *ar = arena_new(0);
    char perr[64];
    const json *j = json_parse(ar, text, (size_t)(nl - text), perr, sizeof perr);
    CHECK(j != NULL);
    CHECK(json_str_is(json_get(j, "time"), "2026-11-26T10:20:48.250Z"));
    CHECK(json_str_is(json_get(j, "path"), "/v1/chat/completions"));
    CHECK(json_str_is(json_get(j, "key"), "alice"));
    CHECK(json_str_is(json_get(j, "model"), "qwen"));
    CHECK(json_get(j, "status") && json_get(j, "status")->integer == 200);
    CHECK(json_get(j, "bytes_in") && json_get(j, "bytes_in")->integer == 99);
    CHECK(json_get(j, "tokens_in") && json_get(j, "tokens_in")->integer == 20);
    CHECK(json_get(j, "tokens_cached") && json_get(j, "tokens_cached")->integer == 4);
    CHECK(json_get(j, "tokens_out") && json_get(j, "tokens_out")->integer == 7);
    char *second = nl + 1;
    const json *k = json_parse(ar, second, strcspn(second, "\n"), perr, sizeof perr);
    CHECK(k != NULL);           /* bytes that are not UTF-8, quotes, newlines: still one line */
    CHECK(json_get(k, "key") && json_get(k, "key")->type == JSON_NULL);
    CHECK(json_get(k, "tokens_in") == NULL);
    arena_free(ar);
    unlink(path);
}

TEST(path_cap)
{
    char err[256];
    audit *a = audit_open(g_dir, 0, err, sizeof err);
    char longpath[4000];
    memset(longpath, 'p', sizeof longpath - 1);
    longpath[sizeof longpath - 1] = '\0';
    audit_entry e = entry(longpath, 404);
    audit_write(a, &e);
    audit_close(a);
    char path[128];
    snprintf(path, sizeof path, "%s/audit.log", g_dir);
    size_t n;
    char *text = slurp(path, &n);
    CHECK(text && n < 600);
    unlink(path);
}

TEST(rotation)
{
    char err[256];
    audit *a = audit_open(g_dir, 2000, err, sizeof err);
    CHECK(a != NULL);
    audit_entry e = entry("/v1/embeddings", 200);
    for (int i = 0; i < 40; i++)
        audit_write(a, &e);
    audit_close(a);
    char path[128], old[140];
    snprintf(path, sizeof path, "%s/audit.log", g_dir);
    snprintf(old, sizeof old, "%s/audit.log.1", g_dir);
    struct stat s1, s2;
    CHECK(stat(path, &s1) == 0 && s1.st_size > 0 && s1.st_size <= 2000);
    CHECK(stat(old, &s2) == 0 && s2.st_size > 0 && s2.st_size <= 2000);
    unlink(path);
    unlink(old);
}

TEST(unwritable_dir)
{
    char err[256] = "";
    audit *a = audit_open("/nonexistent/hearth", 0, err, sizeof err);
    CHECK(a != NULL);               /* it serves, and tries again at each line */
    CHECK(strstr(err, "audit log") != NULL);
    audit_entry e = entry("/health", 200);
    audit_write(a, &e);             /* dropped, no crash */
    audit_close(a);
    audit_write(NULL, NULL);        /* off: nothing happens */
}

int main(void)
{
    if (!mkdtemp(g_dir)) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    RUN(lines);
    RUN(path_cap);
    RUN(rotation);
    RUN(unwritable_dir);
    rmdir(g_dir);
    return check_summary();
}
