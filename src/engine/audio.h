/*
 * audio.h: decode a recording (wav, mp3, flac, ogg/opus/vorbis, m4a/aac,
 * webm/mkv, aiff, caf, amr, wma...) into the 16 kHz mono float samples that
 * speech models eat. Runs inside a worker; uses FFmpeg's libraries in
 * process (libavformat/libavcodec/libswresample), never a shell command.
 *
 * The input is hostile (an upload), so:
 *   - only a regular file is opened (O_NONBLOCK: a FIFO cannot block us), and
 *     FFmpeg reads it through our own I/O callbacks: no URL or protocol
 *     interpretation of the path, and any attempt by a demuxer to open a
 *     further file or URL (playlists, references) is refused;
 *   - only audio-file demuxers are allowed (AUDIO_FORMATS), and the bytes
 *     FFmpeg may pull through the callbacks are capped at a multiple of the
 *     file size, so a demuxer cannot loop over the file for ever;
 *   - the output is capped at max_samples: a recording that is longer fails
 *     (early, from the container's duration when it states one, else when
 *     the decoded samples pass the cap);
 *   - damaged packets are skipped; a file that decodes to nothing fails.
 * Error messages are single, path-free lines.
 *
 * FFmpeg's own log goes to core/log.h at debug level (errors only): hostile
 * files make it chatty and its lines would otherwise land on stderr.
 *
 * Thread safety: audio_decode_file is reentrant (FFmpeg contexts are per call).
 */
#ifndef HEARTH_AUDIO_H
#define HEARTH_AUDIO_H

#include <stddef.h>

#define AUDIO_RATE         16000                      /* output samples per second */
#define AUDIO_DEFAULT_MAX  ((size_t)4 * 3600 * AUDIO_RATE)  /* 4 h */

/* Return codes of audio_decode_file (all failures are < 0). */
#define AUDIO_OK         0
#define AUDIO_EINPUT    -1  /* not audio, unsupported, no audio stream, corrupt, empty */
#define AUDIO_ETOOLONG  -2  /* longer than max_samples */
#define AUDIO_EINTERNAL -3  /* out of memory or an FFmpeg failure unrelated to the input */

/*
 * Decode the file at path to 16 kHz mono float samples in [-1, 1]-ish range
 * (not clipped). max_samples caps the output (0 = AUDIO_DEFAULT_MAX).
 *
 * On success returns AUDIO_OK, and *pcm (malloc'ed, the caller frees it),
 * *n (> 0 samples) and *duration (n / AUDIO_RATE seconds) are set.
 * On failure returns one of the negative codes above, *pcm is NULL, *n and
 * *duration are 0, and err holds a one-line reason without the path
 * (err may be NULL when errlen is 0). Borrows path.
 */
int audio_decode_file(const char *path, float **pcm, size_t *n, double *duration,
                      size_t max_samples, char *err, size_t errlen);

#endif
