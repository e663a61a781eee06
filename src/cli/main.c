/*
 * main.c: `hearth`, the command-line client of hearthd.
 *
 *   hearth [--url URL] health | models | run MODEL [PROMPT] | synth ...
 *
 * Every command talks to a running hearthd over HTTP except `synth`, which
 * writes a synthetic GGUF model file locally.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli/api.h"
#include "cli/client.h"
#include "cli/index.h"
#include "cli/jobs.h"
#include "cli/synth.h"
#include "core/arena.h"
#include "core/config.h"
#include "core/json.h"


static void usage(FILE *f)
{
    fprintf(f,
            "Usage: hearth [--url URL] COMMAND [ARGS]\n"
            "\n"
            "The hearth command-line client. Talks to a running hearthd (default\n"
            "%s; set --url or $HEARTH_URL). When hearthd requires an API key,\n"
            "put it in $HEARTH_API_KEY.\n"
            "\n"
            "Commands:\n"
            "  health              is the daemon up? (exit 0 when it answers ok)\n"
            "  models              list the models the daemon serves\n"
            "  run MODEL [PROMPT]  chat with MODEL; streams the answer. Without PROMPT,\n"
            "                      an interactive chat that keeps the conversation\n"
            "  embed MODEL TEXT... embedding vectors, one JSON array per line\n"
            "  transcribe FILE     speech to text (--model M, --format json|text|srt|vtt|\n"
            "                      verbose_json, --language L, --translate)\n"
            "  ocr FILE            text from a scan, photo or PDF (--json, --language L)\n"
            "  jobs ...            batch jobs that survive restarts: add FILE..., ls, show,\n"
            "                      wait (with progress), result, cancel, retry, rm\n"
            "  index ...           the search index over your folders: add DIR, rm, ls,\n"
            "                      wait (with progress), docs, rescan\n"
            "  search QUERY        the best passages of your indexed files, with file:lines\n"
            "  ask QUESTION        an answer from a chat model over your files, citing them\n"
            "  ps                  models with state, slots, queue, memory, restarts\n"
            "  load MODEL          load a model now (waits until it is ready)\n"
            "  unload MODEL        unload a model (once it is idle)\n"
            "  synth --out FILE    write a synthetic GGUF model with random weights\n"
            "\n"
            "Run `hearth COMMAND --help` for a command's options.\n"
            "  --version           print the version\n",
            client_default_url());
}



static int cmd_health(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: hearth health\n\nAsks hearthd's /health; prints the answer. Exit status 0\n"
               "when the daemon is healthy, 1 otherwise.\n");
        return 0;
    }
    char url[1024], err[512];
    snprintf(url, sizeof url, "%s/health", api_url());
    buf out = buf_make(0);
    long st = 0;
    if (client_request(url, NULL, &out, &st, err, sizeof err) < 0) {
        fprintf(stderr, "hearth: %s\n", err);
        buf_free(&out);
        return 1;
    }
    printf("%s %s\n", st == 200 ? "healthy:" : "unhealthy:", out.data ? out.data : "");
    buf_free(&out);
    return st == 200 ? 0 : 1;
}

static int cmd_models(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: hearth models\n\nLists the models hearthd serves, with their kind and state.\n");
        return 0;
    }
    arena *a = arena_new(0);
    const json *data = json_get(api("/v1/models", NULL, a), "data");
    int rc = 1;
    if (data && data->type == JSON_ARRAY) {
        printf("%-32s %-14s %s\n", "MODEL", "KIND", "STATE");
        for (const json *m = data->child; m; m = m->next)
            printf("%-32s %-14s %s\n", api_str(m, "id"), api_str(m, "kind"), api_str(m, "state"));
        rc = 0;
    }
    arena_free(a);
    return rc;
}

static int cmd_ps(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: hearth ps\n\nShows every model hearthd knows: state (unloaded, loading, ready,\n"
               "stopping, failed), busy/total slots, queued requests, memory estimated\n"
               "and measured, uptime, restarts and the last error; and the memory budget.\n");
        return 0;
    }
    int rc = 1;
    arena *a = arena_new(0);
    const json *j = api("/v1/status", NULL, a);
    const json *mem = json_get(j, "memory"), *models = json_get(j, "models");
    if (!models || models->type != JSON_ARRAY)
        goto out;
    printf("%-24s %-9s %-7s %-6s %-10s %-10s %-9s %-8s %s\n", "MODEL", "STATE", "SLOTS", "QUEUE",
           "MEM EST", "MEM NOW", "UPTIME", "RESTARTS", "LAST ERROR");
    for (const json *m = models->child; m; m = m->next) {
        char slots[16];
        snprintf(slots, sizeof slots, "%d/%d", (int)api_num(m, "slots_busy"), (int)api_num(m, "slots_total"));
        printf("%-24s %-9s %-7s %-6d %-10.1f %-10.1f %-9.0f %-8d %s\n", api_str(m, "name"),
               api_str(m, "state"), slots, (int)api_num(m, "queued"),
               api_num(m, "memory_estimated_bytes") / 1048576.0,
               api_num(m, "memory_measured_bytes") / 1048576.0, api_num(m, "uptime_s"),
               (int)api_num(m, "restarts"), api_str(m, "last_error"));
    }
    printf("memory (MiB): budget %.0f, reserved %.1f, workers now %.1f, peak %.1f\n",
           api_num(mem, "budget_bytes") / 1048576.0, api_num(mem, "reserved_bytes") / 1048576.0,
           api_num(mem, "workers_rss_bytes") / 1048576.0,
           api_num(mem, "workers_rss_peak_bytes") / 1048576.0);
    rc = 0;
out:
    arena_free(a);
    return rc;
}

static int cmd_load_unload(int argc, char **argv, const char *action)
{
    if (cli_wants_help(argc, argv) || argc != 2) {
        printf("Usage: hearth %s MODEL\n\n%s\n", action,
               action[0] == 'l' ? "Loads MODEL now and waits until it is ready (or fails)."
                                : "Unloads MODEL once it is idle, freeing its memory.");
        return argc == 2 ? 0 : 2;
    }
    char path[300];
    snprintf(path, sizeof path, "/v1/models/%s/%s", argv[1], action);
    arena *a = arena_new(0);
    int rc = api(path, "{}", a) ? 0 : 1;
    if (rc == 0)
        printf("%s: %s\n", argv[1], action[0] == 'l' ? "ready" : "unloaded");
    arena_free(a);
    return rc;
}

static int cmd_embed(int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 3) {
        printf("Usage: hearth embed MODEL TEXT...\n\nEmbeds each TEXT with MODEL (an embedding model) "
               "and prints one JSON array\nof floats per line, in order. Use - as TEXT to read "
               "one text per line from stdin.\n");
        return argc < 3 && !cli_wants_help(argc, argv) ? 2 : 0;
    }
    buf body = buf_make(0);
    buf_puts(&body, "{\"model\":");
    jw_cstr(&body, argv[1]);
    buf_puts(&body, ",\"input\":[");
    int n = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-") == 0) {
            char *line = NULL;
            size_t cap = 0;
            ssize_t l;
            while ((l = getline(&line, &cap, stdin)) > 0) {
                while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
                    line[--l] = '\0';
                if (!l)
                    continue;
                if (n++)
                    buf_putc(&body, ',');
                jw_str(&body, line, (size_t)l);
            }
            free(line);
            continue;
        }
        if (n++)
            buf_putc(&body, ',');
        jw_cstr(&body, argv[i]);
    }
    buf_puts(&body, "]}");
    int rc = 1;
    arena *a = arena_new(0);
    const json *j = api("/v1/embeddings", body.data, a);
    if (!j)
        goto out;
    const json *data = json_get(j, "data");
    for (const json *d = data ? data->child : NULL; d; d = d->next) {
        buf line = buf_make(0);
        const json *e = json_get(d, "embedding");
        if (e)
            jw_value(&line, e);
        puts(line.data ? line.data : "[]");
        buf_free(&line);
    }
    rc = 0;
out:
    arena_free(a);
    buf_free(&body);
    return rc;
}

static int cmd_transcribe(int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 2) {
        printf("Usage: hearth transcribe FILE [--model NAME] [--format FORMAT] [--language CODE]\n"
               "                         [--translate] [--prompt TEXT]\n\n"
               "Transcribes a recording (wav, mp3, flac, ogg/opus, m4a/aac, webm) with a\n"
               "speech model served by hearthd and prints the result: plain text by default,\n"
               "or json, srt, vtt, verbose_json. --translate gives English. Without --model,\n"
               "the first transcription model the daemon serves is used. Shows progress on a\n"
               "terminal while it works.\n");
        return argc < 2 && !cli_wants_help(argc, argv) ? 2 : 0;
    }
    const char *file = NULL, *model = NULL, *fmt = "text", *lang = NULL, *prompt = NULL;
    bool translate = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--model") && v) model = argv[++i];
        else if (!strcmp(argv[i], "--format") && v) fmt = argv[++i];
        else if (!strcmp(argv[i], "--language") && v) lang = argv[++i];
        else if (!strcmp(argv[i], "--prompt") && v) prompt = argv[++i];
        else if (!strcmp(argv[i], "--translate")) translate = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hearth transcribe: unknown option or missing value: %s\n", argv[i]);
            return 2;
        } else file = argv[i];
    }
    if (!file) {
        fprintf(stderr, "hearth transcribe: which file?\n");
        return 2;
    }
    if (access(file, R_OK) != 0) {
        fprintf(stderr, "hearth transcribe: cannot read %s\n", file);
        return 1;
    }
    buf out = buf_make(0);
    int rc = 1;
    static char found[MODEL_NAME_MAX + 1];
    if (!model) {
        if (!api_first_model("transcription", found, sizeof found)) {
            fprintf(stderr, "hearth transcribe: the daemon serves no transcription model\n");
            goto out;
        }
        model = found;
    }
    const char *fields[12];
    int n = 0;
    api_field(fields, &n, "model", model);
    api_field(fields, &n, "response_format", fmt);
    api_field(fields, &n, "language", lang);
    api_field(fields, &n, "prompt", prompt);
    if (!api_upload(translate ? "/v1/audio/translations" : "/v1/audio/transcriptions", file,
                    fields, &out))
        goto out;
    fwrite(out.data ? out.data : "", 1, out.len, stdout);
    if (out.len && out.data[out.len - 1] != '\n')
        putchar('\n');
    rc = 0;
out:
    buf_free(&out);
    return rc;
}

static int cmd_ocr(int argc, char **argv)
{
    if (cli_wants_help(argc, argv) || argc < 2) {
        printf("Usage: hearth ocr FILE [--language eng] [--json] [--model ocr]\n\n"
               "Recognises the text of an image (png, jpeg, tiff) or PDF through hearthd and\n"
               "prints it; --json prints the full answer with pages, lines, words, boxes and\n"
               "confidences. Shows progress on a terminal while it works.\n");
        return argc < 2 && !cli_wants_help(argc, argv) ? 2 : 0;
    }
    const char *file = NULL, *lang = NULL, *model = NULL;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--language") && v) lang = argv[++i];
        else if (!strcmp(argv[i], "--model") && v) model = argv[++i];
        else if (!strcmp(argv[i], "--json")) as_json = true;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hearth ocr: unknown option or missing value: %s\n", argv[i]);
            return 2;
        } else file = argv[i];
    }
    if (!file || access(file, R_OK) != 0) {
        fprintf(stderr, "hearth ocr: cannot read %s\n", file ? file : "(no file)");
        return file ? 1 : 2;
    }
    const char *fields[6];
    int n = 0;
    api_field(fields, &n, "language", lang);
    api_field(fields, &n, "model", model);
    buf out = buf_make(0);
    int rc = 1;
    if (!api_upload("/v1/ocr", file, fields, &out))
        goto out;
    if (as_json) {
        fwrite(out.data, 1, out.len, stdout);
        putchar('\n');
    } else {
        arena *a = arena_new(0);
        char err[64];
        const json *j = json_parse(a, out.data, out.len, err, sizeof err);
        fputs(api_str(j, "text"), stdout);
        arena_free(a);
    }
    rc = 0;
out:
    buf_free(&out);
    return rc;
}

struct run_state {
    buf answer;
    bool error;
};

static int on_chunk(void *ud, const char *data, size_t len)
{
    struct run_state *rs = ud;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
        return 0;
    arena *a = arena_new(0);
    char e[64];
    const json *j = json_parse(a, data, len, e, sizeof e);
    const json *err = json_get(j, "error");
    if (err) {
        const json *m = json_get(err, "message");
        fprintf(stderr, "\nhearth: error: %s\n", m && m->type == JSON_STRING ? m->str : "unknown");
        rs->error = true;
    }
    const json *ch = json_get(j, "choices");
    if (ch && ch->type == JSON_ARRAY && ch->child) {
        const json *c = json_get(json_get(ch->child, "delta"), "content");
        if (c && c->type == JSON_STRING && c->len) {
            fwrite(c->str, 1, c->len, stdout);
            fflush(stdout);
            buf_append(&rs->answer, c->str, c->len);
        }
    }
    arena_free(a);
    return 0;
}

struct run_opts {
    const char *model;
    const char *system;
    int max_tokens;
    double temperature;
    long long seed;
    bool have_temp, have_seed;
};

/* Sends the conversation (a JSON array body in msgs) and streams the reply.
 * On success the assistant's answer is in *answer. */
static int chat_once(const struct run_opts *o, const buf *msgs, buf *answer)
{
    buf body = buf_make(0);
    buf_puts(&body, "{\"model\":");
    jw_cstr(&body, o->model);
    buf_printf(&body, ",\"stream\":true,\"messages\":[%s]", msgs->data ? msgs->data : "");
    if (o->max_tokens > 0)
        buf_printf(&body, ",\"max_tokens\":%d", o->max_tokens);
    if (o->have_temp)
        buf_printf(&body, ",\"temperature\":%g", o->temperature);
    if (o->have_seed)
        buf_printf(&body, ",\"seed\":%lld", o->seed);
    buf_putc(&body, '}');
    char url[1024], err[512];
    snprintf(url, sizeof url, "%s/v1/chat/completions", api_url());
    struct run_state rs = { .answer = buf_make(0) };
    buf eb = buf_make(0);
    long st = 0;
    int rc = client_stream(url, body.data, on_chunk, &rs, &st, &eb, err, sizeof err);
    int ret = 1;
    if (rc < 0)
        fprintf(stderr, "hearth: %s\n", err);
    else if (st < 200 || st >= 300)
        api_print_error(st, &eb);
    else if (!rs.error)
        ret = 0;
    if (rc == 0 && st == 200)
        putchar('\n');
    buf_reset(answer);
    buf_append(answer, rs.answer.data ? rs.answer.data : "", rs.answer.len);
    buf_free(&rs.answer);
    buf_free(&eb);
    buf_free(&body);
    return ret;
}

static void add_msg(buf *msgs, const char *role, const char *text, size_t n)
{
    if (msgs->len)
        buf_putc(msgs, ',');
    buf_printf(msgs, "{\"role\":\"%s\",\"content\":", role);
    jw_str(msgs, text, n);
    buf_putc(msgs, '}');
}

static int cmd_run(int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: hearth run MODEL [PROMPT] [options]\n"
               "\n"
               "Chat with MODEL through hearthd, streaming the answer. With PROMPT, one\n"
               "answer and exit. Without PROMPT, an interactive chat that keeps the\n"
               "conversation (type /reset to forget it, /exit or Ctrl-D to leave).\n"
               "\n"
               "  --system TEXT        a system message first\n"
               "  --max-tokens N       cap the answer length\n"
               "  --temperature T      sampling temperature (0 = greedy)\n"
               "  --seed N             sampling seed\n");
        return 0;
    }
    struct run_opts o = { 0 };
    const char *prompt = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--system") && v) {
            o.system = v;
            i++;
        } else if (!strcmp(a, "--max-tokens") && v) {
            o.max_tokens = atoi(v);
            i++;
        } else if (!strcmp(a, "--temperature") && v) {
            o.temperature = atof(v);
            o.have_temp = true;
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            o.seed = atoll(v);
            o.have_seed = true;
            i++;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "hearth run: unknown option or missing value: %s\n", a);
            return 2;
        } else if (!o.model) {
            o.model = a;
        } else if (!prompt) {
            prompt = a;
        } else {
            fprintf(stderr, "hearth run: too many arguments (quote the prompt)\n");
            return 2;
        }
    }
    if (!o.model) {
        fprintf(stderr, "hearth run: which model? (hearth models lists them)\n");
        return 2;
    }
    buf msgs = buf_make(0), answer = buf_make(0);
    int rc = 0;
    if (o.system)
        add_msg(&msgs, "system", o.system, strlen(o.system));
    if (prompt) {
        add_msg(&msgs, "user", prompt, strlen(prompt));
        rc = chat_once(&o, &msgs, &answer);
        goto out;
    }
    bool tty = isatty(STDIN_FILENO);
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        if (tty) {
            printf(">>> ");
            fflush(stdout);
        }
        ssize_t n = getline(&line, &cap, stdin);
        if (n < 0)
            break;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (!strcmp(line, "/exit") || !strcmp(line, "/bye"))
            break;
        if (!strcmp(line, "/reset")) {
            buf_reset(&msgs);
            if (o.system)
                add_msg(&msgs, "system", o.system, strlen(o.system));
            printf("(conversation cleared)\n");
            continue;
        }
        size_t before = msgs.len;
        add_msg(&msgs, "user", line, (size_t)n);
        if (chat_once(&o, &msgs, &answer) != 0) {
            msgs.len = before;          /* forget the failed turn */
            if (msgs.data)
                msgs.data[before] = '\0';
            rc = 1;
            continue;
        }
        rc = 0;
        add_msg(&msgs, "assistant", answer.data ? answer.data : "", answer.len);
    }
    free(line);
out:
    buf_free(&msgs);
    buf_free(&answer);
    return rc;
}

int main(int argc, char **argv)
{
    const char *g_url = client_default_url();
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--url") && i + 1 < argc) {
            g_url = argv[++i];
        } else if (!strncmp(argv[i], "--url=", 6)) {
            g_url = argv[i] + 6;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--version")) {
            printf("hearth %s\n", HEARTH_VERSION);
            return 0;
        } else {
            fprintf(stderr, "hearth: unknown option %s\n\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    /* strip a trailing slash so paths join cleanly */
    static char url[1024];
    snprintf(url, sizeof url, "%s", g_url);
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        url[--ul] = '\0';
    api_set_url(url);

    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (!strcmp(cmd, "synth"))
        return synth_main(sub_argc, sub_argv);
    if (!strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (!strcmp(cmd, "health"))
        rc = cmd_health(sub_argc, sub_argv);
    else if (!strcmp(cmd, "models"))
        rc = cmd_models(sub_argc, sub_argv);
    else if (!strcmp(cmd, "run"))
        rc = cmd_run(sub_argc, sub_argv);
    else if (!strcmp(cmd, "transcribe"))
        rc = cmd_transcribe(sub_argc, sub_argv);
    else if (!strcmp(cmd, "ocr"))
        rc = cmd_ocr(sub_argc, sub_argv);
    else if (!strcmp(cmd, "embed"))
        rc = cmd_embed(sub_argc, sub_argv);
    else if (!strcmp(cmd, "ps"))
        rc = cmd_ps(sub_argc, sub_argv);
    else if (!strcmp(cmd, "jobs"))
        rc = jobs_main(sub_argc, sub_argv);
    else if (!strcmp(cmd, "index"))
        rc = index_main(sub_argc, sub_argv);
    else if (!strcmp(cmd, "search"))
        rc = search_main(sub_argc, sub_argv);
    else if (!strcmp(cmd, "ask"))
        rc = ask_main(sub_argc, sub_argv);
    else if (!strcmp(cmd, "load") || !strcmp(cmd, "unload"))
        rc = cmd_load_unload(sub_argc, sub_argv, cmd);
    else {
        fprintf(stderr, "hearth: unknown command '%s'\n\n", cmd);
        usage(stderr);
        rc = 2;
    }
    curl_global_cleanup();
    return rc;
}
