/*
 * supervisor.c: fork/exec of workers and their reader threads; see
 * supervisor.h. Every frame from a worker is validated by the wire reader
 * before it reaches the callback; a corrupt stream kills the worker.
 */
#include "worker/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"

struct worker {
    char **argv;
    char **envp;            /* the daemon's environment plus the malloc tunable */
    uint64_t mem_limit;
    worker_events ev;
    pthread_t thread;
    pthread_mutex_t send_mu;
    int fd;                 /* daemon end of the socketpair, -1 when closed */
    pid_t pid;
    pthread_mutex_t start_mu;
    pthread_cond_t start_cv;
    int started;            /* 1 forked, -1 failed */
    char start_err[128];
};

int worker_default_exe(char *out, size_t n)
{
    char self[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    if (l < 0)
        return -1;
    self[l] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    if ((size_t)snprintf(out, n, "%s/hearth-worker", self) >= n)
        return -1;
    return 0;
}

static void announce(worker *w, int state, const char *err)
{
    pthread_mutex_lock(&w->start_mu);
    w->started = state;
    if (err)
        snprintf(w->start_err, sizeof w->start_err, "%s", err);
    pthread_cond_signal(&w->start_cv);
    pthread_mutex_unlock(&w->start_mu);
}

static void describe_exit(int status, char *why, size_t n)
{
    if (WIFSIGNALED(status))
        snprintf(why, n, "killed by signal %d (%s)%s", WTERMSIG(status), strsignal(WTERMSIG(status)),
                 WTERMSIG(status) == SIGBUS ? ": a mapped model file was truncated or replaced "
                                              "while in use?" : "");
    else if (WIFEXITED(status))
        snprintf(why, n, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(why, n, "ended (status 0x%x)", status);
}

static void *reader_main(void *arg)
{
    worker *w = arg;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        announce(w, -1, strerror(errno));
        return NULL;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        announce(w, -1, strerror(errno));
        return NULL;
    }
    if (pid == 0) {
        /* child: only async-signal-safe calls until exec */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        if (sv[1] == 3) {
            fcntl(3, F_SETFD, 0);
        } else {
            dup2(sv[1], 3);     /* dup2 clears FD_CLOEXEC on the new fd */
        }
#if !defined(__SANITIZE_ADDRESS__)
        /* (an ASan build reserves terabytes of shadow address space) */
        if (w->mem_limit) {
            struct rlimit rl = { (rlim_t)w->mem_limit, (rlim_t)w->mem_limit };
            setrlimit(RLIMIT_DATA, &rl);
        }
#endif
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execve(w->argv[0], w->argv, w->envp);
        _exit(127);
    }
    close(sv[1]);
    w->fd = sv[0];
    w->pid = pid;
    announce(w, 1, NULL);

    wire_reader r;
    wire_reader_init(&r);
    const char *why = NULL;
    for (;;) {
        long n = wire_reader_fill(&r, w->fd);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            why = "socket error";
            break;
        }
        wire_hdr h;
        const char *payload;
        int k;
        while ((k = wire_reader_next(&r, &h, &payload)) == 1)
            w->ev.frame(w->ev.ud, w, &h, payload);
        if (k < 0) {
            why = "sent a corrupt frame";
            log_error("worker pid %d sent a corrupt frame; killing it", (int)pid);
            kill(pid, SIGKILL);
            break;
        }
    }
    wire_reader_free(&r);
    pthread_mutex_lock(&w->send_mu);
    close(w->fd);
    w->fd = -1;
    pthread_mutex_unlock(&w->send_mu);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    char desc[128];
    describe_exit(status, desc, sizeof desc);
    if (why) {
        char tmp[200];
        snprintf(tmp, sizeof tmp, "%s; %s", why, desc);
        w->ev.exited(w->ev.ud, w, status, tmp);
    } else {
        w->ev.exited(w->ev.ud, w, status, desc);
    }
    return NULL;
}

/* The worker's environment: the daemon's, with glibc's malloc told to back
 * its large blocks with transparent huge pages (glibc.malloc.hugetlb=1, added
 * to any GLIBC_TUNABLES the user set). A decode step streams all the
 * weights, and with 2 MiB pages it spends less on TLB misses (decode +9%
 * measured on this VM). A chat model's load itself runs with huge pages
 * paused and folds its memory afterwards (core/thp.h); the tunable covers
 * what the workers allocate otherwise. Under THP "never" it does nothing. */
static char **worker_env(void)
{
    extern char **environ;
    static const char key[] = "GLIBC_TUNABLES=", tun[] = "glibc.malloc.hugetlb=1";
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env)
        return NULL;
    size_t k = 0;
    const char *user = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], key, sizeof key - 1) == 0) {
            user = environ[i] + sizeof key - 1;
            continue;
        }
        env[k++] = environ[i];
    }
    char *t;
    if (user && strstr(user, "glibc.malloc.hugetlb"))
        t = strdup(user - (sizeof key - 1));
    else if (user && *user)
        t = malloc(strlen(key) + strlen(user) + 1 + sizeof tun);
    else
        t = strdup("GLIBC_TUNABLES=glibc.malloc.hugetlb=1");
    if (!t) {
        free(env);
        return NULL;
    }
    if (user && *user && !strstr(user, "glibc.malloc.hugetlb"))
        sprintf(t, "%s%s:%s", key, user, tun);
    env[k++] = t;
    env[k] = NULL;
    return env;
}

/* The tunable is the one entry worker_env allocated; the rest are environ's. */
static void worker_env_free(char **env)
{
    if (!env)
        return;
    size_t n = 0;
    while (env[n])
        n++;
    if (n)
        free(env[n - 1]);
    free(env);
}

worker *worker_start(char *const *argv, uint64_t mem_limit, const worker_events *ev, char *err,
                     size_t el)
{
    worker *w = calloc(1, sizeof *w);
    if (!w)
        goto oom;
    size_t n = 0;
    while (argv[n])
        n++;
    w->argv = calloc(n + 1, sizeof *w->argv);
    if (!w->argv)
        goto oom;
    for (size_t i = 0; i < n; i++)
        if (!(w->argv[i] = strdup(argv[i])))
            goto oom;
    if (!(w->envp = worker_env()))
        goto oom;
    w->ev = *ev;
    w->mem_limit = mem_limit;
    w->fd = -1;
    pthread_mutex_init(&w->send_mu, NULL);
    pthread_mutex_init(&w->start_mu, NULL);
    pthread_cond_init(&w->start_cv, NULL);
    if (pthread_create(&w->thread, NULL, reader_main, w) != 0) {
        snprintf(err, el, "cannot create a thread");
        worker_free(w);
        return NULL;
    }
    pthread_mutex_lock(&w->start_mu);
    while (w->started == 0)
        pthread_cond_wait(&w->start_cv, &w->start_mu);
    pthread_mutex_unlock(&w->start_mu);
    if (w->started < 0) {
        snprintf(err, el, "cannot start worker: %s", w->start_err);
        pthread_join(w->thread, NULL);
        w->thread = 0;
        worker_free(w);
        return NULL;
    }
    return w;
oom:
    snprintf(err, el, "out of memory");
    worker_free(w);
    return NULL;
}

int worker_send(worker *w, unsigned type, uint32_t id, const void *payload, size_t len)
{
    pthread_mutex_lock(&w->send_mu);
    int rc = w->fd < 0 ? -1 : wire_send(w->fd, type, id, payload, len);
    pthread_mutex_unlock(&w->send_mu);
    return rc;
}

pid_t worker_pid(const worker *w)
{
    return w->pid;
}

void worker_signal(worker *w, int sig)
{
    pthread_mutex_lock(&w->send_mu);
    if (w->fd >= 0 && w->pid > 0)
        kill(w->pid, sig);
    pthread_mutex_unlock(&w->send_mu);
}

void worker_free(worker *w)
{
    if (!w)
        return;
    if (w->thread)
        pthread_join(w->thread, NULL);
    if (w->argv) {
        for (size_t i = 0; w->argv[i]; i++)
            free(w->argv[i]);
        free(w->argv);
    }
    worker_env_free(w->envp);
    pthread_mutex_destroy(&w->send_mu);
    pthread_mutex_destroy(&w->start_mu);
    pthread_cond_destroy(&w->start_cv);
    free(w);
}
