/*
 * test_auth.c: unit tests for src/http/auth.{h,c} and the key options of
 * src/core/config.c.
 */
#include <sys/stat.h>

#include "check.h"
#include "core/config.h"
#include "../../src/http/auth.c"

static char err[512];

static void with_keys(config *c)
{
    config_defaults(c);
    CHECK_EQ_INT(config_set(c, "api-key", "sk-first-key-123", err, sizeof err), 0);
    CHECK_EQ_INT(config_set(c, "api-key", "second-key-4567", err, sizeof err), 0);
}

TEST(no_keys_allows_all)
{
    config c;
    config_defaults(&c);
    const char *name = "x";
    CHECK(auth_allows(&c, NULL, NULL, &name));
    CHECK(name == NULL);
    CHECK(auth_allows(&c, "Bearer anything", NULL, &name));
    config_free(&c);
}

TEST(bearer_and_x_api_key)
{
    config c;
    with_keys(&c);
    const char *name = NULL;
    CHECK(auth_allows(&c, "Bearer sk-first-key-123", NULL, &name));
    CHECK_STR(name, "key-1");
    CHECK(auth_allows(&c, "bearer   second-key-4567  ", NULL, &name));
    CHECK_STR(name, "key-2");
    CHECK(auth_allows(&c, NULL, "second-key-4567", &name));
    CHECK_STR(name, "key-2");
    config_free(&c);
}

TEST(refusals)
{
    config c;
    with_keys(&c);
    const char *name = "x";
    const char *bad[] = { "Bearer sk-first-key-12", "Bearer sk-first-key-1234", "Bearer ",
                          "Basic c2stZmlyc3Qta2V5LTEyMw==", "sk-first-key-123",
                          "Bearer SK-FIRST-KEY-123", "Bearer sk-first-key-123\x01" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(!auth_allows(&c, bad[i], NULL, &name));
        CHECK(name == NULL);
    }
    CHECK(!auth_allows(&c, NULL, NULL, &name));
    CHECK(!auth_allows(&c, NULL, "", &name));
    char huge[600];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    memcpy(huge, "Bearer ", 7);
    CHECK(!auth_allows(&c, huge, NULL, &name));
    /* a wrong Authorization is not rescued by a right X-Api-Key: one credential */
    CHECK(!auth_allows(&c, "Bearer nope-nope-nope", "sk-first-key-123", &name));
    config_free(&c);
}

TEST(key_rules)
{
    config c;
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "api-key", "short", err, sizeof err), -1);
    CHECK(strstr(err, "8 to 256") != NULL);
    CHECK_EQ_INT(config_set(&c, "api-key", "has a blank", err, sizeof err), -1);
    CHECK_EQ_INT(c.napi_keys, 0);
    CHECK_EQ_INT(config_set(&c, "audit-log", "off", err, sizeof err), 0);
    CHECK_EQ_INT(c.audit_log, 0);
    CHECK_EQ_INT(config_set(&c, "audit-log", "maybe", err, sizeof err), -1);
    config_free(&c);
}

/* Writes text to path and loads it as a fresh config's key file. */
static int keys_from(config *c, const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -2;
    fputs(text, f);
    fclose(f);
    config_defaults(c);
    return config_set(c, "api-key-file", path, err, sizeof err);
}

TEST(key_file)
{
    char dir[] = "/tmp/hearth-test-auth-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/keys", dir);
    config c;
    CHECK_EQ_INT(keys_from(&c, path, "# household keys\nalice  alice-key-0001\n\n"
                                     "  bob-key-00000002   # no name\nscanner scanner-key-03\n"), 0);
    CHECK_EQ_INT(c.napi_keys, 3);
    const char *name = NULL;
    CHECK(auth_allows(&c, "Bearer alice-key-0001", NULL, &name));
    CHECK_STR(name, "alice");
    CHECK(auth_allows(&c, "Bearer bob-key-00000002", NULL, &name));
    CHECK_STR(name, "key-2");
    CHECK(auth_allows(&c, NULL, "scanner-key-03", &name));
    CHECK_STR(name, "scanner");
    CHECK(!auth_allows(&c, "Bearer alice", NULL, &name));
    config_free(&c);
    /* '#' inside a key is part of it; a comment starts at a blank */
    CHECK_EQ_INT(keys_from(&c, path, "#comment\nhash Jd8s!kq2#Xy77 # trailing comment\n"), 0);
    CHECK_EQ_INT(c.napi_keys, 1);
    CHECK(auth_allows(&c, "Bearer Jd8s!kq2#Xy77", NULL, &name));
    CHECK(!auth_allows(&c, "Bearer Jd8s!kq2", NULL, &name));
    config_free(&c);
    /* the same in the config file */
    char conf[160];
    snprintf(conf, sizeof conf, "%s/hearthd.conf", dir);
    FILE *f = fopen(conf, "w");
    fputs("api-key = Jd8s!kq2#Xy77   # the household key\n", f);
    fclose(f);
    config_defaults(&c);
    CHECK_EQ_INT(config_load_file(&c, conf, err, sizeof err), 0);
    CHECK(auth_allows(&c, "Bearer Jd8s!kq2#Xy77", NULL, &name));
    config_free(&c);
    unlink(conf);
    /* two keys of one name would make the audit log ambiguous */
    CHECK_EQ_INT(keys_from(&c, path, "alice alice-key-0001\nalice alice-key-0002\n"), -1);
    CHECK(strstr(err, "alice") != NULL);
    config_free(&c);
    /* errors name the file and line */
    CHECK_EQ_INT(keys_from(&c, path, "ok-key-000001\none two three\n"), -1);
    CHECK(strstr(err, ":2") != NULL);
    config_free(&c);
    CHECK_EQ_INT(keys_from(&c, path, "name tiny\n"), -1);
    CHECK(strstr(err, ":1") != NULL);
    config_free(&c);
    config_defaults(&c);
    CHECK_EQ_INT(config_set(&c, "api-key-file", "/nonexistent/keys", err, sizeof err), -1);
    config_free(&c);
    unlink(path);
    rmdir(dir);
}

TEST(failures_slow_guessing)
{
    long long t = 1000;
    for (int i = 0; i < AUTH_MAX_FAILURES - 1; i++)
        auth_failed("192.168.1.50", t);
    CHECK_EQ_INT(auth_blocked("192.168.1.50", t), 0);
    auth_failed("192.168.1.50", t + 5);
    CHECK_EQ_INT(auth_blocked("192.168.1.50", t + 5), AUTH_WINDOW_S - 5);
    CHECK_EQ_INT(auth_blocked("192.168.1.51", t + 5), 0);     /* its own count */
    CHECK_EQ_INT(auth_blocked("192.168.1.50", t + AUTH_WINDOW_S), 0);   /* a new window */
    /* loopback is never counted */
    for (int i = 0; i < 3 * AUTH_MAX_FAILURES; i++) {
        auth_failed("127.0.0.1", t);
        auth_failed("::1", t);
    }
    CHECK_EQ_INT(auth_blocked("127.0.0.1", t), 0);
    CHECK_EQ_INT(auth_blocked("::1", t), 0);
    /* more addresses than the table holds: the oldest make room */
    char a[32];
    long long last = 0;
    for (int i = 0; i < AUTH_TRACKED + 50; i++) {
        snprintf(a, sizeof a, "10.0.%d.%d", i / 256, i % 256);
        last = t + 100 + i / 8;                 /* all within one window */
        for (int k = 0; k < AUTH_MAX_FAILURES; k++)
            auth_failed(a, last);
    }
    CHECK(auth_blocked(a, last) > 0);                    /* the newest is held */
    CHECK(auth_blocked("10.0.1.0", last) > 0);           /* so are recent ones */
    CHECK_EQ_INT(auth_blocked("10.0.0.0", last), 0);     /* the oldest made room */
}

int main(void)
{
    RUN(no_keys_allows_all);
    RUN(bearer_and_x_api_key);
    RUN(refusals);
    RUN(key_rules);
    RUN(key_file);
    RUN(failures_slow_guessing);
    return check_summary();
}
