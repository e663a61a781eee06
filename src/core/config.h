/*
 * config.h: hearthd's configuration: defaults, the config file, the flags.
 *
 * One setter (config_set) serves both the file ("key = value" lines) and the
 * command line ("--key value"), so every flag is also a config key with the
 * same name. Precedence: defaults < config file < flags.
 *
 * Ownership: the config owns every string in it; config_free releases them.
 */
#ifndef HEARTH_CONFIG_H
#define HEARTH_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_MODELS 64
#define MODEL_NAME_MAX    64
#define CONFIG_MAX_KEYS   64
#define API_KEY_NAME_MAX  32
#define API_KEY_MIN       8
#define API_KEY_MAX       256

/* What an API key may do: a key file's third column, "SCOPE[,SCOPE...]";
 * a key without one (and every --api-key) is an admin key. */
enum {
    SCOPE_INFER   = 1u << 0,  /* chat, completions, embeddings, audio, OCR */
    SCOPE_JOBS    = 1u << 1,  /* batch jobs: the key's own */
    SCOPE_SEARCH  = 1u << 2,  /* search and ask over the index, its folders and documents */
    SCOPE_MONITOR = 1u << 3,  /* status, metrics, the index's check */
    SCOPE_ADMIN_ONLY = 1u << 4, /* models loaded and unloaded, watched folders, rescans,
                                 * every key's jobs */
    SCOPE_ADMIN   = 0x1fu,    /* "admin": all of the above */
};
#define SCOPE_NAMES_MAX 48    /* "infer,jobs,search,monitor,admin" and a NUL */
#define SCOPE_FOLDERS_MAX 8   /* "search:FOLDER" scopes of one key */
#define SCOPE_FOLDER_MAX 1024 /* bytes of one such folder */

/* The mask a comma-separated list of scope names ("infer", "jobs",
 * "search", "monitor", "admin") gives; 0 with err set for an unknown or
 * empty name. With folders, "search:FOLDER" (absolute) is taken too: the
 * search scope within those folders, '\n'-joined into *folders (malloc'd;
 * NULL when none). */
unsigned config_scopes_parse(const char *list, char **folders, char *err, size_t el);
/* "N/s", "N/min" or "N/h" (N 1-1000000): *n and the period in seconds;
 * -1 with err set otherwise. */
int config_rate_parse(const char *s, double *n, double *period_s, char *err, size_t el);
/* The names of a mask, comma-separated ("admin" for all). */
void config_scopes_str(unsigned scopes, char *out, size_t n);

typedef struct model_entry {
    char name[MODEL_NAME_MAX + 1];
    char *path;
} model_entry;

typedef struct config {
    char *config_file;        /* the file that was loaded, if any */
    char *listen_host;
    int   listen_port;
    char *data_dir;
    char *models_dir;
    model_entry models[CONFIG_MAX_MODELS];
    size_t nmodels;
    int   threads;            /* inference threads per worker */
    int   parallel;           /* sequences (slots) per LLM worker */
    int   ctx_size;           /* context tokens per slot */
    int   batch_size;         /* tokens per decode step (prompt chunking) */
    int   stream_interval;    /* ms between sends of streamed text (0 = every token) */
    size_t max_body;          /* request body cap, bytes */
    size_t max_upload;        /* uploaded file cap (audio, images), bytes */
    int   queue_size;         /* waiting requests per model before 503 */
    int   max_connections;
    int   per_ip_connections;
    int   timeout;            /* idle connection timeout, seconds */
    char *log_level;
    char *blas;               /* BLAS backend for unquantized models: auto|off|path */
    char *kernels;            /* hearth's Q4_0 kernels in place of ggml's: auto|off */
    char *tessdata;           /* Tesseract data folder for the "ocr" model; NULL = none */
    uint64_t memory_budget;   /* bytes for all workers together; 0 = default */
    int   keep_alive;         /* seconds an idle model stays loaded; -1 forever */
    int   load_timeout;       /* seconds a request may wait for memory/loading */
    /* API keys: with any, every request but GET /health must carry one */
    char *api_keys[CONFIG_MAX_KEYS];
    char  api_key_names[CONFIG_MAX_KEYS][API_KEY_NAME_MAX + 1];  /* for the audit log */
    unsigned api_key_scopes[CONFIG_MAX_KEYS];                     /* SCOPE_* */
    char *api_key_folders[CONFIG_MAX_KEYS];   /* search within these ('\n'-joined); NULL: all */
    /* a key file's fourth column, "N/s", "N/min" or "N/h": at most N
     * requests in that time (a burst of N, refilled evenly); 0 = no limit */
    double api_key_rate_n[CONFIG_MAX_KEYS], api_key_rate_per_s[CONFIG_MAX_KEYS];
    size_t napi_keys;
    char *api_key_file;       /* the last key file loaded (the index never reads it) */
    int   audit_log;          /* 1: one line per request in <data-dir>/audit.log */
    /* batch jobs (queue/runner.h) */
    int   job_workers;        /* jobs run at once */
    int   job_attempts;       /* attempts before a job is dead */
    int   job_retry_delay;    /* seconds before the second attempt, doubling */
    int   max_jobs;           /* queued + running jobs before 429 */
    int   job_timeout;        /* seconds an attempt may run; 0 = no limit */
    int   job_retention;      /* days finished jobs are kept; 0 = forever */
    /* the retrieval index (index/indexer.h) */
    char *index_embed_model;  /* embedding model for the index's vectors; NULL = BM25 only */
    char *index_asr_model;    /* transcription model for voice notes; NULL = the first */
    int   index_scan_interval;/* seconds between walks of the watched folders */
    uint64_t index_max_file;  /* text files larger are not indexed, bytes */
    uint64_t index_vector_memory; /* the index's vectors kept in memory, bytes (0: none) */
    char *index_roots;        /* ':'-separated folders watched folders must be in;
                                 NULL = $HOME; "any" = anywhere */
} config;

void config_defaults(config *c);
void config_free(config *c);

/* Apply one key/value. Returns 0, or -1 with a message in err. */
int config_set(config *c, const char *key, const char *value, char *err, size_t errlen);

/* Load a "key = value" file ('#' starts a comment). Returns 0, or -1 with err. */
int config_load_file(config *c, const char *path, char *err, size_t errlen);

/* Parse argv (after the defaults and any --config file). Returns 0, 1 when
 * --help/--version was handled (caller exits 0), or -1 with err. */
int config_parse_args(config *c, int argc, char **argv, char *err, size_t errlen);

/* Add every *.gguf in models_dir as a model named after the file. */
int config_scan_models_dir(config *c, char *err, size_t errlen);

/* Add the built-in OCR model "ocr" (the tessdata folder), when there is one. */
int config_add_ocr(config *c, char *err, size_t errlen);

/* Model names: 1..64 of [A-Za-z0-9._:-], not starting with '.'. */
int config_valid_model_name(const char *name);

/* "64M", "1G", "4096" -> bytes. Returns -1 on a malformed size. */
int config_parse_size(const char *s, uint64_t *out);

/* $XDG_CONFIG_HOME/hearth/hearthd.conf or ~/.config/hearth/hearthd.conf */
char *config_default_file(void);

void config_print_help(const char *prog);

#define HEARTH_VERSION "0.1.0"
#define HEARTH_DEFAULT_PORT 8321

#endif
