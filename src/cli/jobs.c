/*
 * jobs.c: `hearth jobs`; see jobs.h.
 */
#include "cli/jobs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/api.h"
#include "core/config.h"

#define WAIT_IDS_MAX 1024
#define POLL_MS 500

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hearth jobs [COMMAND] [ARGS]\n"
            "\n"
            "Batch jobs: transcriptions and OCR that hearthd keeps on disk until they are\n"
            "done, through restarts, kill -9 and power loss. A failing job is retried with\n"
            "growing delays; one that fails every attempt becomes 'dead' and keeps its file\n"
            "for a retry.\n"
            "\n"
            "Commands:\n"
            "  add FILE|DIR...\n"
            "                 queue files, and the recordings, images and PDFs in\n"
            "                 folders (type from the extension: audio is transcribed,\n"
            "                 images and PDFs are read by OCR). Options:\n"
            "                   --type transcription|translation|ocr\n"
            "                   --model NAME (default: the first model of the type)\n"
            "                   --format json|text|srt|vtt|verbose_json (transcription)\n"
            "                   --language CODE   --attempts N   --wait\n"
            "                   --save  wait, then write each result beside its file:\n"
            "                           FILE.txt (the text), or FILE.srt/.vtt/.json\n"
            "                           with --format; existing files are kept\n"
            "  ls             jobs, newest first (--status S, --limit N, --json); the\n"
            "                 default command\n"
            "  show ID        one job as JSON\n"
            "  wait [ID...]   wait for these jobs (default: every queued or running one)\n"
            "                 with a progress bar; exit 1 if any did not complete\n"
            "  result ID      print a completed job's result (as the direct endpoint\n"
            "                 would have answered)\n"
            "  cancel ID      stop a queued or running job\n"
            "  retry ID       run a failed, dead or cancelled job again\n"
            "  rm ID          delete a job that is not running, with its file and result\n"
            "\n"
            "IDs are job_N or N.\n");
}


/* "transcription" for recordings, "ocr" for images and PDFs, NULL else. */
static const char *type_of(const char *file)
{
    static const char *const audio[] = { "wav", "mp3", "flac", "ogg", "opus", "m4a", "aac",
                                         "webm", "mp4", "mkv", "wma", "aiff" };
    static const char *const image[] = { "png", "jpg", "jpeg", "tif", "tiff", "pdf", "bmp",
                                         "gif", "webp", "pnm", "pbm", "pgm", "ppm" };
    const char *dot = strrchr(file, '.');
    if (!dot || strchr(dot, '/'))
        return NULL;
    for (size_t i = 0; i < sizeof audio / sizeof *audio; i++)
        if (!strcasecmp(dot + 1, audio[i]))
            return "transcription";
    for (size_t i = 0; i < sizeof image / sizeof *image; i++)
        if (!strcasecmp(dot + 1, image[i]))
            return "ocr";
    return NULL;
}

/* "job_17" or "17" -> "job_17"; false when it is neither. */
static bool job_path(const char *id, const char *suffix, char *out, size_t n)
{
    const char *d = !strncmp(id, "job_", 4) ? id + 4 : id;
    if (!*d || strspn(d, "0123456789") != strlen(d) || strlen(d) > 18) {
        fprintf(stderr, "hearth jobs: '%s' is not a job id (job_N or N)\n", id);
        return false;
    }
    snprintf(out, n, "/v1/jobs/job_%s%s", d, suffix);
    return true;
}

static void print_row(const json *j)
{
    const json *e = json_get(j, "error");
    char when[32] = "";
    time_t t = (time_t)api_num(j, "created_at");
    struct tm tm;
    if (t && localtime_r(&t, &tm))
        strftime(when, sizeof when, "%m-%d %H:%M", &tm);
    printf("%-10s %-10s %-13s %-16.16s %d/%-4d %-11s %s", api_str(j, "id"), api_str(j, "status"),
           api_str(j, "type"), api_str(j, "model"), (int)api_num(j, "attempts"),
           (int)api_num(j, "max_attempts"), when, api_str(json_get(j, "file"), "name"));
    const json *owner = json_get(j, "owner");
    if (owner && owner->type == JSON_STRING)
        printf("  (key %s)", owner->str);       /* with API keys: whose job */
    if (e && e->type == JSON_OBJECT)
        printf("  [%s: %s]", api_str(e, "code"), api_str(e, "message"));
    putchar('\n');
}

static int jobs_wait(int argc, char **argv);

/* The result of job id, once completed, beside its source: FILE.txt for
 * OCR (the text), FILE.<format> for a transcription (the body as asked:
 * .txt, .srt, .vtt, .json). An existing file is left alone. False when
 * the result could not be fetched or written. */
static bool save_result(const char *id, const char *file, bool ocr, const char *fmt)
{
    const char *ext = ocr || !fmt || !strcmp(fmt, "text") ? "txt"
                      : !strcmp(fmt, "verbose_json") ? "json" : fmt;
    char dest[4200], path[96];
    snprintf(dest, sizeof dest, "%s.%s", file, ext);
    if (access(dest, F_OK) == 0) {
        fprintf(stderr, "hearth jobs add: %s exists; not overwritten\n", dest);
        return true;
    }
    if (!job_path(id, "/result", path, sizeof path))
        return false;
    buf out = buf_make(0);
    bool ok = api_get_raw(path, &out);
    const char *data = out.data ? out.data : "";
    size_t n = out.len;
    arena *a = NULL;
    if (ok && ocr) {    /* the text alone */
        a = arena_new(0);
        char e[64];
        const json *t = json_get(json_parse(a, data, n, e, sizeof e), "text");
        ok = t && t->type == JSON_STRING;
        data = ok ? t->str : "";
        n = ok ? t->len : 0;
    }
    /* written whole under a temporary name, then linked into place (which
     * never replaces a file that appeared meanwhile) */
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.part-XXXXXX", dest);
    int fd = ok ? mkstemp(tmp) : -1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f) {
        ok = fwrite(data, 1, n, f) == n && (n == 0 || data[n - 1] == '\n' || fputc('\n', f) != EOF);
        ok = (fclose(f) == 0) && ok;
        if (ok && link(tmp, dest) < 0) {
            if (errno == EEXIST)
                fprintf(stderr, "hearth jobs add: %s exists; not overwritten\n", dest);
            else
                ok = false;
        } else if (ok) {
            printf("%s\t%s\n", id, dest);
        }
        if (!ok)
            fprintf(stderr, "hearth jobs add: cannot write %s\n", dest);
        unlink(tmp);
    } else if (ok) {
        if (fd >= 0)
            close(fd);
        fprintf(stderr, "hearth jobs add: cannot create %s\n", dest);
        ok = false;
    }
    arena_free(a);
    buf_free(&out);
    return ok;
}

struct file_list {
    char *v[WAIT_IDS_MAX];
    int n;
    bool full;
};

static void list_add(struct file_list *l, const char *path)
{
    if (l->n == WAIT_IDS_MAX) {
        l->full = true;
        return;
    }
    char *d = strdup(path);
    if (d)
        l->v[l->n++] = d;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files under dir whose type (from the extension) fits `type` (NULL: any
 * known), in name order, depth first; hidden entries and symlinked folders
 * skipped. Returns how many were skipped for their type. */
static int add_dir(struct file_list *l, const char *dir, const char *type, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "hearth jobs add: cannot read %s\n", dir);
        return 0;
    }
    struct file_list here = { .n = 0 };
    for (struct dirent *e; (e = readdir(d)) && !here.full;) {
        if (e->d_name[0] == '.')
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        list_add(&here, p);
    }
    closedir(d);
    qsort(here.v, (size_t)here.n, sizeof *here.v, cmp_name);
    int skipped = 0;
    for (int i = 0; i < here.n; i++) {
        struct stat st;
        /* symlinked folders are not followed (no loops); symlinked files are */
        if (lstat(here.v[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (depth < 16)
                skipped += add_dir(l, here.v[i], type, depth + 1);
        } else if (stat(here.v[i], &st) == 0 && S_ISREG(st.st_mode)) {
            const char *t = type_of(here.v[i]);
            bool audio_wanted = type && strcmp(type, "ocr");
            if (t && (!type || !strcmp(t, "ocr") == !audio_wanted))
                list_add(l, here.v[i]);
            else
                skipped++;
        }
        free(here.v[i]);
    }
    if (here.full)
        l->full = true;
    return skipped;
}

static int cmd_add(int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 2) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *type = NULL, *model = NULL, *fmt = NULL, *lang = NULL, *attempts = NULL;
    bool wait = false, save = false;
    const char *args[WAIT_IDS_MAX];
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--type") && v) type = argv[++i];
        else if (!strcmp(argv[i], "--model") && v) model = argv[++i];
        else if (!strcmp(argv[i], "--format") && v) fmt = argv[++i];
        else if (!strcmp(argv[i], "--language") && v) lang = argv[++i];
        else if (!strcmp(argv[i], "--attempts") && v) attempts = argv[++i];
        else if (!strcmp(argv[i], "--wait")) wait = true;
        else if (!strcmp(argv[i], "--save")) wait = save = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hearth jobs add: unknown option or missing value: %s\n", argv[i]);
            return 2;
        } else if (nargs < WAIT_IDS_MAX) {
            args[nargs++] = argv[i];
        } else {
            fprintf(stderr, "hearth jobs add: at most %d files at once\n", WAIT_IDS_MAX);
            return 2;
        }
    }
    if (!nargs) {
        fprintf(stderr, "hearth jobs add: which files?\n");
        return 2;
    }
    /* folders become the files in them that a job can take */
    static struct file_list list;
    int skipped = 0;
    for (int i = 0; i < nargs; i++) {
        struct stat st;
        if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode))
            skipped += add_dir(&list, args[i], type, 0);
        else
            list_add(&list, args[i]);
    }
    int rc = 0;
    if (list.full) {
        fprintf(stderr, "hearth jobs add: more than %d files; add them in parts\n", WAIT_IDS_MAX);
        rc = 2;
        goto done;
    }
    if (skipped)
        fprintf(stderr, "hearth jobs add: skipped %d file(s) in folders that are not %s\n",
                skipped, type ? type : "recordings, images or PDFs");
    char **files = list.v;
    int nfiles = list.n;
    if (save && !fmt)
        fmt = "text";       /* FILE.txt holds the words, not JSON */
    static char ids[WAIT_IDS_MAX][32];
    static const char *id_file[WAIT_IDS_MAX];
    static bool id_ocr[WAIT_IDS_MAX];
    int nids = 0, failures = 0;
    char found[2][MODEL_NAME_MAX + 1] = { "", "" };   /* default models: transcription, ocr */
    for (int f = 0; f < nfiles; f++) {
        const char *t = type ? type : type_of(files[f]);
        if (!t) {
            fprintf(stderr, "hearth jobs add: %s: cannot tell its type from the name; use "
                    "--type\n", files[f]);
            failures++;
            continue;
        }
        if (access(files[f], R_OK) != 0) {
            fprintf(stderr, "hearth jobs add: cannot read %s\n", files[f]);
            failures++;
            continue;
        }
        bool ocr = !strcmp(t, "ocr");
        const char *m = model;
        if (!m && !ocr) {
            if (!found[0][0] && !api_first_model("transcription", found[0], sizeof found[0])) {
                fprintf(stderr, "hearth jobs add: the daemon serves no transcription model\n");
                rc = 1;
                goto done;
            }
            m = found[0];
        }
        const char *fields[16];
        int n = 0;
        api_field(fields, &n, "type", t);
        api_field(fields, &n, "model", m);
        api_field(fields, &n, "response_format", ocr ? NULL : fmt);
        api_field(fields, &n, "language", lang);
        api_field(fields, &n, "max_attempts", attempts);
        buf out = buf_make(0);
        arena *a = arena_new(0);
        char e[64];
        const json *j = NULL;
        if (api_upload("/v1/jobs", files[f], fields, &out))
            j = json_parse(a, out.data ? out.data : "", out.len, e, sizeof e);
        if (j && *api_str(j, "id")) {
            printf("%s\t%s\t%s\n", api_str(j, "id"), api_str(j, "status"), files[f]);
            id_file[nids] = files[f];
            id_ocr[nids] = ocr;
            snprintf(ids[nids++], sizeof ids[0], "%s", api_str(j, "id"));
        } else {
            fprintf(stderr, "hearth jobs add: %s was not queued\n", files[f]);
            failures++;
        }
        fflush(stdout);
        arena_free(a);
        buf_free(&out);
    }
    if (wait && nids) {
        char *idv[WAIT_IDS_MAX + 1];
        idv[0] = "wait";
        for (int i = 0; i < nids; i++)
            idv[i + 1] = ids[i];
        rc = jobs_wait(nids + 1, idv);
    }
    for (int i = 0; save && i < nids; i++) {
        arena *a = arena_new(0);
        char path[96];
        const json *j = job_path(ids[i], "", path, sizeof path) ? api(path, NULL, a) : NULL;
        if (j && !strcmp(api_str(j, "status"), "completed") &&
            !save_result(ids[i], id_file[i], id_ocr[i], fmt))
            failures++;
        arena_free(a);
    }
    if (failures)
        rc = 1;
done:
    for (int i = 0; i < list.n; i++)
        free(list.v[i]);
    return rc;
}

static int cmd_ls(int argc, char **argv)
{
    const char *status = NULL, *limit = "20";
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--status") && v) status = argv[++i];
        else if (!strcmp(argv[i], "--limit") && v) limit = argv[++i];
        else if (!strcmp(argv[i], "--json")) as_json = true;
        else {
            fprintf(stderr, "hearth jobs ls: unknown option or missing value: %s\n", argv[i]);
            return 2;
        }
    }
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs?limit=%.8s%s%.16s", limit, status ? "&status=" : "",
             status ? status : "");
    if (as_json) {
        buf out = buf_make(0);
        bool ok = api_get_raw(path, &out);
        if (ok)
            printf("%s\n", out.data ? out.data : "");
        buf_free(&out);
        return ok ? 0 : 1;
    }
    arena *a = arena_new(0);
    const json *l = api(path, NULL, a);
    if (!l) {
        arena_free(a);
        return 1;
    }
    const json *d = json_get(l, "data");
    printf("%-10s %-10s %-13s %-16s %-6s %-11s %s\n", "ID", "STATUS", "TYPE", "MODEL", "TRIES",
           "CREATED", "FILE");
    for (const json *j = d && d->type == JSON_ARRAY ? d->child : NULL; j; j = j->next)
        print_row(j);
    const json *c = json_get(l, "counts");
    printf("\n%d queued, %d running, %d completed, %d failed, %d dead, %d cancelled%s\n",
           (int)api_num(c, "queued"), (int)api_num(c, "running"), (int)api_num(c, "completed"),
           (int)api_num(c, "failed"), (int)api_num(c, "dead"), (int)api_num(c, "cancelled"),
           json_get(l, "has_more") && json_get(l, "has_more")->boolean ? " (more: --limit)" : "");
    arena_free(a);
    return 0;
}

/* The progress line on stderr: a bar of the work done (finished jobs, and
 * the share of the running ones' files), the counts and the time. */
static void progress(double work, int done, int total, int running, int queued, int bad,
                     double t0)
{
    int width = 30, fill = total ? (int)(work * width / total) : width;
    if (fill > width)
        fill = width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char tail[48] = "";
    if (bad)
        snprintf(tail, sizeof tail, ", %d not completed", bad);
    fprintf(stderr, "\r[%s] %3.0f%%  %d/%d done, %d running, %d queued%s  %.0f s ", bar,
            total ? 100.0 * work / total : 100.0, done, total, running, queued, tail,
            (double)ts.tv_sec - t0);
    fflush(stderr);
}

static int jobs_wait(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    bool tty = isatty(STDERR_FILENO);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t0 = (double)ts.tv_sec;
    int n = argc - 1;
    if (n > WAIT_IDS_MAX) {
        fprintf(stderr, "hearth jobs wait: at most %d ids\n", WAIT_IDS_MAX);
        return 2;
    }
    char paths[WAIT_IDS_MAX][96];
    for (int i = 0; i < n; i++)
        if (!job_path(argv[i + 1], "", paths[i], sizeof paths[i]))
            return 2;
    int last_done = -1, total0 = 0;
    for (;;) {
        int done = 0, running = 0, queued = 0, bad = 0, total = n;
        double partial = 0;     /* the running jobs' shares done */
        arena *a = arena_new(0);
        if (n == 0) {   /* every queued or running job: until none is left */
            const json *c = json_get(api("/v1/jobs?limit=1", NULL, a), "counts");
            if (!c) {
                arena_free(a);
                return 1;
            }
            running = (int)api_num(c, "running");
            queued = (int)api_num(c, "queued");
            if (total0 < running + queued)
                total0 = running + queued;
            total = total0;
            done = total0 - running - queued;
        }
        for (int i = 0; i < n; i++) {
            const json *j = api(paths[i], NULL, a);
            if (!j) {
                arena_free(a);
                return 1;
            }
            const char *st = api_str(j, "status");
            if (!strcmp(st, "running")) {
                running++;
                partial += api_num(j, "progress");
            }
            else if (!strcmp(st, "queued"))
                queued++;
            else {
                done++;
                if (strcmp(st, "completed"))
                    bad++;
            }
        }
        arena_free(a);
        if (tty)
            progress(done + partial, done, total, running, queued, bad, t0);
        else if (done != last_done)
            fprintf(stderr, "%d/%d done\n", done, total);
        last_done = done;
        if (running + queued == 0)
            break;
        usleep(POLL_MS * 1000);
    }
    if (tty)
        fputc('\n', stderr);
    /* the ones that did not complete, with why */
    int bad = 0;
    arena *a = arena_new(0);
    for (int i = 0; i < n; i++) {
        const json *j = api(paths[i], NULL, a);
        if (j && strcmp(api_str(j, "status"), "completed")) {
            print_row(j);
            bad++;
        }
    }
    arena_free(a);
    return bad ? 1 : 0;
}

static int one_job(int argc, char **argv, const char *method, const char *suffix)
{
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2) {
        fprintf(stderr, "hearth jobs %s: give one job id\n", argv[0]);
        return 2;
    }
    char path[96];
    if (!job_path(argv[1], suffix, path, sizeof path))
        return 2;
    if (!strcmp(argv[0], "result") || !strcmp(argv[0], "show")) {
        buf out = buf_make(0);
        bool ok = api_get_raw(path, &out);
        if (ok) {
            fwrite(out.data ? out.data : "", 1, out.len, stdout);
            if (out.len && out.data[out.len - 1] != '\n')
                putchar('\n');
        }
        buf_free(&out);
        return ok ? 0 : 1;
    }
    arena *a = arena_new(0);
    const json *j = api_call(method, path, method && !strcmp(method, "DELETE") ? NULL : "{}", a);
    if (j && !strcmp(argv[0], "rm"))
        printf("%s deleted\n", api_str(j, "id"));
    else if (j)
        print_row(j);
    arena_free(a);
    return j ? 0 : 1;
}

int jobs_main(int argc, char **argv)
{
    if (argc < 2)
        return cmd_ls(1, argv);
    const char *c = argv[1];
    int sub_argc = argc - 1;
    char **sub_argv = argv + 1;
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(c, "add"))
        return cmd_add(sub_argc, sub_argv);
    if (!strcmp(c, "ls") || !strcmp(c, "list")) {
        if (cli_has_flag(sub_argc, sub_argv, "--help")) {
            usage(stdout);
            return 0;
        }
        return cmd_ls(sub_argc, sub_argv);
    }
    if (c[0] == '-')
        return cmd_ls(argc, argv);
    if (!strcmp(c, "wait"))
        return jobs_wait(sub_argc, sub_argv);
    if (!strcmp(c, "show"))
        return one_job(sub_argc, sub_argv, NULL, "");
    if (!strcmp(c, "result"))
        return one_job(sub_argc, sub_argv, NULL, "/result");
    if (!strcmp(c, "cancel"))
        return one_job(sub_argc, sub_argv, "POST", "/cancel");
    if (!strcmp(c, "retry"))
        return one_job(sub_argc, sub_argv, "POST", "/retry");
    if (!strcmp(c, "rm"))
        return one_job(sub_argc, sub_argv, "DELETE", "");
    fprintf(stderr, "hearth jobs: unknown command '%s'\n\n", c);
    usage(stderr);
    return 2;
}
