/*
 * main.c: hearthd. Reads the configuration, wires the scheduler to the HTTP
 * server, and waits for signals. No request logic lives here.
 *
 * Signals are blocked in every thread and taken synchronously here with
 * sigwait: SIGTERM/SIGINT drain (new requests get 503, in-flight ones finish
 * within a bound, workers stop, exit 0); SIGHUP reloads the configuration
 * file and flags without dropping in-flight requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"
#include "http/http.h"
#include "index/indexer.h"
#include "queue/runner.h"
#include "sched/sched.h"
#include "worker/supervisor.h"

#define DRAIN_SECONDS 30

static int mkdir_p(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(tmp, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

static int load_config(config *c, int argc, char **argv)
{
    char err[512];
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            file = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            file = argv[i] + 9;
    }
    config_defaults(c);
    if (file) {
        if (config_load_file(c, file, err, sizeof err) < 0) {
            fprintf(stderr, "hearthd: %s\n", err);
            return -1;
        }
    } else {
        char *def = config_default_file();
        if (access(def, R_OK) == 0 && config_load_file(c, def, err, sizeof err) < 0) {
            fprintf(stderr, "hearthd: %s\n", err);
            free(def);
            return -1;
        }
        free(def);
    }
    int rc = config_parse_args(c, argc, argv, err, sizeof err);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "hearthd: %s\n", err);
        return rc;
    }
    if (config_scan_models_dir(c, err, sizeof err) < 0 || config_add_ocr(c, err, sizeof err) < 0) {
        fprintf(stderr, "hearthd: %s\n", err);
        return -1;
    }
    return 0;
}

/* Every configuration ever loaded, freed at exit: the scheduler and HTTP
 * threads may still read an older one while a reload happens. */
struct configs {
    config *v[64];
    int n;
};

static void reload(struct configs *cs, int argc, char **argv, http_server *h, sched *s,
                   runner *jobs, indexer *index)
{
    if (cs->n == (int)(sizeof cs->v / sizeof *cs->v)) {
        log_error("SIGHUP: too many reloads in this run; restart hearthd");
        return;
    }
    config *c = calloc(1, sizeof *c);
    if (!c || load_config(c, argc, argv) != 0) {
        log_error("SIGHUP: the new configuration has errors (see above); keeping the old one");
        if (c)
            config_free(c);
        free(c);
        return;
    }
    const config *old = cs->v[cs->n - 1];
    if (strcmp(old->listen_host, c->listen_host) || old->listen_port != c->listen_port ||
        strcmp(old->data_dir, c->data_dir))
        log_warn("SIGHUP: listen address and data dir changes apply at the next start");
    cs->v[cs->n++] = c;
    sched_reload(s, c);
    runner_set_config(jobs, c);
    indexer_set_config(index, c);
    http_set_config(h, c);
    log_info("SIGHUP: configuration reloaded (%zu model(s))", c->nmodels);
}

/* One hearthd per data dir: a second one would recover the first one's
 * running batch jobs and sweep its uploads. An flock on DATA-DIR/hearthd.lock
 * (held until exit, released by the kernel even after kill -9; close-on-exec,
 * so workers never hold it). Waits a few seconds for a previous instance
 * that is still exiting. Returns the fd, or -1 with a message on stderr. */
static int lock_data_dir(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/hearthd.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "hearthd: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; i++) {
        if (errno != EWOULDBLOCK || i == 50) {
            char pid[32] = "";
            ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
            char who[48] = "";
            if (*pid)
                snprintf(who, sizeof who, " (pid %s)", pid);
            fprintf(stderr, "hearthd: another hearthd%s uses the data dir %s; stop it or give "
                    "this one another --data-dir\n", who, dir);
            close(fd);
            return -1;
        }
        usleep(100000);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n)
        log_warn("cannot write the pid to %s", path);
    return fd;
}

int main(int argc, char **argv)
{
    config cfg;
    struct configs cfgs = { .v = { &cfg }, .n = 1 };
    int rc = load_config(&cfg, argc, argv);
    if (rc != 0) {
        config_free(&cfg);
        return rc > 0 ? 0 : 2;
    }
    log_level lv = LOG_INFO;
    log_parse_level(cfg.log_level, &lv);
    log_set_level(lv);

    if (mkdir_p(cfg.data_dir) < 0) {
        fprintf(stderr, "hearthd: cannot create data dir %s: %s\n", cfg.data_dir, strerror(errno));
        config_free(&cfg);
        return 2;
    }
    int lockfd = lock_data_dir(cfg.data_dir);
    if (lockfd < 0) {
        config_free(&cfg);
        return 1;
    }
    char exe[PATH_MAX];
    const char *wexe = getenv("HEARTH_WORKER");
    if (wexe && *wexe)
        snprintf(exe, sizeof exe, "%s", wexe);
    else if (worker_default_exe(exe, sizeof exe) < 0) {
        fprintf(stderr, "hearthd: cannot locate hearth-worker\n");
        config_free(&cfg);
        return 2;
    }
    if (access(exe, X_OK) < 0) {
        fprintf(stderr, "hearthd: worker binary %s is not executable\n", exe);
        config_free(&cfg);
        return 2;
    }

    /* Every thread created from here on inherits this mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512];
    sched *s = sched_new(&cfg, exe, err, sizeof err);
    if (!s) {
        fprintf(stderr, "hearthd: %s\n", err);
        config_free(&cfg);
        return 1;
    }
    char jerr[300] = "";
    runner *jobs = runner_start(&cfg, s, jerr, sizeof jerr);
    if (!jobs)
        log_error("batch jobs are not available: %s", jerr);
    char ierr[300] = "";
    indexer *index = indexer_start(&cfg, s, ierr, sizeof ierr);
    if (!index)
        log_error("the search index is not available: %s", ierr);
    http_services svc = { jobs, jerr, index, ierr };
    http_server *h = http_start(&cfg, s, &svc, err, sizeof err);
    if (!h) {
        fprintf(stderr, "hearthd: %s\n", err);
        indexer_free(index);
        runner_free(jobs);
        sched_shutdown(s, 0);
        sched_free(s);
        config_free(&cfg);
        return 1;
    }
    char addrfile[PATH_MAX];
    snprintf(addrfile, sizeof addrfile, "%s/hearthd.addr", cfg.data_dir);
    FILE *af = fopen(addrfile, "w");
    if (af) {
        fprintf(af, "http://%s:%d\n", strchr(cfg.listen_host, ':') ? "[::1]" : cfg.listen_host,
                http_port(h));
        fclose(af);
    }
    log_info("hearthd %s listening on http://%s:%d with %zu model(s), data dir %s",
             HEARTH_VERSION, cfg.listen_host, http_port(h), cfg.nmodels, cfg.data_dir);
    for (size_t i = 0; i < cfg.nmodels; i++)
        log_info("model %s = %s", cfg.models[i].name, cfg.models[i].path);

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(&cfgs, argc, argv, h, s, jobs, index);
            continue;
        }
        log_info("received %s: draining", strsignal(sig));
        break;
    }
    http_drain(h);
    for (int i = 0; i < DRAIN_SECONDS * 10 && http_active(h) > 0; i++)
        usleep(100000);
    if (http_active(h) > 0)
        log_warn("%d request(s) still running after %d s; stopping them", http_active(h),
                 DRAIN_SECONDS);
    runner_stop(jobs);          /* running batch jobs go back to the queue */
    indexer_stop(index);        /* a file being indexed is indexed again at the next start */
    sched_shutdown(s, 3000);
    http_stop(h);
    runner_free(jobs);
    indexer_free(index);
    sched_free(s);
    unlink(addrfile);
    for (int i = cfgs.n - 1; i >= 1; i--) {
        config_free(cfgs.v[i]);
        free(cfgs.v[i]);
    }
    config_free(&cfg);
    log_info("stopped");
    return 0;
}
