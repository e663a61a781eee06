/*
 * toolcall.h: tool calls in a model's text, and their OpenAI shape.
 *
 * hearth asks models to call tools as blocks of JSON in tags, the format
 * most open models are trained on:
 *
 *   <tool_call>
 *   {"name": "get_weather", "arguments": {"city": "Oslo"}}
 *   </tool_call>
 *
 * (genreq.c describes the tools and builds the grammar that keeps each call
 * valid). A toolcall_stream splits the generated text as it arrives: text
 * before the first opening tag is content and may be sent at once (a tail
 * that could be the start of a tag is held back); everything from the tag on
 * is kept until the end, when the calls are parsed into OpenAI's
 * "tool_calls" array. Text that does not parse as a whole call (the last
 * one cut by max_tokens, say) is given back as content, so nothing is lost.
 */
#ifndef HEARTH_TOOLCALL_H
#define HEARTH_TOOLCALL_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define TOOLCALL_OPEN  "<tool_call>"
#define TOOLCALL_CLOSE "</tool_call>"
#define TOOLRESP_OPEN  "<tool_response>"
#define TOOLRESP_CLOSE "</tool_response>"
#define TOOLS_MAX      128                 /* tools in one request */
#define TOOLCALL_TEXT_MAX (4u << 20)       /* generated text kept for the calls */

typedef struct toolcall_stream {
    buf held;           /* content that may be the start of an opening tag */
    buf calls;          /* the text from the first opening tag on */
    bool open;          /* an opening tag was seen */
} toolcall_stream;

void tcs_init(toolcall_stream *s);
void tcs_free(toolcall_stream *s);

/* Feeds generated text; appends to content what may be sent now. */
void tcs_feed(toolcall_stream *s, const char *t, size_t n, buf *content);

/* At the end of the text. When it held whole tool calls, appends their
 * array to calls (ids "call_<id_prefix>_<i>"; with `indexed`, each has the
 * "index" streamed chunks carry) and returns how many (0: none, and calls
 * is left alone); the rest of the text goes to content. */
int tcs_end(toolcall_stream *s, const char *id_prefix, bool indexed, buf *content, buf *calls);

#endif
