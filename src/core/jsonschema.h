/*
 * jsonschema.h: JSON Schema (the subset structured outputs use) to a GBNF
 * grammar for llama.cpp's grammar sampler.
 *
 * The grammar is sound, not complete: every text it accepts is JSON valid
 * against the schema, but not every valid document is reachable (an object
 * holds only its declared properties, in their declared order; oneOf is
 * taken as anyOf, which a generated value meets by construction only when the
 * branches do not overlap). A keyword the grammar cannot enforce (pattern,
 * minimum, multipleOf, an unknown format...) is an error naming it, never
 * silently dropped; annotations (title, description, default, examples...)
 * are ignored.
 *
 * Supported: type (one or a list), properties, required, additionalProperties
 * (without properties: a map of that schema), items, prefixItems, minItems,
 * maxItems (up to JSG_MAX_REPEAT), enum, const, anyOf, oneOf, allOf of one
 * schema, nullable, $ref to "#", "#/$defs/..." and "#/definitions/..."
 * (recursion allowed), string minLength/maxLength (up to JSG_MAX_REPEAT) and
 * format date, time, date-time and uuid, and the schemas true/{}.
 *
 * Usage: jsg_new; jsg_add for each schema (each gets a rule name), jsg_rule
 * for hand-written rules around them; jsg_finish writes every rule with the
 * shared JSON rules (ws, string, number, value...). The builder owns its
 * memory; the schemas are only read during jsg_add.
 */
#ifndef HEARTH_JSONSCHEMA_H
#define HEARTH_JSONSCHEMA_H

#include <stddef.h>

#include "core/buf.h"
#include "core/json.h"

#define JSG_MAX_REPEAT 1024        /* maxItems / maxLength the grammar spells out */
#define JSG_MAX_RULES  4096
#define JSG_MAX_BYTES  (512u << 10) /* grammar text */

typedef struct jsg jsg;

jsg *jsg_new(void);
void jsg_free(jsg *g);

/* Adds rules accepting the JSON texts valid against `schema` (its $refs
 * resolve in `doc`, normally the schema itself) followed by optional blanks;
 * writes the rule's name to name. Returns 0, or -1 with err naming the
 * schema path and the problem. */
int jsg_add(jsg *g, const json *schema, const json *doc, char *name, size_t nl, char *err,
            size_t el);

/* A rule written by hand: "name ::= body". Returns 0 or -1 (limits). */
int jsg_rule(jsg *g, const char *name, const char *body);

/* Appends a GBNF literal matching exactly s[0..n) to b. */
int jsg_literal(buf *b, const char *s, size_t n);

/* Writes the grammar: the rules added, then the shared ones. */
int jsg_finish(jsg *g, buf *out);

/* The whole grammar for one schema, its root rule named "root". */
int json_schema_grammar(const json *schema, buf *out, char *err, size_t el);

#endif
