/*
 * asr.h: the transcription engine: whisper.cpp on any common recording
 * (decoded by engine/audio.h). Runs only inside a worker, one request at a
 * time (slots 1: whisper's default state is reused between requests).
 *
 * The model file is checked by core/ggml_legacy.h before whisper.cpp sees it.
 * A request names an audio file on local disk (the daemon's upload temp
 * file); the recording is decoded to 16 kHz mono and transcribed in one
 * whisper_full call (greedy sampling; whisper.cpp walks 30 s windows itself).
 *
 * Output shape follows OpenAI's verbose_json transcription. Segments whose
 * text is empty or only a non-speech marker ("[BLANK_AUDIO]", "[ Silence ]",
 * "(music)", "♪"...) are dropped, and so are their words. Caps: the recording
 * (ASR_MAX_SECONDS, or the request's max_seconds when lower), the prompt
 * (ASR_MAX_PROMPT bytes) and the transcript text (ASR_MAX_TEXT bytes).
 * Messages never contain a path; whisper's own codes stay in here.
 */
#ifndef HEARTH_ASR_H
#define HEARTH_ASR_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/json.h"

#define ASR_MAX_SECONDS  3600            /* longest recording accepted: 1 h of 16 kHz float
                                           is 230 MB, counted in the memory budget */
#define ASR_MAX_PROMPT   4096            /* bytes of initial prompt */
#define ASR_MAX_TEXT     (8u << 20)      /* bytes of transcript text */

typedef struct asr asr;

/*
 * Validate and load the whisper.cpp model at model_path; threads <= 0 means
 * one per online CPU. The ggml CPU backend must already be loaded (the worker
 * does it). Returns the engine, or NULL with a path-free reason in err.
 * whisper.cpp's and ggml's log lines are routed to core/log.h from here on
 * (info at debug level). Borrows model_path.
 */
asr *asr_load(const char *model_path, int threads, bool accel, char *err, size_t errlen);
void asr_free(asr *a);                  /* NULL is fine */

/* Appends {"kind":"transcription","slots":1,"model_type":"tiny",
 * "multilingual":false,"sample_rate":16000,"max_seconds":3600,
 * "weights_bytes":N,"has_weights":true}. Returns 0, or -1 when out is full. */
int asr_describe(asr *a, buf *out);

/*
 * Transcribe one recording. opts (unknown members are ignored):
 *   "path":        absolute path of the audio file (required)
 *   "language":    "en", another whisper code, "auto" or null (default auto;
 *                  an English-only model accepts only en/auto)
 *   "prompt":      initial prompt text, or null
 *   "temperature": 0..1 (default 0: greedy, with whisper's fallback to higher
 *                  temperatures when a window decodes badly; > 0: that fixed
 *                  temperature, no fallback)
 *   "translate":   true to translate into English (multilingual models only)
 *   "words":       true for word timestamps (token-level timing)
 *   "max_seconds": lowers the length cap for this request
 * On success returns 0, sets *status to 200 and appends to out:
 *   {"task":"transcribe"|"translate","language":"en","duration":11.000,
 *    "text":"...",
 *    "segments":[{"id":0,"seek":0,"start":0.00,"end":2.50,"text":" ...",
 *      "tokens":[...],"temperature":0.0,"avg_logprob":-0.3,
 *      "compression_ratio":1.2,"no_speech_prob":0.01}],
 *    "words":[{"word":"And","start":0.00,"end":0.30}]}     (only with words)
 * "text" is the kept segments' text joined and trimmed; a segment's "text"
 * is whisper's, with its leading space. "seek" is the segment start in 10 ms
 * frames; "temperature" is the requested one (whisper.cpp does not report
 * which fallback temperature produced a segment); "avg_logprob" is the mean
 * log-probability of the segment's text tokens; "tokens" are those tokens'
 * ids; "compression_ratio" is len(text) / len(zlib(text)) as in OpenAI's.
 * On failure returns -1, leaves out unchanged, and sets *status (400 bad
 * options or undecodable/unsupported audio, 413 recording or transcript over
 * a cap, 500 engine failure) and a path-free message in err.
 * Not thread-safe for one asr (one request at a time).
 */
int asr_transcribe(asr *a, const json *opts, buf *out, int *status, char *err, size_t errlen);

/* A check that asr_transcribe() calls while whisper runs (between graph
 * nodes and decoding steps, so it must be cheap): when it returns true the
 * transcription stops and asr_transcribe() fails with *status 499 and
 * "cancelled". NULL removes it. The caller keeps ud alive. */
void asr_set_abort(asr *a, bool (*should_abort)(void *ud), void *ud);

/* Told how much of the recording is done (0..1) as whisper goes; NULL
 * removes it. Called on the transcribing thread. */
void asr_set_progress(asr *a, void (*progress)(void *ud, double fraction), void *ud);

#endif
