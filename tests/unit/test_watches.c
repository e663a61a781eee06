/*
 * test_watches.c: unit tests for src/index/watches.{h,c} with a real
 * inotify descriptor and real folders.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "index/watches.h"

#define MASK (IN_CREATE | IN_DELETE | IN_CLOSE_WRITE | IN_ONLYDIR)

static char g_dir[256];

static void sub(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

static void make_dirs(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/hearth-test-watches-XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        _exit(1);
    }
    static const char *const names[] = { "a", "a/x", "a/y", "b", "b/z" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[320];
        sub(p, sizeof p, names[i]);
        mkdir(p, 0700);
    }
}

static void remove_dirs(void)
{
    static const char *const names[] = { "a/x", "a/y", "a", "b/z", "b" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[320];
        sub(p, sizeof p, names[i]);
        rmdir(p);
    }
    rmdir(g_dir);
}

/* The wd of the next event on ino (within a second), -1 when none. */
static int next_event_wd(int ino, uint32_t *mask)
{
    char ev[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct pollfd p = { ino, POLLIN, 0 };
    if (poll(&p, 1, 1000) <= 0)
        return -1;
    ssize_t n = read(ino, ev, sizeof ev);
    if (n < (ssize_t)sizeof(struct inotify_event))
        return -1;
    const struct inotify_event *e = (const struct inotify_event *)(void *)ev;
    *mask = e->mask;
    return e->wd;
}

/* Folders watched for two watched folders; events tell which folder; a
 * walk's prune removes what it did not see; keep-only and drop remove a
 * folder's watches; the kernel's IN_IGNORED is followed. */
TEST(by_folder)
{
    make_dirs();
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    CHECK(ino >= 0);
    watches *w = watches_new(ino);
    CHECK(w != NULL);
    if (ino < 0 || !w)
        return;
    char a[320], ax[320], ay[320], b[320], bz[320];
    sub(a, sizeof a, "a");
    sub(ax, sizeof ax, "a/x");
    sub(ay, sizeof ay, "a/y");
    sub(b, sizeof b, "b");
    sub(bz, sizeof bz, "b/z");
    /* walk 1: both folders */
    CHECK_EQ_INT(watches_add(w, a, MASK, 1, 1), 0);
    CHECK_EQ_INT(watches_add(w, ax, MASK, 1, 1), 0);
    CHECK_EQ_INT(watches_add(w, ay, MASK, 1, 1), 0);
    CHECK_EQ_INT(watches_add(w, b, MASK, 2, 1), 0);
    CHECK_EQ_INT(watches_add(w, bz, MASK, 2, 1), 0);
    CHECK_EQ_INT(watches_count(w), 5);
    /* adding one again keeps one watch */
    CHECK_EQ_INT(watches_add(w, a, MASK, 1, 1), 0);
    CHECK_EQ_INT(watches_count(w), 5);
    /* an event in b/z belongs to folder 2 */
    char f[400];
    snprintf(f, sizeof f, "%s/new.md", bz);
    FILE *fp = fopen(f, "w");
    if (fp)
        fclose(fp);
    uint32_t mask = 0;
    int wd = next_event_wd(ino, &mask);
    CHECK(wd >= 0);
    CHECK_EQ_INT(watches_folder(w, wd), 2);
    unlink(f);
    while (next_event_wd(ino, &mask) >= 0)
        ;
    /* walk 2 of folder 1 does not enter a/y (ignored now): pruned */
    CHECK_EQ_INT(watches_add(w, a, MASK, 1, 2), 0);
    CHECK_EQ_INT(watches_add(w, ax, MASK, 1, 2), 0);
    CHECK_EQ_INT(watches_prune(w, 1, 2), 1);
    CHECK_EQ_INT(watches_count(w), 4);
    CHECK_EQ_INT(watches_prune(w, 2, 2), 2);    /* folder 2 walked without its watches */
    CHECK_EQ_INT(watches_count(w), 2);
    CHECK_EQ_INT(watches_add(w, b, MASK, 2, 3), 0);
    CHECK_EQ_INT(watches_add(w, bz, MASK, 2, 3), 0);
    while (next_event_wd(ino, &mask) >= 0)
        ;                       /* the IN_IGNORED of the watches pruned above */
    /* a deleted folder: the kernel says IN_IGNORED */
    rmdir(bz);
    int gone = -1;
    for (int i = 0; i < 10 && gone < 0; i++) {
        int e = next_event_wd(ino, &mask);
        if (e < 0)
            break;
        if (mask & IN_IGNORED)
            gone = e;
    }
    CHECK(gone >= 0);
    CHECK(watches_folder(w, gone) == 2);
    watches_gone(w, gone);
    CHECK_EQ_INT(watches_folder(w, gone), 0);
    CHECK_EQ_INT(watches_count(w), 3);
    /* folder 2 no longer watched */
    int64_t keep[] = { 1 };
    CHECK_EQ_INT(watches_keep_only(w, keep, 1), 1);
    CHECK_EQ_INT(watches_count(w), 2);
    CHECK_EQ_INT(watches_drop_folder(w, 1), 2);
    CHECK_EQ_INT(watches_count(w), 0);
    CHECK_EQ_INT(watches_folder(w, wd), 0);
    /* re-watched after removal: a new descriptor, known again */
    CHECK_EQ_INT(watches_add(w, a, MASK, 7, 9), 0);
    CHECK_EQ_INT(watches_count(w), 1);
    watches_free(w);
    close(ino);
    remove_dirs();
}

/* Many watches added and removed: the table stays sorted and small. */
TEST(many)
{
    make_dirs();
    int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    watches *w = watches_new(ino);
    CHECK(ino >= 0 && w != NULL);
    if (ino < 0 || !w)
        return;
    char a[320], b[320];
    sub(a, sizeof a, "a");
    sub(b, sizeof b, "b");
    for (int round = 0; round < 2000; round++) {
        CHECK_EQ_INT(watches_add(w, a, MASK, 1, (uint64_t)round + 1), 0);
        CHECK_EQ_INT(watches_add(w, b, MASK, 2, (uint64_t)round + 1), 0);
        CHECK_EQ_INT(watches_drop_folder(w, round % 2 ? 1 : 2), 1);
    }
    CHECK_EQ_INT(watches_count(w), 1);
    watches_free(w);
    close(ino);
    remove_dirs();
}

int main(void)
{
    RUN(by_folder);
    RUN(many);
    return check_summary();
}
