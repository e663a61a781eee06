/*
 * test_auth.c: unit tests for src/http/auth.{h,c} and the key options of
 * src/core/config.c.
 */
#include <sys/stat.h>

#include "check.h"
#include "core/config.h"
#include "../../src/http/auth.c"

static char err[512];
static unsigned sc;    /* the scopes auth_allows() gives */

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
    CHECK(auth_allows(&c, NULL, NULL, &name, &sc, NULL));
    CHECK(name == NULL);
    CHECK(auth_allows(&c, "Bearer anything", NULL, &name, &sc, NULL));
    config_free(&c);
}

TEST(bearer_and_x_api_key)
{
    config c;
    with_keys(&c);
    const char *name = NULL;
    CHECK(auth_allows(&c, "Bearer sk-first-key-123", NULL, &name, &sc, NULL));
    CHECK_STR(name, "key-1");
    CHECK(auth_allows(&c, "bearer   second-key-4567  ", NULL, &name, &sc, NULL));
    CHECK_STR(name, "key-2");
    CHECK(auth_allows(&c, NULL, "second-key-4567", &name, &sc, NULL));
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
        CHECK(!auth_allows(&c, bad[i], NULL, &name, &sc, NULL));
        CHECK(name == NULL);
    }
    CHECK(!auth_allows(&c, NULL, NULL, &name, &sc, NULL));
    CHECK(!auth_allows(&c, NULL, "", &name, &sc, NULL));
    char huge[600];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    memcpy(huge, "Bearer ", 7);
    CHECK(!auth_allows(&c, huge, NULL, &name, &sc, NULL));
    /* a wrong Authorization is not rescued by a right X-Api-Key: one credential */
    CHECK(!auth_allows(&c, "Bearer nope-nope-nope", "sk-first-key-123", &name, &sc, NULL));
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

/* A fresh folder (dir, a mkdtemp template) and the key file's path in it. */
static bool key_file_path(char *dir, char *path, size_t n)
{
    if (!mkdtemp(dir)) {
        CHECK(0);
        return false;
    }
    snprintf(path, n, "%s/keys", dir);
    return true;
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
    char dir[] = "/tmp/hearth-test-auth-XXXXXX", path[128];
    if (!key_file_path(dir, path, sizeof path))
        return;
    config c;
    CHECK_EQ_INT(keys_from(&c, path, "# household keys\nalice  alice-key-0001\n\n"
                                     "  bob-key-00000002   # no name\nscanner scanner-key-03\n"), 0);
    CHECK_EQ_INT(c.napi_keys, 3);
    const char *name = NULL;
    CHECK(auth_allows(&c, "Bearer alice-key-0001", NULL, &name, &sc, NULL));
    CHECK_STR(name, "alice");
    CHECK(auth_allows(&c, "Bearer bob-key-00000002", NULL, &name, &sc, NULL));
    CHECK_STR(name, "key-2");
    CHECK(auth_allows(&c, NULL, "scanner-key-03", &name, &sc, NULL));
    CHECK_STR(name, "scanner");
    CHECK(!auth_allows(&c, "Bearer alice", NULL, &name, &sc, NULL));
    config_free(&c);
    /* '#' inside a key is part of it; a comment starts at a blank */
    CHECK_EQ_INT(keys_from(&c, path, "#comment\nhash Jd8s!kq2#Xy77 # trailing comment\n"), 0);
    CHECK_EQ_INT(c.napi_keys, 1);
    CHECK(auth_allows(&c, "Bearer Jd8s!kq2#Xy77", NULL, &name, &sc, NULL));
    CHECK(!auth_allows(&c, "Bearer Jd8s!kq2", NULL, &name, &sc, NULL));
    config_free(&c);
    /* the same in the config file */
    char conf[160];
    snprintf(conf, sizeof conf, "%s/hearthd.conf", dir);
    FILE *f = fopen(conf, "w");
    fputs("api-key = Jd8s!kq2#Xy77   # the household key\n", f);
    fclose(f);
    config_defaults(&c);
    CHECK_EQ_INT(config_load_file(&c, conf, err, sizeof err), 0);
    CHECK(auth_allows(&c, "Bearer Jd8s!kq2#Xy77", NULL, &name, &sc, NULL));
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

TEST(key_scopes)
{
    char dir[] = "/tmp/hearth-test-auth-XXXXXX", path[128];
    if (!key_file_path(dir, path, sizeof path))
        return;
    config c;
    CHECK_EQ_INT(keys_from(&c, path, "owner  owner-key-0001\n"
                                     "kid    kid-key-000002   infer\n"
                                     "tablet tablet-key-0003  infer,search # reads the notes\n"
                                     "scan   scanner-key-004  jobs\n"
                                     "prom   prom-key-000005  monitor\n"
                                     "boss   boss-key-000006  admin\n"
                                     "both   both-key-000007  search,infer,search\n"), 0);
    CHECK_EQ_INT(c.napi_keys, 7);
    const char *name;
    CHECK(auth_allows(&c, "Bearer owner-key-0001", NULL, &name, &sc, NULL));
    CHECK_EQ_INT(sc, SCOPE_ADMIN);               /* no scopes written: everything */
    CHECK(auth_allows(&c, "Bearer kid-key-000002", NULL, &name, &sc, NULL));
    CHECK_EQ_INT(sc, SCOPE_INFER);
    CHECK(auth_allows(&c, NULL, "tablet-key-0003", &name, &sc, NULL));
    CHECK_STR(name, "tablet");
    CHECK_EQ_INT(sc, SCOPE_INFER | SCOPE_SEARCH);
    CHECK(auth_allows(&c, "Bearer scanner-key-004", NULL, &name, &sc, NULL));
    CHECK_EQ_INT(sc, SCOPE_JOBS);
    CHECK(auth_allows(&c, "Bearer prom-key-000005", NULL, &name, &sc, NULL));
    CHECK_EQ_INT(sc, SCOPE_MONITOR);
    CHECK(auth_allows(&c, "Bearer boss-key-000006", NULL, &name, &sc, NULL));
    CHECK_EQ_INT(sc, SCOPE_ADMIN);
    CHECK(sc & SCOPE_ADMIN_ONLY);
    CHECK(auth_allows(&c, "Bearer both-key-000007", NULL, &name, &sc, NULL));
    CHECK_EQ_INT(sc, SCOPE_INFER | SCOPE_SEARCH);
    /* a refused key has no scopes */
    sc = 99;
    CHECK(!auth_allows(&c, "Bearer nobody-key-0000", NULL, &name, &sc, NULL));
    CHECK_EQ_INT(sc, 0);
    config_free(&c);
    /* names of scopes back */
    char s[SCOPE_NAMES_MAX];
    config_scopes_str(SCOPE_INFER | SCOPE_SEARCH, s, sizeof s);
    CHECK_STR(s, "infer,search");
    config_scopes_str(SCOPE_ADMIN, s, sizeof s);
    CHECK_STR(s, "admin");
    config_scopes_str(SCOPE_INFER | SCOPE_JOBS | SCOPE_SEARCH | SCOPE_MONITOR, s, sizeof s);
    CHECK_STR(s, "infer,jobs,search,monitor");
    /* unknown, empty and misspelt scopes are errors naming the line */
    const char *bad[] = { "a a-key-000001 write\n", "a a-key-000001 infer,\n",
                          "a a-key-000001 ,infer\n", "a a-key-000001 Infer\n",
                          "a a-key-000001 infer,,jobs\n", "a a-key-000001 infer jobs\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_EQ_INT(keys_from(&c, path, bad[i]), -1);
        CHECK(strstr(err, ":1") != NULL);
        CHECK_EQ_INT(c.napi_keys, 0);
        config_free(&c);
    }
    CHECK_EQ_INT(keys_from(&c, path, "a a-key-000001 write\n"), -1);
    CHECK(strstr(err, "unknown scope 'write'") != NULL);
    config_free(&c);
    /* the longest line: a name, a key and every scope */
    char line[API_KEY_NAME_MAX + API_KEY_MAX + SCOPE_NAMES_MAX + 8];
    snprintf(line, sizeof line, "%.*s %.*s infer,jobs,search,monitor,admin\n", API_KEY_NAME_MAX,
             "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", API_KEY_MAX,
             "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
             "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
             "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
             "kkkkkkkkkkkkkkkkkkkkkk");
    CHECK_EQ_INT(keys_from(&c, path, line), 0);
    CHECK_EQ_INT(c.api_key_scopes[0], SCOPE_ADMIN);
    config_free(&c);
    unlink(path);
    rmdir(dir);
}

TEST(key_folders)
{
    char dir[] = "/tmp/hearth-test-auth-XXXXXX", path[128];
    if (!key_file_path(dir, path, sizeof path))
        return;
    config c;
    CHECK_EQ_INT(keys_from(&c, path, "tablet tablet-key-00001 infer,search:/home/ana/recipes/,"
                                     "search:/srv/manuals 30/min\n"
                                     "kid kid-key-000000002 infer\n"
                                     "all all-key-000000003 search\n"), 0);
    CHECK_EQ_INT(c.api_key_scopes[0], SCOPE_INFER | SCOPE_SEARCH);
    CHECK_STR(c.api_key_folders[0], "/home/ana/recipes\n/srv/manuals");
    CHECK(c.api_key_folders[1] == NULL && c.api_key_folders[2] == NULL);
    CHECK(c.api_key_rate_n[0] == 30);
    config_free(&c);
    const char *bad[] = {
        "a a-key-000001 search:recipes\n",             /* not absolute */
        "a a-key-000001 search:/home/../etc\n",
        "a a-key-000001 search:/home/./ana\n",
        "a a-key-000001 search:/home//ana\n",
        "a a-key-000001 search:\n",
        "a a-key-000001 search,search:/srv\n",         /* all and some: unclear */
        "a a-key-000001 admin,search:/srv\n",
        "a a-key-000001 search:/1,search:/2,search:/3,search:/4,search:/5,search:/6,"
        "search:/7,search:/8,search:/9\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_EQ_INT(keys_from(&c, path, bad[i]), -1);
        CHECK(strstr(err, ":1") != NULL);
        CHECK_EQ_INT(c.napi_keys, 0);
        config_free(&c);
    }
    /* "/" is every folder, written as one */
    CHECK_EQ_INT(keys_from(&c, path, "a a-key-000001 search:/\n"), 0);
    CHECK_STR(c.api_key_folders[0], "/");
    config_free(&c);
    unlink(path);
    rmdir(dir);
}

TEST(key_rates)
{
    char dir[] = "/tmp/hearth-test-auth-XXXXXX", path[128];
    if (!key_file_path(dir, path, sizeof path))
        return;
    config c;
    CHECK_EQ_INT(keys_from(&c, path, "kid kid-key-0000001 infer 20/min\n"
                                     "cam cam-key-0000002 jobs 2/s\n"
                                     "nas nas-key-0000003 admin 1000/h\n"
                                     "me  me-key-00000004\n"), 0);
    CHECK(c.api_key_rate_n[0] == 20 && fabs(c.api_key_rate_per_s[0] - 20.0 / 60) < 1e-12);
    CHECK(c.api_key_rate_n[1] == 2 && c.api_key_rate_per_s[1] == 2);
    CHECK(c.api_key_rate_n[2] == 1000 && fabs(c.api_key_rate_per_s[2] - 1000.0 / 3600) < 1e-12);
    CHECK(c.api_key_rate_n[3] == 0);
    CHECK_EQ_INT(c.api_key_scopes[2], SCOPE_ADMIN);
    config_free(&c);
    const char *bad[] = { "a a-key-000001 infer 0/min\n", "a a-key-000001 infer 10\n",
                          "a a-key-000001 infer 10/day\n", "a a-key-000001 infer -5/s\n",
                          "a a-key-000001 infer /s\n", "a a-key-000001 infer 2000000/s\n",
                          "a a-key-000001 infer 5/min extra\n", "a a-key-000001 infer +5/s\n" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_EQ_INT(keys_from(&c, path, bad[i]), -1);
        CHECK(strstr(err, ":1") != NULL);
        config_free(&c);
    }
    unlink(path);
    rmdir(dir);
    /* the bucket: a burst of n, then one per 1/per_s seconds */
    double t = 5000;
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(auth_rate_take("kid", 3, 3.0 / 60, t), 0);
    CHECK_EQ_INT(auth_rate_take("kid", 3, 3.0 / 60, t), 20);    /* one token in 20 s */
    CHECK_EQ_INT(auth_rate_take("kid", 3, 3.0 / 60, t + 15), 5);
    CHECK_EQ_INT(auth_rate_take("other", 3, 3.0 / 60, t), 0);   /* its own bucket */
    CHECK_EQ_INT(auth_rate_take("kid", 3, 3.0 / 60, t + 20), 0);
    CHECK_EQ_INT(auth_rate_take("kid", 3, 3.0 / 60, t + 20), 20);
    /* idle for long: a burst again, never more than n */
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(auth_rate_take("kid", 3, 3.0 / 60, t + 10000), 0);
    CHECK(auth_rate_take("kid", 3, 3.0 / 60, t + 10000) > 0);
    /* no rate, or no key: always */
    CHECK_EQ_INT(auth_rate_take("kid", 0, 0, t), 0);
    CHECK_EQ_INT(auth_rate_take(NULL, 3, 1, t), 0);
    /* more keys than the table holds: the least recent make room */
    char name[32];
    for (int i = 0; i < AUTH_TRACKED + 10; i++) {
        snprintf(name, sizeof name, "k%d", i);
        CHECK_EQ_INT(auth_rate_take(name, 1, 1.0 / 3600, t + 20000 + i), 0);
    }
    CHECK(auth_rate_take(name, 1, 1.0 / 3600, t + 20000 + AUTH_TRACKED + 10) > 0);
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
    RUN(key_scopes);
    RUN(key_rates);
    RUN(key_folders);
    RUN(failures_slow_guessing);
    return check_summary();
}
