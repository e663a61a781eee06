/*
 * test_store.c: unit tests for src/queue/store.{h,c}, the batch jobs'
 * SQLite file: adding and reading jobs, claims, failures with back-off and
 * the dead letter, results, recovery after a stop, the user's actions,
 * listing, and a damaged file refused. Each test has a fresh folder (under
 * $HEARTH_TMP when set, else /tmp) with a real database file in it.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "check.h"
#include "core/buf.h"
#include "queue/store.h"

static char g_dir[512];
static char g_db[600];

/* A fresh folder for the current test, and the database path in it. */
static void fresh_dir(void)
{
    const char *tmp = getenv("HEARTH_TMP");
    snprintf(g_dir, sizeof g_dir, "%s/hearth-test-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        _exit(1);
    }
    snprintf(g_db, sizeof g_db, "%s/jobs.db", g_dir);
}

static void remove_dir(void)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    char p[640];
    for (size_t i = 0; i < sizeof suffix / sizeof *suffix; i++) {
        snprintf(p, sizeof p, "%s%s", g_db, suffix[i]);
        unlink(p);
    }
    rmdir(g_dir);
}

static store *open_fresh(void)
{
    fresh_dir();
    char err[512] = "";
    store *s = store_open(g_db, err, sizeof err);
    if (!s)
        fprintf(stderr, "  store_open: %s\n", err);
    return s;
}

static store *reopen(void)
{
    char err[512] = "";
    store *s = store_open(g_db, err, sizeof err);
    if (!s)
        fprintf(stderr, "  store_open (again): %s\n", err);
    return s;
}

static bjob job(const char *kind, const char *input, int max_attempts)
{
    bjob j = { 0 };
    memset(&j, 0, sizeof j);
    snprintf(j.kind, sizeof j.kind, "%s", kind);
    snprintf(j.model, sizeof j.model, "whisper-tiny");
    snprintf(j.format, sizeof j.format, "json");
    j.options = (char *)"{\"language\":\"en\"}";
    snprintf(j.input, sizeof j.input, "%s", input);
    snprintf(j.input_name, sizeof j.input_name, "client %s.wav", input);
    j.input_bytes = 12345;
    j.max_attempts = max_attempts;
    return j;
}

static int64_t add(store *s, const char *input, int max_attempts, double now)
{
    bjob j = job("transcription", input, max_attempts);
    char err[256] = "";
    int64_t id = store_add(s, &j, now, 0, err, sizeof err);
    if (id < 0)
        fprintf(stderr, "  store_add: %s\n", err);
    return id;
}

static int status_of_job(store *s, int64_t id)
{
    bjob j = { 0 };
    if (store_get(s, id, &j) != 1)
        return -100;
    int st = (int)j.status;
    bjob_free(&j);
    return st;
}

/* ---- adding and reading -------------------------------------------------- */

TEST(open_add_get)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    struct stat st;
    CHECK(stat(g_db, &st) == 0 && (st.st_mode & 0777) == 0600);

    bjob in = job("translation", "in-1", 3);
    snprintf(in.model, sizeof in.model, "whisper-base");
    snprintf(in.format, sizeof in.format, "srt");
    in.options = (char *)"{\"language\":\"de\",\"prompt\":\"x\"}";
    snprintf(in.input_name, sizeof in.input_name, "Küche \"memo\".m4a");
    in.input_bytes = 987654321012LL;
    /* ignored by store_add */
    in.id = 77;
    in.status = BJ_DEAD;
    in.attempts = 2;
    char err[256] = "";
    int64_t a = store_add(s, &in, 1000.5, 0, err, sizeof err);
    int64_t b = add(s, "in-2", 1, 1001);
    int64_t c = add(s, "in-3", 0, 1002);   /* max_attempts 0: at least one */
    CHECK(a > 0);
    CHECK(b > a);
    CHECK(c > b);

    /* the -wal file takes the database's mode */
    char wal[640];
    snprintf(wal, sizeof wal, "%s-wal", g_db);
    if (stat(wal, &st) == 0)
        CHECK((st.st_mode & 0777) == 0600);

    bjob j = { 0 };
    CHECK_EQ_INT(store_get(s, a, &j), 1);
    CHECK_EQ_INT(j.id, a);
    CHECK_STR(j.kind, "translation");
    CHECK_STR(j.model, "whisper-base");
    CHECK_STR(j.format, "srt");
    CHECK_STR(j.options, "{\"language\":\"de\",\"prompt\":\"x\"}");
    CHECK_STR(j.input, "in-1");
    CHECK_STR(j.input_name, "Küche \"memo\".m4a");
    CHECK_EQ_INT(j.input_bytes, 987654321012LL);
    CHECK_EQ_INT(j.status, BJ_QUEUED);
    CHECK_EQ_INT(j.attempts, 0);
    CHECK_EQ_INT(j.max_attempts, 3);
    CHECK(j.created == 1000.5);
    CHECK(j.next_run == 1000.5);
    CHECK(j.started == 0 && j.finished == 0);
    CHECK_STR(j.error_code, "");
    CHECK_STR(j.error, "");
    CHECK_EQ_INT(j.result_bytes, 0);
    CHECK_EQ_INT(j.position, 0);
    bjob_free(&j);
    CHECK(j.options == NULL);
    bjob_free(&j);              /* twice is harmless */
    bjob_free(NULL);

    CHECK_EQ_INT(store_get(s, c, &j), 1);
    CHECK_EQ_INT(j.max_attempts, 1);
    bjob_free(&j);

    /* options NULL: an empty object */
    bjob none = job("ocr", "in-4", 2);
    none.options = NULL;
    int64_t d = store_add(s, &none, 1003, 0, err, sizeof err);
    CHECK(d > c);
    CHECK_EQ_INT(store_get(s, d, &j), 1);
    CHECK_STR(j.options, "{}");
    CHECK_STR(j.kind, "ocr");
    bjob_free(&j);

    CHECK_EQ_INT(store_get(s, d + 100, &j), 0);

    /* the rows are on disk: a second open sees them */
    store_close(s);
    s = reopen();
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(store_get(s, a, &j), 1);
        CHECK_STR(j.input_name, "Küche \"memo\".m4a");
        bjob_free(&j);
        store_close(s);
    }
    remove_dir();
}

TEST(ids_never_reused)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t a = add(s, "a", 1, 100);
    int64_t b = add(s, "b", 1, 100);
    char input[BJOB_INPUT_MAX + 1];
    CHECK_EQ_INT(store_delete(s, b, input), BJ_QUEUED);
    int64_t c = add(s, "c", 1, 100);
    CHECK(c > b && b > a);
    store_close(s);
    s = reopen();
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(store_delete(s, c, input), BJ_QUEUED);
        store_close(s);
        s = reopen();
    }
    if (s) {
        int64_t d = add(s, "d", 1, 100);
        CHECK(d > c);
        store_close(s);
    }
    remove_dir();
}

/* max_active counts queued and running jobs, not finished ones */
TEST(add_refused_when_full)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    bjob j = job("ocr", "a", 1);
    char err[256] = "";
    int64_t a = store_add(s, &j, 100, 2, err, sizeof err);
    int64_t b = store_add(s, &j, 100, 2, err, sizeof err);
    CHECK(a > 0 && b > a);
    CHECK_EQ_INT(store_add(s, &j, 100, 2, err, sizeof err), STORE_FULL);
    bjob c;
    double next;
    CHECK_EQ_INT(store_claim(s, 200, &c, &next), 1);
    CHECK_EQ_INT(store_add(s, &j, 100, 2, err, sizeof err), STORE_FULL);   /* running counts */
    CHECK_EQ_INT(store_complete(s, c.id, "x", 1, 201), BJ_COMPLETED);
    bjob_free(&c);
    CHECK(store_add(s, &j, 100, 2, err, sizeof err) > b);                  /* done does not */
    int64_t counts[BJ_NSTATUS];
    CHECK(store_counts(s, NULL, counts) == 0 && counts[BJ_QUEUED] == 2);
    store_close(s);
    remove_dir();
}

/* One job per idempotency key; jobs without a key never collide. */
TEST(idempotency_key)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    bjob j = job("ocr", "a", 1);
    char err[256] = "";
    CHECK(store_add(s, &j, 100, 0, err, sizeof err) > 0);
    CHECK(store_add(s, &j, 100, 0, err, sizeof err) > 0);          /* no key: both */
    snprintf(j.idem, sizeof j.idem, "upload-7f3a");
    int64_t a = store_add(s, &j, 100, 0, err, sizeof err);
    CHECK(a > 0);
    CHECK_EQ_INT(store_add(s, &j, 101, 0, err, sizeof err), STORE_DUPLICATE);
    CHECK(store_find_idem(s, NULL, "upload-7f3a") == a);
    CHECK(store_find_idem(s, NULL, "other") == 0);
    int64_t counts[BJ_NSTATUS];
    CHECK(store_counts(s, NULL, counts) == 0 && counts[BJ_QUEUED] == 3);
    store_close(s);
    remove_dir();
}

/* Jobs of API keys: listed, counted and found by idempotency key per
 * owner; NULL sees them all. */
TEST(owners)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    char err[256] = "";
    bjob j = job("ocr", "a", 1);
    snprintf(j.owner, sizeof j.owner, "alice");
    snprintf(j.idem, sizeof j.idem, "same-key");
    int64_t a = store_add(s, &j, 100, 0, err, sizeof err);
    j.idem[0] = '\0';
    int64_t a2 = store_add(s, &j, 100, 0, err, sizeof err);
    snprintf(j.owner, sizeof j.owner, "bob");
    snprintf(j.idem, sizeof j.idem, "same-key");           /* bob's own namespace */
    int64_t b = store_add(s, &j, 100, 0, err, sizeof err);
    CHECK(a > 0 && a2 > a && b > a2);
    CHECK_EQ_INT(store_add(s, &j, 101, 0, err, sizeof err), STORE_DUPLICATE);
    CHECK(store_find_idem(s, "alice", "same-key") == a);
    CHECK(store_find_idem(s, "bob", "same-key") == b);
    CHECK(store_find_idem(s, "carol", "same-key") == 0);
    CHECK(store_find_idem(s, NULL, "same-key") == 0);       /* no key's jobs: none */
    bjob out[4];
    CHECK_EQ_INT(store_list(s, "alice", -1, 0, out, 4), 2);
    CHECK(out[0].id == a2 && out[1].id == a);
    CHECK_STR(out[0].owner, "alice");
    bjob_free(&out[0]);
    bjob_free(&out[1]);
    CHECK_EQ_INT(store_list(s, "bob", -1, 0, out, 4), 1);
    CHECK_STR(out[0].owner, "bob");
    bjob_free(&out[0]);
    CHECK_EQ_INT(store_list(s, "carol", -1, 0, out, 4), 0);
    CHECK_EQ_INT(store_list(s, NULL, -1, 0, out, 4), 3);
    for (int i = 0; i < 3; i++)
        bjob_free(&out[i]);
    int64_t counts[BJ_NSTATUS];
    CHECK(store_counts(s, "alice", counts) == 0 && counts[BJ_QUEUED] == 2);
    CHECK(store_counts(s, "carol", counts) == 0 && counts[BJ_QUEUED] == 0);
    CHECK(store_counts(s, NULL, counts) == 0 && counts[BJ_QUEUED] == 3);
    bjob g;
    CHECK_EQ_INT(store_get(s, b, &g), 1);
    CHECK_STR(g.owner, "bob");
    bjob_free(&g);
    store_close(s);
    remove_dir();
}

/* A jobs.db of an earlier version (no progress, idem, cancel_requested or
 * owner columns): opened, its jobs kept, and the new columns usable. */
TEST(older_file_migrates)
{
    fresh_dir();
    sqlite3 *db = NULL;
    CHECK_EQ_INT(sqlite3_open(g_db, &db), SQLITE_OK);
    CHECK_EQ_INT(sqlite3_exec(db,
        "CREATE TABLE jobs(id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " kind TEXT NOT NULL, model TEXT NOT NULL, format TEXT NOT NULL, options TEXT NOT NULL,"
        " input TEXT NOT NULL, input_name TEXT NOT NULL, input_bytes INTEGER NOT NULL,"
        " status INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
        " max_attempts INTEGER NOT NULL, created REAL NOT NULL,"
        " started REAL NOT NULL DEFAULT 0, finished REAL NOT NULL DEFAULT 0,"
        " next_run REAL NOT NULL, error_code TEXT NOT NULL DEFAULT '',"
        " error TEXT NOT NULL DEFAULT '', result BLOB);"
        "INSERT INTO jobs(kind, model, format, options, input, input_name, input_bytes,"
        " status, max_attempts, created, next_run)"
        " VALUES('ocr', 'ocr', 'json', '{}', 'in-1', 'scan.png', 10, 0, 3, 5, 5);",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    store *s = reopen();
    CHECK(s != NULL);
    if (!s)
        return;
    bjob g;
    CHECK_EQ_INT(store_get(s, 1, &g), 1);
    CHECK_STR(g.input_name, "scan.png");
    CHECK_STR(g.owner, "");
    bjob_free(&g);
    bjob j = job("ocr", "b", 1);
    snprintf(j.owner, sizeof j.owner, "alice");
    snprintf(j.idem, sizeof j.idem, "k1");
    char err[256] = "";
    int64_t a = store_add(s, &j, 100, 0, err, sizeof err);
    CHECK(a > 1);
    CHECK(store_find_idem(s, "alice", "k1") == a);
    store_close(s);
    CHECK((s = reopen()) != NULL);          /* and opened again, as it is now */
    if (s)
        CHECK(store_find_idem(s, "alice", "k1") == a);
    store_close(s);
    remove_dir();
}

static void note_pruned(void *ud, const char *input)
{
    char *names = ud;
    strcat(names, input);
    strcat(names, ";");
}

/* Old completed and cancelled jobs go; failed, dead, queued and recent
 * ones stay. */
TEST(prune)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t done_old = add(s, "done-old", 1, 100), done_new = add(s, "done-new", 1, 100);
    int64_t cancelled = add(s, "cancelled", 1, 100), failed = add(s, "failed", 1, 100);
    int64_t dead = add(s, "dead", 1, 100), queued = add(s, "queued", 1, 100);
    bjob c;
    double next;
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(store_claim(s, 200, &c, &next), 1);
        double t = c.id == done_new ? 5000 : 300;
        if (c.id == done_old || c.id == done_new)
            store_complete(s, c.id, "r", 1, t);
        else if (c.id == cancelled)
            store_cancelled(s, c.id, t);
        else if (c.id == failed)
            store_fail(s, c.id, false, 10, "invalid_input", "no", t);
        else if (c.id == dead)
            store_fail(s, c.id, true, 10, "worker_crashed", "boom", t);
        else
            store_release(s, c.id, 0);
        bjob_free(&c);
    }
    char names[256] = "";
    CHECK_EQ_INT(store_prune(s, 1000, note_pruned, names), 2);
    CHECK(strstr(names, "done-old") && strstr(names, "cancelled") && !strstr(names, "new"));
    CHECK_EQ_INT(status_of_job(s, done_old), -100);
    CHECK_EQ_INT(status_of_job(s, cancelled), -100);
    CHECK_EQ_INT(status_of_job(s, done_new), BJ_COMPLETED);
    CHECK_EQ_INT(status_of_job(s, failed), BJ_FAILED);
    CHECK_EQ_INT(status_of_job(s, dead), BJ_DEAD);
    CHECK_EQ_INT(status_of_job(s, queued), BJ_QUEUED);
    CHECK_EQ_INT(store_prune(s, 1000, note_pruned, names), 0);
    store_close(s);
    remove_dir();
}

/* A cancel asked while a job runs: an outcome that would queue it again
 * (a retryable failure, a release) cancels it; a completion keeps its
 * result; the mark does not outlive the attempt. */
TEST(cancel_requested_while_running)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t a = add(s, "a", 3, 100), b = add(s, "b", 3, 100), c = add(s, "c", 3, 100);
    bjob j;
    double next;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(store_claim(s, 200, &j, &next), 1);
        bjob_free(&j);
    }
    for (int64_t id = a; id <= c; id++)
        CHECK_EQ_INT(store_cancel(s, id, 201), BJ_RUNNING);
    CHECK(store_get(s, a, &j) == 1 && j.cancel_requested && j.status == BJ_RUNNING);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, a, true, 10, "worker_crashed", "boom", 202), BJ_CANCELLED);
    CHECK_EQ_INT(store_release(s, b, 0), BJ_CANCELLED);
    CHECK_EQ_INT(store_complete(s, c, "r", 1, 202), BJ_COMPLETED);
    CHECK(store_get(s, a, &j) == 1 && !j.cancel_requested && !strcmp(j.error_code, "cancelled"));
    bjob_free(&j);
    /* retried, it runs and fails again normally */
    CHECK_EQ_INT(store_retry(s, a, 300), BJ_CANCELLED);
    CHECK_EQ_INT(store_claim(s, 301, &j, &next), 1);
    CHECK(j.id == a && !j.cancel_requested);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, a, true, 10, "worker_crashed", "boom", 302), BJ_QUEUED);
    store_close(s);
    remove_dir();
}

/* ---- claims --------------------------------------------------------------- */

TEST(claim)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    bjob j = { 0 };
    double next_due = -1;
    /* an empty queue */
    CHECK_EQ_INT(store_claim(s, 1000, &j, &next_due), 0);
    CHECK(next_due == 0);

    int64_t a = add(s, "a", 3, 1000);
    int64_t b = add(s, "b", 3, 1000);   /* same time: the lower id first */
    int64_t c = add(s, "c", 3, 1001);

    CHECK_EQ_INT(store_claim(s, 1005, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, a);
    CHECK_EQ_INT(j.status, BJ_RUNNING);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK(j.started == 1005);
    CHECK_STR(j.input, "a");
    CHECK_STR(j.options, "{\"language\":\"en\"}");
    bjob_free(&j);

    CHECK_EQ_INT(store_get(s, a, &j), 1);
    CHECK_EQ_INT(j.status, BJ_RUNNING);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK(j.started == 1005);
    CHECK_EQ_INT(j.position, 0);
    bjob_free(&j);

    CHECK_EQ_INT(store_claim(s, 1005, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, b);
    bjob_free(&j);

    /* c is not due at 1000.5: nothing, and when it will be */
    next_due = -1;
    CHECK_EQ_INT(store_claim(s, 1000.5, &j, &next_due), 0);
    CHECK(next_due == 1001);
    CHECK_EQ_INT(status_of_job(s, c), BJ_QUEUED);

    CHECK_EQ_INT(store_claim(s, 1001, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, c);
    bjob_free(&j);

    /* all running: none due, none waiting */
    next_due = -1;
    CHECK_EQ_INT(store_claim(s, 5000, &j, &next_due), 0);
    CHECK(next_due == 0);
    store_close(s);
    remove_dir();
}

TEST(position)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t a = add(s, "a", 3, 100);
    int64_t b = add(s, "b", 3, 100);
    int64_t c = add(s, "c", 3, 101);
    bjob j = { 0 };
    CHECK_EQ_INT(store_get(s, a, &j), 1);
    CHECK_EQ_INT(j.position, 0);
    bjob_free(&j);
    CHECK_EQ_INT(store_get(s, b, &j), 1);
    CHECK_EQ_INT(j.position, 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_get(s, c, &j), 1);
    CHECK_EQ_INT(j.position, 2);
    bjob_free(&j);

    /* a runs: b is first now; a's failure puts it behind c */
    double next_due;
    CHECK_EQ_INT(store_claim(s, 200, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, a);
    bjob_free(&j);
    CHECK_EQ_INT(store_get(s, b, &j), 1);
    CHECK_EQ_INT(j.position, 0);
    bjob_free(&j);
    CHECK_EQ_INT(store_get(s, c, &j), 1);
    CHECK_EQ_INT(j.position, 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, a, true, 10, "worker", "crashed", 200), BJ_QUEUED);
    CHECK_EQ_INT(store_get(s, a, &j), 1);
    CHECK_EQ_INT(j.position, 2);
    bjob_free(&j);
    store_close(s);
    remove_dir();
}

/* ---- outcomes ------------------------------------------------------------- */

TEST(fail_backoff_then_dead)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t id = add(s, "a", 3, 1000);
    bjob j = { 0 };
    double next_due;

    /* first failure: queued again after delay */
    CHECK_EQ_INT(store_claim(s, 1000, &j, &next_due), 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, id, true, 10, "worker_crashed", "the worker died", 1000),
                 BJ_QUEUED);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_EQ_INT(j.status, BJ_QUEUED);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK(j.next_run == 1010);
    CHECK_STR(j.error_code, "worker_crashed");
    CHECK_STR(j.error, "the worker died");
    bjob_free(&j);

    /* not due before its time */
    next_due = -1;
    CHECK_EQ_INT(store_claim(s, 1009.9, &j, &next_due), 0);
    CHECK(next_due == 1010);

    /* second failure: twice the delay */
    CHECK_EQ_INT(store_claim(s, 1010, &j, &next_due), 1);
    CHECK_EQ_INT(j.attempts, 2);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, id, true, 10, "load_failed", "no memory", 1010), BJ_QUEUED);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_EQ_INT(j.status, BJ_QUEUED);
    CHECK_EQ_INT(j.attempts, 2);
    CHECK(j.next_run == 1030);
    bjob_free(&j);

    /* third failure: attempts used up, dead with the error kept */
    CHECK_EQ_INT(store_claim(s, 1030, &j, &next_due), 1);
    CHECK_EQ_INT(j.attempts, 3);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, id, true, 10, "worker_crashed", "again", 1031), BJ_DEAD);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_EQ_INT(j.status, BJ_DEAD);
    CHECK_EQ_INT(j.attempts, 3);
    CHECK_STR(j.error_code, "worker_crashed");
    CHECK_STR(j.error, "again");
    CHECK(j.finished == 1031);
    CHECK_EQ_INT(j.position, 0);
    bjob_free(&j);
    next_due = -1;
    CHECK_EQ_INT(store_claim(s, 1e9, &j, &next_due), 0);
    CHECK(next_due == 0);

    /* not running any more: another outcome is refused */
    CHECK_EQ_INT(store_fail(s, id, true, 10, "x", "y", 1040), -1);
    CHECK_EQ_INT(store_fail(s, id, false, 10, "x", "y", 1040), -1);
    CHECK_EQ_INT(store_complete(s, id, "r", 1, 1040), -1);
    CHECK_EQ_INT(store_release(s, id, 0), -1);
    CHECK_EQ_INT(store_cancelled(s, id, 1040), -1);
    CHECK_EQ_INT(status_of_job(s, id), BJ_DEAD);
    /* nor on a job that does not exist */
    CHECK_EQ_INT(store_fail(s, id + 1, true, 10, "x", "y", 1040), -1);
    CHECK_EQ_INT(store_complete(s, id + 1, "r", 1, 1040), -1);
    store_close(s);
    remove_dir();
}

TEST(fail_backoff_capped)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t id = add(s, "a", 10, 0);
    const double want[] = { 1000, 2000, 3600, 3600 };
    double now = 0;
    for (int i = 0; i < 4; i++) {
        bjob j = { 0 };
        double next_due;
        CHECK_EQ_INT(store_claim(s, now, &j, &next_due), 1);
        CHECK_EQ_INT(j.attempts, i + 1);
        bjob_free(&j);
        CHECK_EQ_INT(store_fail(s, id, true, 1000, "e", "m", now), BJ_QUEUED);
        CHECK_EQ_INT(store_get(s, id, &j), 1);
        if (j.next_run != now + want[i])
            fprintf(stderr, "  failure %d: next_run %.1f, want %.1f\n", i + 1, j.next_run,
                    now + want[i]);
        CHECK(j.next_run == now + want[i]);
        now = j.next_run;
        bjob_free(&j);
    }
    store_close(s);
    remove_dir();
}

TEST(fail_not_retryable)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t id = add(s, "a", 5, 100);
    bjob j = { 0 };
    double next_due;
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, id, false, 10, "bad_input", "not an audio file", 101), BJ_FAILED);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_EQ_INT(j.status, BJ_FAILED);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK_STR(j.error_code, "bad_input");
    CHECK_STR(j.error, "not an audio file");
    CHECK(j.finished == 101);
    bjob_free(&j);
    CHECK_EQ_INT(store_claim(s, 1e9, &j, &next_due), 0);
    store_close(s);
    remove_dir();
}

TEST(complete_and_result)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t id = add(s, "a", 3, 100);
    int64_t other = add(s, "b", 3, 100);
    bjob j = { 0 };
    double next_due;
    buf r = buf_make(0);
    /* no result before it completes */
    CHECK_EQ_INT(store_result(s, id, &r), 0);
    CHECK_EQ_INT(r.len, 0);
    CHECK_EQ_INT(store_complete(s, id, "x", 1, 100), -1);   /* not running */

    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, id);
    bjob_free(&j);
    /* bytes that are not text, NULs among them */
    static const char result[] = "{\"text\":\"a\0b\"}\0\xff tail";
    size_t n = sizeof result - 1;
    CHECK_EQ_INT(store_complete(s, id, result, n, 105), BJ_COMPLETED);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_EQ_INT(j.status, BJ_COMPLETED);
    CHECK_EQ_INT(j.result_bytes, (int64_t)n);
    CHECK(j.finished == 105);
    CHECK_STR(j.error_code, "");
    bjob_free(&j);
    CHECK_EQ_INT(store_result(s, id, &r), 1);
    CHECK_EQ_INT(r.len, n);
    CHECK(r.len == n && memcmp(r.data, result, n) == 0);
    buf_free(&r);
    /* a second completion is refused */
    CHECK_EQ_INT(store_complete(s, id, "x", 1, 106), -1);
    /* a job that does not exist: none */
    CHECK_EQ_INT(store_result(s, id + 100, &r), 0);

    /* an empty result is a result */
    CHECK_EQ_INT(store_claim(s, 110, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, other);
    bjob_free(&j);
    CHECK_EQ_INT(store_complete(s, other, NULL, 0, 111), BJ_COMPLETED);
    CHECK_EQ_INT(store_result(s, other, &r), 1);
    CHECK_EQ_INT(r.len, 0);
    CHECK_EQ_INT(store_get(s, other, &j), 1);
    CHECK_EQ_INT(j.result_bytes, 0);
    bjob_free(&j);
    buf_free(&r);

    /* the result survives a reopen */
    store_close(s);
    s = reopen();
    CHECK(s != NULL);
    if (s) {
        CHECK_EQ_INT(store_result(s, id, &r), 1);
        CHECK(r.len == n && memcmp(r.data, result, n) == 0);
        buf_free(&r);
        store_close(s);
    }
    remove_dir();
}

TEST(complete_clears_earlier_error)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t id = add(s, "a", 3, 100);
    bjob j = { 0 };
    double next_due;
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, id, true, 1, "worker_crashed", "died", 100), BJ_QUEUED);
    CHECK_EQ_INT(store_claim(s, 101, &j, &next_due), 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_complete(s, id, "ok", 2, 102), BJ_COMPLETED);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_STR(j.error_code, "");
    CHECK_STR(j.error, "");
    CHECK_EQ_INT(j.attempts, 2);
    bjob_free(&j);
    store_close(s);
    remove_dir();
}

TEST(release)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t id = add(s, "a", 1, 100);
    bjob j = { 0 };
    double next_due;
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    CHECK_EQ_INT(j.attempts, 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_release(s, id, 0), BJ_QUEUED);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_EQ_INT(j.status, BJ_QUEUED);
    CHECK_EQ_INT(j.attempts, 0);
    CHECK_EQ_INT(j.position, 0);
    CHECK(j.next_run == 100);
    bjob_free(&j);
    CHECK_EQ_INT(store_release(s, id, 0), -1);  /* not running */
    /* due again at once; its one attempt is still there to use */
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, id);
    CHECK_EQ_INT(j.attempts, 1);
    bjob_free(&j);

    /* put back for later (the model could not take it yet): not due
     * before then, and still no attempt counted */
    CHECK_EQ_INT(store_release(s, id, 130), BJ_QUEUED);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_EQ_INT(j.status, BJ_QUEUED);
    CHECK_EQ_INT(j.attempts, 0);
    CHECK(j.next_run == 130);
    bjob_free(&j);
    next_due = -1;
    CHECK_EQ_INT(store_claim(s, 129, &j, &next_due), 0);
    CHECK(next_due == 130);
    CHECK_EQ_INT(store_claim(s, 130, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, id);
    CHECK_EQ_INT(j.attempts, 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, id, true, 5, "e", "m", 131), BJ_DEAD);
    store_close(s);
    remove_dir();
}

TEST(cancelled_while_running)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t id = add(s, "a", 3, 100);
    bjob j = { 0 };
    double next_due;
    CHECK_EQ_INT(store_cancelled(s, id, 100), -1);  /* not running */
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_cancelled(s, id, 102), BJ_CANCELLED);
    CHECK_EQ_INT(store_get(s, id, &j), 1);
    CHECK_EQ_INT(j.status, BJ_CANCELLED);
    CHECK_STR(j.error_code, "cancelled");
    CHECK(j.finished == 102);
    bjob_free(&j);
    store_close(s);
    remove_dir();
}

/* ---- recovery after a stop ------------------------------------------------ */

TEST(recover)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t a = add(s, "a", 3, 100);       /* attempts left */
    int64_t b = add(s, "b", 1, 100);       /* its last attempt */
    int64_t c = add(s, "c", 3, 100);       /* queued, untouched */
    bjob j = { 0 };
    double next_due;
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, a);
    bjob_free(&j);
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, b);
    bjob_free(&j);
    /* hearthd dies: no outcome is written */
    store_close(s);

    s = reopen();
    CHECK(s != NULL);
    if (!s) {
        remove_dir();
        return;
    }
    CHECK_EQ_INT(status_of_job(s, a), BJ_RUNNING);
    int requeued = -1, dead = -1;
    CHECK_EQ_INT(store_recover(s, 500, &requeued, &dead), 0);
    CHECK_EQ_INT(requeued, 1);
    CHECK_EQ_INT(dead, 1);

    CHECK_EQ_INT(store_get(s, a, &j), 1);
    CHECK_EQ_INT(j.status, BJ_QUEUED);
    CHECK_EQ_INT(j.attempts, 1);           /* the interrupted attempt counts */
    CHECK(j.next_run == 500);
    bjob_free(&j);
    CHECK_EQ_INT(store_get(s, b, &j), 1);
    CHECK_EQ_INT(j.status, BJ_DEAD);
    CHECK_EQ_INT(j.attempts, 1);
    CHECK_STR(j.error_code, "interrupted");
    CHECK(j.error[0] != '\0');
    CHECK(j.finished == 500);
    bjob_free(&j);
    CHECK_EQ_INT(store_get(s, c, &j), 1);
    CHECK_EQ_INT(j.status, BJ_QUEUED);
    CHECK_EQ_INT(j.attempts, 0);
    CHECK(j.next_run == 100);
    bjob_free(&j);

    /* nothing left to recover */
    CHECK_EQ_INT(store_recover(s, 600, &requeued, &dead), 0);
    CHECK_EQ_INT(requeued, 0);
    CHECK_EQ_INT(dead, 0);

    /* c was due first, then a */
    CHECK_EQ_INT(store_claim(s, 600, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, c);
    bjob_free(&j);
    CHECK_EQ_INT(store_claim(s, 600, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, a);
    CHECK_EQ_INT(j.attempts, 2);
    bjob_free(&j);
    store_close(s);
    remove_dir();
}

/* A crash without store_close: the claim was committed before store_claim
 * returned, so a second connection (as after kill -9) sees it. */
TEST(claim_is_durable)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t a = add(s, "a", 2, 100);
    bjob j = { 0 };
    double next_due;
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    bjob_free(&j);
    store *t = reopen();        /* s is still open: its WAL is what t reads */
    CHECK(t != NULL);
    if (t) {
        CHECK_EQ_INT(store_get(t, a, &j), 1);
        CHECK_EQ_INT(j.status, BJ_RUNNING);
        CHECK_EQ_INT(j.attempts, 1);
        bjob_free(&j);
        store_close(t);
    }
    store_close(s);
    remove_dir();
}

/* ---- user actions --------------------------------------------------------- */

TEST(cancel)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t a = add(s, "a", 3, 100);
    int64_t b = add(s, "b", 3, 100);
    bjob j = { 0 };
    double next_due;
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, a);
    bjob_free(&j);

    CHECK_EQ_INT(store_cancel(s, b, 110), BJ_QUEUED);
    CHECK_EQ_INT(store_get(s, b, &j), 1);
    CHECK_EQ_INT(j.status, BJ_CANCELLED);
    CHECK_STR(j.error_code, "cancelled");
    CHECK(j.finished == 110);
    bjob_free(&j);
    /* a cancelled job is never claimed */
    CHECK_EQ_INT(store_claim(s, 1e9, &j, &next_due), 0);
    /* again: already cancelled, unchanged */
    CHECK_EQ_INT(store_cancel(s, b, 120), BJ_CANCELLED);
    CHECK_EQ_INT(store_get(s, b, &j), 1);
    CHECK(j.finished == 110);
    bjob_free(&j);

    /* a running one is the runner's to stop */
    CHECK_EQ_INT(store_cancel(s, a, 120), BJ_RUNNING);
    CHECK_EQ_INT(status_of_job(s, a), BJ_RUNNING);

    CHECK_EQ_INT(store_cancel(s, b + 100, 120), STORE_NOT_FOUND);
    store_close(s);
    remove_dir();
}

/* Puts job id (claimed from a fresh queue of one) into status st. */
static void drive_to(store *s, int64_t id, bjob_status st)
{
    bjob j = { 0 };
    double next_due;
    if (st == BJ_QUEUED)
        return;
    if (st == BJ_CANCELLED) {
        CHECK_EQ_INT(store_cancel(s, id, 200), BJ_QUEUED);
        return;
    }
    CHECK_EQ_INT(store_claim(s, 200, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, id);
    bjob_free(&j);
    switch (st) {
    case BJ_COMPLETED: CHECK_EQ_INT(store_complete(s, id, "done", 4, 201), BJ_COMPLETED); break;
    case BJ_FAILED: CHECK_EQ_INT(store_fail(s, id, false, 1, "bad", "bad input", 201), BJ_FAILED);
                    break;
    case BJ_DEAD: CHECK_EQ_INT(store_fail(s, id, true, 1, "crash", "crashed", 201), BJ_DEAD); break;
    default: break;
    }
    CHECK_EQ_INT(status_of_job(s, id), st);
}

TEST(retry)
{
    const bjob_status again[] = { BJ_FAILED, BJ_DEAD, BJ_CANCELLED };
    for (size_t i = 0; i < sizeof again / sizeof *again; i++) {
        store *s = open_fresh();
        CHECK(s != NULL);
        if (!s)
            return;
        int64_t id = add(s, "a", 1, 100);
        drive_to(s, id, again[i]);
        CHECK_EQ_INT(store_retry(s, id, 300), again[i]);
        bjob j = { 0 };
        CHECK_EQ_INT(store_get(s, id, &j), 1);
        CHECK_EQ_INT(j.status, BJ_QUEUED);
        CHECK_EQ_INT(j.attempts, 0);
        CHECK_STR(j.error_code, "");
        CHECK_STR(j.error, "");
        CHECK(j.next_run == 300);
        CHECK(j.started == 0 && j.finished == 0);
        CHECK_EQ_INT(j.position, 0);
        bjob_free(&j);
        /* and it runs again, with its attempts back */
        double next_due;
        CHECK_EQ_INT(store_claim(s, 300, &j, &next_due), 1);
        CHECK_EQ_INT(j.id, id);
        CHECK_EQ_INT(j.attempts, 1);
        bjob_free(&j);
        store_close(s);
        remove_dir();
    }

    /* completed, queued, running: returned, nothing changed */
    const bjob_status keep[] = { BJ_COMPLETED, BJ_QUEUED, BJ_RUNNING };
    for (size_t i = 0; i < sizeof keep / sizeof *keep; i++) {
        store *s = open_fresh();
        CHECK(s != NULL);
        if (!s)
            return;
        int64_t id = add(s, "a", 1, 100);
        if (keep[i] == BJ_RUNNING) {
            bjob j = { 0 };
            double next_due;
            CHECK_EQ_INT(store_claim(s, 200, &j, &next_due), 1);
            bjob_free(&j);
        } else {
            drive_to(s, id, keep[i]);
        }
        bjob before = { 0 }, after = { 0 };
        CHECK_EQ_INT(store_get(s, id, &before), 1);
        CHECK_EQ_INT(store_retry(s, id, 300), keep[i]);
        CHECK_EQ_INT(store_get(s, id, &after), 1);
        CHECK_EQ_INT(after.status, before.status);
        CHECK_EQ_INT(after.attempts, before.attempts);
        CHECK(after.next_run == before.next_run);
        CHECK(after.finished == before.finished);
        CHECK_EQ_INT(after.result_bytes, before.result_bytes);
        bjob_free(&before);
        bjob_free(&after);
        CHECK_EQ_INT(store_retry(s, id + 1, 300), STORE_NOT_FOUND);
        store_close(s);
        remove_dir();
    }
}

TEST(delete)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t a = add(s, "in-a", 3, 100);
    int64_t b = add(s, "in-b", 3, 100);
    int64_t c = add(s, "in-c", 3, 100);
    bjob j = { 0 };
    double next_due;
    char input[BJOB_INPUT_MAX + 1];

    /* a runs: refused, still there */
    CHECK_EQ_INT(store_claim(s, 100, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, a);
    bjob_free(&j);
    memset(input, 'x', sizeof input);
    CHECK_EQ_INT(store_delete(s, a, input), BJ_RUNNING);
    CHECK_STR(input, "");
    CHECK_EQ_INT(status_of_job(s, a), BJ_RUNNING);

    /* a completed one goes with its result */
    CHECK_EQ_INT(store_complete(s, a, "result", 6, 101), BJ_COMPLETED);
    CHECK_EQ_INT(store_delete(s, a, input), BJ_COMPLETED);
    CHECK_STR(input, "in-a");
    CHECK_EQ_INT(store_get(s, a, &j), 0);
    buf r = buf_make(0);
    CHECK_EQ_INT(store_result(s, a, &r), 0);
    buf_free(&r);

    /* queued, and cancelled */
    CHECK_EQ_INT(store_delete(s, b, input), BJ_QUEUED);
    CHECK_STR(input, "in-b");
    CHECK_EQ_INT(store_get(s, b, &j), 0);
    CHECK_EQ_INT(store_cancel(s, c, 102), BJ_QUEUED);
    CHECK_EQ_INT(store_delete(s, c, input), BJ_CANCELLED);
    CHECK_STR(input, "in-c");

    /* gone */
    memset(input, 'x', sizeof input);
    CHECK_EQ_INT(store_delete(s, c, input), STORE_NOT_FOUND);
    CHECK_STR(input, "");
    CHECK_EQ_INT(store_cancel(s, c, 103), STORE_NOT_FOUND);
    CHECK_EQ_INT(store_retry(s, c, 103), STORE_NOT_FOUND);

    int64_t counts[BJ_NSTATUS];
    CHECK_EQ_INT(store_counts(s, NULL, counts), 0);
    for (int i = 0; i < BJ_NSTATUS; i++)
        CHECK_EQ_INT(counts[i], 0);
    store_close(s);
    remove_dir();
}

/* ---- listing -------------------------------------------------------------- */

TEST(list_and_counts)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    int64_t id[6];
    char name[8];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "in-%d", i);
        id[i] = add(s, name, 1, 100 + i);
    }
    /* id[0] completed, id[1] failed, id[2] cancelled, id[3..5] queued */
    bjob j = { 0 };
    double next_due;
    CHECK_EQ_INT(store_claim(s, 200, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, id[0]);
    bjob_free(&j);
    CHECK_EQ_INT(store_complete(s, id[0], "r", 1, 200), BJ_COMPLETED);
    CHECK_EQ_INT(store_claim(s, 200, &j, &next_due), 1);
    CHECK_EQ_INT(j.id, id[1]);
    bjob_free(&j);
    CHECK_EQ_INT(store_fail(s, id[1], false, 1, "bad", "bad", 200), BJ_FAILED);
    CHECK_EQ_INT(store_cancel(s, id[2], 200), BJ_QUEUED);

    bjob out[10];
    int n = store_list(s, NULL, -1, 0, out, 10);
    CHECK_EQ_INT(n, 6);
    for (int i = 0; i < n; i++) {
        CHECK_EQ_INT(out[i].id, id[5 - i]);
        bjob_free(&out[i]);
    }

    /* paging: two at a time, newest first */
    n = store_list(s, NULL, -1, 0, out, 2);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(out[0].id, id[5]);
    CHECK_EQ_INT(out[1].id, id[4]);
    CHECK_STR(out[0].input, "in-5");
    CHECK_STR(out[0].options, "{\"language\":\"en\"}");
    int64_t before = out[1].id;
    for (int i = 0; i < n; i++)
        bjob_free(&out[i]);
    n = store_list(s, NULL, -1, before, out, 2);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(out[0].id, id[3]);
    CHECK_EQ_INT(out[1].id, id[2]);
    before = out[1].id;
    for (int i = 0; i < n; i++)
        bjob_free(&out[i]);
    n = store_list(s, NULL, -1, before, out, 2);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(out[0].id, id[1]);
    CHECK_EQ_INT(out[1].id, id[0]);
    CHECK_EQ_INT(out[1].status, BJ_COMPLETED);
    CHECK_EQ_INT(out[1].result_bytes, 1);
    before = out[1].id;
    for (int i = 0; i < n; i++)
        bjob_free(&out[i]);
    CHECK_EQ_INT(store_list(s, NULL, -1, before, out, 2), 0);

    /* one status */
    n = store_list(s, NULL, BJ_QUEUED, 0, out, 10);
    CHECK_EQ_INT(n, 3);
    for (int i = 0; i < n; i++) {
        CHECK_EQ_INT(out[i].id, id[5 - i]);
        CHECK_EQ_INT(out[i].status, BJ_QUEUED);
        bjob_free(&out[i]);
    }
    n = store_list(s, NULL, BJ_QUEUED, id[5], out, 10);
    CHECK_EQ_INT(n, 2);
    for (int i = 0; i < n; i++)
        bjob_free(&out[i]);
    n = store_list(s, NULL, BJ_FAILED, 0, out, 10);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(out[0].id, id[1]);
    CHECK_STR(out[0].error_code, "bad");
    for (int i = 0; i < n; i++)
        bjob_free(&out[i]);
    CHECK_EQ_INT(store_list(s, NULL, BJ_DEAD, 0, out, 10), 0);
    CHECK_EQ_INT(store_list(s, NULL, BJ_RUNNING, 0, out, 10), 0);
    CHECK_EQ_INT(store_list(s, NULL, -1, 0, out, 0), 0);

    int64_t counts[BJ_NSTATUS];
    CHECK_EQ_INT(store_counts(s, NULL, counts), 0);
    CHECK_EQ_INT(counts[BJ_QUEUED], 3);
    CHECK_EQ_INT(counts[BJ_RUNNING], 0);
    CHECK_EQ_INT(counts[BJ_COMPLETED], 1);
    CHECK_EQ_INT(counts[BJ_FAILED], 1);
    CHECK_EQ_INT(counts[BJ_DEAD], 0);
    CHECK_EQ_INT(counts[BJ_CANCELLED], 1);
    CHECK_EQ_INT(store_claim(s, 300, &j, &next_due), 1);
    bjob_free(&j);
    CHECK_EQ_INT(store_counts(s, NULL, counts), 0);
    CHECK_EQ_INT(counts[BJ_QUEUED], 2);
    CHECK_EQ_INT(counts[BJ_RUNNING], 1);
    store_close(s);
    remove_dir();
}

struct inputs {
    int n;
    char names[16][BJOB_INPUT_MAX + 1];
};

static void collect(void *ud, const char *input)
{
    struct inputs *in = ud;
    if (in->n < 16)
        snprintf(in->names[in->n], sizeof in->names[0], "%s", input);
    in->n++;
}

static bool has(const struct inputs *in, const char *name)
{
    for (int i = 0; i < in->n && i < 16; i++)
        if (!strcmp(in->names[i], name))
            return true;
    return false;
}

TEST(each_input)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    struct inputs in = { 0 };
    CHECK_EQ_INT(store_each_input(s, collect, &in), 0);
    CHECK_EQ_INT(in.n, 0);

    const char *names[] = { "completed", "running", "failed", "dead", "cancelled", "queued" };
    int64_t id[6];
    for (int i = 0; i < 6; i++)
        id[i] = add(s, names[i], 1, 100 + i);
    bjob j = { 0 };
    double next_due;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(store_claim(s, 200, &j, &next_due), 1);
        CHECK_EQ_INT(j.id, id[i]);
        bjob_free(&j);
    }
    CHECK_EQ_INT(store_complete(s, id[0], "r", 1, 200), BJ_COMPLETED);
    CHECK_EQ_INT(store_fail(s, id[2], false, 1, "bad", "bad", 200), BJ_FAILED);
    CHECK_EQ_INT(store_fail(s, id[3], true, 1, "crash", "crash", 200), BJ_DEAD);
    CHECK_EQ_INT(store_cancel(s, id[4], 200), BJ_QUEUED);

    CHECK_EQ_INT(store_each_input(s, collect, &in), 0);
    CHECK_EQ_INT(in.n, 5);
    CHECK(!has(&in, "completed"));
    for (int i = 1; i < 6; i++)
        CHECK(has(&in, names[i]));
    store_close(s);
    remove_dir();
}

/* ---- concurrency ---------------------------------------------------------- */

#define RACE_JOBS 60
#define RACE_THREADS 4

struct racer {
    store *s;
    int claimed[RACE_JOBS + 1];
    int errors;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (;;) {
        bjob j = { 0 };
        double next_due;
        int rc = store_claim(r->s, 1000, &j, &next_due);
        if (rc == 0)
            break;
        if (rc < 0) {
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
            break;
        }
        if (j.id >= 1 && j.id <= RACE_JOBS)
            __atomic_add_fetch(&r->claimed[j.id], 1, __ATOMIC_RELAXED);
        if (store_complete(r->s, j.id, "r", 1, 1001) != BJ_COMPLETED)
            __atomic_add_fetch(&r->errors, 1, __ATOMIC_RELAXED);
        bjob_free(&j);
    }
    return NULL;
}

TEST(claims_from_threads)
{
    store *s = open_fresh();
    CHECK(s != NULL);
    if (!s)
        return;
    static struct racer r;
    r.s = s;
    for (int i = 0; i < RACE_JOBS; i++)
        CHECK_EQ_INT(add(s, "x", 1, 100), i + 1);
    pthread_t t[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, race, &r) == 0);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(r.errors, 0);
    for (int i = 1; i <= RACE_JOBS; i++)
        CHECK_EQ_INT(r.claimed[i], 1);     /* each job ran exactly once */
    int64_t counts[BJ_NSTATUS];
    CHECK_EQ_INT(store_counts(s, NULL, counts), 0);
    CHECK_EQ_INT(counts[BJ_COMPLETED], RACE_JOBS);
    store_close(s);
    remove_dir();
}

/* ---- a damaged file ------------------------------------------------------- */

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc(len > 0 ? (size_t)len : 1);
    *n = data ? fread(data, 1, (size_t)len, f) : 0;
    fclose(f);
    return data;
}

/* A store of some pages, closed (so all of it is in the main file). */
static bool make_filled_store(size_t *size)
{
    store *s = open_fresh();
    if (!s)
        return false;
    static char big[2000];
    memset(big, 'r', sizeof big);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "in-%d", i);
        bjob j = { 0 };
        double next_due;
        add(s, name, 1, 100);
        if (store_claim(s, 100, &j, &next_due) == 1) {
            store_complete(s, j.id, big, sizeof big, 101);
            bjob_free(&j);
        }
    }
    store_close(s);
    struct stat st;
    if (stat(g_db, &st) != 0)
        return false;
    *size = (size_t)st.st_size;
    return true;
}

TEST(damaged_pages_refused)
{
    size_t size = 0;
    CHECK(make_filled_store(&size));
    CHECK(size >= 8 * 4096);        /* pages beyond the schema's */
    if (size < 8 * 4096) {
        remove_dir();
        return;
    }
    /* every page but the first (the schema and the header) overwritten:
     * the file opens, the schema reads, the tables do not */
    int fd = open(g_db, O_WRONLY);
    CHECK(fd >= 0);
    static char junk[4096];
    memset(junk, 0xA5, sizeof junk);
    for (off_t off = 4096; off + (off_t)sizeof junk <= (off_t)size; off += 4096)
        CHECK(pwrite(fd, junk, sizeof junk, off) == (ssize_t)sizeof junk);
    close(fd);
    size_t n0 = 0;
    char *before = slurp(g_db, &n0);

    char err[512] = "";
    store *s = store_open(g_db, err, sizeof err);
    CHECK(s == NULL);
    if (s)
        store_close(s);
    CHECK(strstr(err, "damaged") != NULL);
    /* the file's name, never its folder (the message reaches clients) */
    CHECK(strstr(err, "jobs.db") != NULL || strstr(err, strrchr(g_db, '/') + 1) != NULL);
    CHECK(strstr(err, g_dir) == NULL);
    if (!strstr(err, "damaged"))
        fprintf(stderr, "  err: %s\n", err);

    /* left as it was */
    size_t n1 = 0;
    char *after = slurp(g_db, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    /* and refused again */
    err[0] = '\0';
    s = store_open(g_db, err, sizeof err);
    CHECK(s == NULL);
    if (s)
        store_close(s);
    CHECK(strstr(err, "damaged") != NULL);
    remove_dir();
}

TEST(not_a_database_refused)
{
    fresh_dir();
    FILE *f = fopen(g_db, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    for (int i = 0; i < 1000; i++)
        fputs("this is not a database. ", f);
    fclose(f);
    size_t n0 = 0;
    char *before = slurp(g_db, &n0);
    char err[512] = "";
    store *s = store_open(g_db, err, sizeof err);
    CHECK(s == NULL);
    if (s)
        store_close(s);
    CHECK(err[0] != '\0');
    size_t n1 = 0;
    char *after = slurp(g_db, &n1);
    CHECK(before && after && n0 == n1 && memcmp(before, after, n0) == 0);
    free(before);
    free(after);
    remove_dir();
}

TEST(unopenable_path)
{
    fresh_dir();
    char path[700];
    snprintf(path, sizeof path, "%s/no/such/folder/jobs.db", g_dir);
    char err[512] = "";
    store *s = store_open(path, err, sizeof err);
    CHECK(s == NULL);
    if (s)
        store_close(s);
    CHECK(err[0] != '\0');
    remove_dir();
}

/* ---- names ---------------------------------------------------------------- */

TEST(status_names)
{
    static const char *const want[BJ_NSTATUS] = {
        "queued", "running", "completed", "failed", "dead", "cancelled"
    };
    for (int i = 0; i < BJ_NSTATUS; i++) {
        CHECK_STR(bjob_status_name((bjob_status)i), want[i]);
        CHECK_EQ_INT(bjob_status_of(bjob_status_name((bjob_status)i)), i);
    }
    CHECK_STR(bjob_status_name(BJ_NSTATUS), "unknown");
    CHECK_STR(bjob_status_name((bjob_status)-1), "unknown");
    CHECK_EQ_INT(bjob_status_of("unknown"), -1);
    CHECK_EQ_INT(bjob_status_of("Queued"), -1);
    CHECK_EQ_INT(bjob_status_of(""), -1);
    CHECK_EQ_INT(bjob_status_of(NULL), -1);
}

int main(void)
{
    RUN(open_add_get);
    RUN(ids_never_reused);
    RUN(add_refused_when_full);
    RUN(idempotency_key);
    RUN(owners);
    RUN(older_file_migrates);
    RUN(prune);
    RUN(cancel_requested_while_running);
    RUN(claim);
    RUN(position);
    RUN(fail_backoff_then_dead);
    RUN(fail_backoff_capped);
    RUN(fail_not_retryable);
    RUN(complete_and_result);
    RUN(complete_clears_earlier_error);
    RUN(release);
    RUN(cancelled_while_running);
    RUN(recover);
    RUN(claim_is_durable);
    RUN(cancel);
    RUN(retry);
    RUN(delete);
    RUN(list_and_counts);
    RUN(each_input);
    RUN(claims_from_threads);
    RUN(damaged_pages_refused);
    RUN(not_a_database_refused);
    RUN(unopenable_path);
    RUN(status_names);
    return check_summary();
}
