/*
 * log.h: leveled, structured log lines on stderr.
 *
 * Format: "2026-11-25T07:49:26.123Z INFO  [rid] message key=value ...".
 * Each thread may set a request id (log_set_rid) that every line it writes
 * carries, so one request can be followed across the http, sched and worker
 * floors. Thread-safe: each line is written with a single write(2).
 */
#ifndef HEARTH_LOG_H
#define HEARTH_LOG_H

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } log_level;

void log_set_level(log_level lv);
/* Parse "debug|info|warn|error"; returns -1 on an unknown name. */
int  log_parse_level(const char *s, log_level *out);
/* A prefix written on every line of this process (e.g. "worker:chat"). */
void log_set_process(const char *name);
/* The request id for this thread's lines; NULL clears. Copied. */
void log_set_rid(const char *rid);
const char *log_rid(void);

void log_msg(log_level lv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
