/*
 * check.h: the tiny test harness every unit test uses.
 *
 *   TEST(name) { CHECK(expr); CHECK_EQ_INT(a, b); CHECK_STR(a, b); }
 *   int main(void) { RUN(name); ...; return check_summary(); }
 *
 * Each RUN forks, so one crashing test is reported as a failure and the rest
 * still run (libuv's runner does the same). The last line printed is
 * "N passed, N failed", which tests/run.sh adds up.
 */
#ifndef HEARTH_CHECK_H
#define HEARTH_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int check_passed, check_failed;
static int check_cur_failed;

#define TEST(name) static void name(void)

#define CHECK(expr)                                                                  \
    do {                                                                             \
        if (!(expr)) {                                                               \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #expr); \
            check_cur_failed = 1;                                                    \
        }                                                                            \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                           \
    do {                                                                             \
        long long _a = (long long)(a), _b = (long long)(b);                          \
        if (_a != _b) {                                                              \
            fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__,    \
                    __LINE__, #a, #b, _a, _b);                                       \
            check_cur_failed = 1;                                                    \
        }                                                                            \
    } while (0)

#define CHECK_STR(a, b)                                                              \
    do {                                                                             \
        const char *_a = (a), *_b = (b);                                             \
        if (!_a || !_b || strcmp(_a, _b) != 0) {                                     \
            fprintf(stderr, "  %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, \
                    __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");       \
            check_cur_failed = 1;                                                    \
        }                                                                            \
    } while (0)

static inline void check_run(const char *name, void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        check_cur_failed = 0;
        fn();
        fflush(stdout);
        fflush(stderr);
        _exit(check_cur_failed ? 1 : 0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        check_passed++;
        printf("ok   %s\n", name);
    } else {
        check_failed++;
        if (WIFSIGNALED(st))
            printf("FAIL %s (signal %d)\n", name, WTERMSIG(st));
        else
            printf("FAIL %s\n", name);
    }
}

#define RUN(name) check_run(#name, name)

static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
