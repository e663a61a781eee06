/*
 * api.h: the CLI's calls to hearthd's API, with every failure reported on
 * stderr in one line (daemon unreachable, an OpenAI error's message, an
 * answer that is not JSON), so commands only check for NULL/false.
 *
 * Ownership: parsed answers live in the caller's arena.
 */
#ifndef HEARTH_CLI_API_H
#define HEARTH_CLI_API_H

#include <stdbool.h>
#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/json.h"

/* A string member of an answer ("" when absent or not a string), and a
 * number (0 likewise). */
const char *api_str(const json *o, const char *key);
double api_num(const json *o, const char *key);

/* The daemon's base URL, without a trailing slash. */
void api_set_url(const char *url);
const char *api_url(void);

/* Print the message of an OpenAI error body, or the raw body. */
void api_print_error(long status, const buf *body);

/* GET path (or POST body): the parsed JSON object of a 2xx answer, else
 * NULL after reporting. api_call takes a method (NULL: GET or POST). */
const json *api(const char *path, const char *body, arena *a);
const json *api_call(const char *method, const char *path, const char *body, arena *a);
/* GET path's raw body into out (a 2xx answer), else false after reporting. */
bool api_get_raw(const char *path, buf *out);

/* Upload file to path as multipart with the NULL-terminated name/value
 * fields (progress on a terminal); false after reporting any failure, else
 * the 2xx answer in out. */
bool api_upload(const char *path, const char *file, const char *const *fields, buf *out);

/* Append the form field name=value to a NULL-terminated list (nothing
 * when value is NULL); fields must have room for two more and the NULL. */
void api_field(const char **fields, int *n, const char *name, const char *value);

/* The name of the first model of a kind ("transcription", "ocr", ...) the
 * daemon serves; false when there is none (or the daemon did not answer,
 * reported). */
bool api_first_model(const char *kind, char *out, size_t n);

/* Arguments every command reads the same way: a flag among argv[1..],
 * and --help / -h. */
bool cli_has_flag(int argc, char **argv, const char *flag);
bool cli_wants_help(int argc, char **argv);

#endif
