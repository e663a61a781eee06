/*
 * audio.c: any common recording -> 16 kHz mono float, with FFmpeg; see
 * audio.h for the safety rules.
 *
 * One pass: demux packets of the best audio stream, decode them, and push
 * every frame through libswresample (to mono, float, 16 kHz) straight into
 * the growing output. The resampler is rebuilt, after draining, whenever a
 * frame's rate, format or channel layout differs from the last (chained Ogg
 * streams do that). Downmixing averages the channels (rematrix_maxval 1), as
 * whisper.cpp's own loader does.
 *
 * Invariants: out.n <= out.cap; out.cap never exceeds max_samples plus one
 * resampler burst; every FFmpeg object is released at the single `out:`.
 */
#include "engine/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/avstring.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#include "core/log.h"

/* Demuxers allowed to claim the input (FFmpeg names; "mov" covers mp4/m4a/3gp,
 * "matroska" webm/mka). No playlists, no images, no raw-guess formats. */
#define AUDIO_FORMATS "wav,w64,rf64,mp3,flac,ogg,mov,mp4,m4a,3gp,matroska,webm,aac," \
                      "aiff,caf,amr,asf,wv,ape,au,voc"
#define IO_BUF        (64 << 10)
#define MAX_CHANNELS  64              /* libswresample's SWR_CH_MAX */
#define MAX_RATE      768000
#define MAX_BAD_RUN   10000           /* damaged packets in a row before giving up */
#define READ_FACTOR   16              /* bytes FFmpeg may pull: 16 x file + ... */
#define READ_SLACK    (64ll << 20)    /* ... 64 MiB */

/* ---- FFmpeg's log into ours ------------------------------------------------- */

static void av_log_route(void *avcl, int level, const char *fmt, va_list ap)
{
    char line[512];
    int prefix = 1;

    if (level > av_log_get_level())
        return;
    av_log_format_line2(avcl, level, fmt, ap, line, sizeof line, &prefix);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (n)
        log_debug("ffmpeg: %s", line);
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void log_init(void)
{
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(av_log_route);
}

/* ---- input: our fd behind an AVIOContext ------------------------------------ */

typedef struct input {
    int     fd;
    int64_t size, pos;
    int64_t read, read_cap;     /* bytes handed to FFmpeg, and their cap */
} input;

static int io_read(void *opaque, uint8_t *b, int want)
{
    input *in = opaque;
    if (in->pos >= in->size)
        return AVERROR_EOF;
    if (in->read >= in->read_cap)
        return AVERROR(EIO);           /* a demuxer going round in circles */
    if ((int64_t)want > in->size - in->pos)
        want = (int)(in->size - in->pos);
    ssize_t k;
    do
        k = pread(in->fd, b, (size_t)want, (off_t)in->pos);
    while (k < 0 && errno == EINTR);
    if (k < 0)
        return AVERROR(errno);
    if (k == 0)
        return AVERROR_EOF;
    in->pos += k;
    in->read += k;
    return (int)k;
}

static int64_t io_seek(void *opaque, int64_t off, int whence)
{
    input *in = opaque;
    int64_t to;

    switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE: return in->size;
    case SEEK_SET: to = off; break;
    case SEEK_CUR: to = in->pos + off; break;
    case SEEK_END: to = in->size + off; break;
    default: return AVERROR(EINVAL);
    }
    if (to < 0)
        return AVERROR(EINVAL);
    in->pos = to;
    return to;
}

/* Demuxers that reference other files (hls, concat, dash, mov drefs) would
 * open them through here: nothing but our one input is ever opened. */
static int io_open_refuse(AVFormatContext *s, AVIOContext **pb, const char *url, int flags,
                          AVDictionary **opts)
{
    (void)s, (void)pb, (void)url, (void)flags, (void)opts;
    return AVERROR(EPERM);
}

/* ---- output ------------------------------------------------------------------ */

typedef struct pcm_out {
    float *s;
    size_t n, cap, max;
} pcm_out;

/* Room for `more` samples past n; may exceed max by one burst (checked after). */
static int out_reserve(pcm_out *o, size_t more)
{
    if (o->n + more <= o->cap)
        return 0;
    size_t c = o->cap ? o->cap : (size_t)AUDIO_RATE * 30;
    while (c < o->n + more)
        c *= 2;
    if (c > o->max + more)
        c = o->max + more;
    if (c < o->n + more)
        c = o->n + more;
    float *p = realloc(o->s, c * sizeof *p);
    if (!p)
        return -1;
    o->s = p;
    o->cap = c;
    return 0;
}

/* ---- decoding ---------------------------------------------------------------- */

typedef struct dec {
    AVCodecContext *cc;
    SwrContext *swr;
    AVChannelLayout swr_in;     /* what swr was built for */
    int swr_fmt, swr_rate;
    pcm_out out;
    int bad_run;                /* packets or frames refused in a row */
    char *err;
    size_t errlen;
} dec;

__attribute__((format(printf, 3, 4)))
static int fail(dec *d, int code, const char *fmt, ...)
{
    if (d->err && d->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int too_long(dec *d)
{
    return fail(d, AUDIO_ETOOLONG, "the recording is longer than the %.0f s limit",
                (double)d->out.max / AUDIO_RATE);
}

/* Convert (or, with f == NULL, drain) into the output. */
static int resample(dec *d, const AVFrame *f)
{
    for (;;) {
        int in_n = f ? f->nb_samples : 0;
        int bound = swr_get_out_samples(d->swr, in_n);
        if (bound < 0)
            return fail(d, AUDIO_EINTERNAL, "the resampler failed");
        if (bound == 0 && !f)
            return 0;
        if (out_reserve(&d->out, (size_t)bound + 16))
            return fail(d, AUDIO_EINTERNAL, "out of memory for the decoded audio");
        uint8_t *dst = (uint8_t *)(d->out.s + d->out.n);
        int got = swr_convert(d->swr, &dst, (int)(d->out.cap - d->out.n),
                              f ? (const uint8_t **)f->extended_data : NULL, in_n);
        if (got < 0)
            return fail(d, AUDIO_EINPUT, "the audio could not be resampled");
        d->out.n += (size_t)got;
        if (d->out.n > d->out.max)
            return too_long(d);
        if (f || got == 0)
            return 0;
    }
}

/* (Re)build the resampler for this frame's format when it changed. */
static int swr_for(dec *d, const AVFrame *f)
{
    AVChannelLayout in = { 0 };
    int rc = 0;

    if (f->ch_layout.nb_channels <= 0)
        return fail(d, AUDIO_EINPUT, "the audio stream has no channels");
    if (f->ch_layout.nb_channels > MAX_CHANNELS)
        return fail(d, AUDIO_EINPUT, "the audio stream has %d channels (at most %d)",
                    f->ch_layout.nb_channels, MAX_CHANNELS);
    if (f->sample_rate <= 0 || f->sample_rate > MAX_RATE)
        return fail(d, AUDIO_EINPUT, "the audio stream has an invalid sample rate");
    if (f->format < 0 || !av_get_sample_fmt_name(f->format))
        return fail(d, AUDIO_EINPUT, "the audio stream has an unknown sample format");
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in, f->ch_layout.nb_channels);
    else if (av_channel_layout_copy(&in, &f->ch_layout) < 0)
        return fail(d, AUDIO_EINTERNAL, "out of memory");

    if (d->swr && d->swr_fmt == f->format && d->swr_rate == f->sample_rate &&
        av_channel_layout_compare(&d->swr_in, &in) == 0)
        goto out;
    if (d->swr && (rc = resample(d, NULL)) < 0)     /* drain the old one */
        goto out;
    swr_free(&d->swr);
    av_channel_layout_uninit(&d->swr_in);
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    if (swr_alloc_set_opts2(&d->swr, &mono, AV_SAMPLE_FMT_FLT, AUDIO_RATE, &in, f->format,
                            f->sample_rate, 0, NULL) < 0 ||
        av_opt_set_double(d->swr, "rematrix_maxval", 1.0, 0) < 0 || swr_init(d->swr) < 0) {
        rc = fail(d, AUDIO_EINPUT, "the audio format cannot be converted");
        goto out;
    }
    d->swr_fmt = f->format;
    d->swr_rate = f->sample_rate;
    if (av_channel_layout_copy(&d->swr_in, &in) < 0)
        rc = fail(d, AUDIO_EINTERNAL, "out of memory");
out:
    av_channel_layout_uninit(&in);
    return rc;
}

/* Receive every frame the decoder has ready. */
static int drain_frames(dec *d, AVFrame *fr)
{
    for (;;) {
        int r = avcodec_receive_frame(d->cc, fr);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF)
            return 0;
        if (r < 0) {
            /* a damaged frame: skip it, unless nothing but damage follows */
            if (++d->bad_run > MAX_BAD_RUN)
                return fail(d, AUDIO_EINPUT, "the audio data is corrupt (nothing decodable "
                                             "in %d packets)", MAX_BAD_RUN);
            char e[AV_ERROR_MAX_STRING_SIZE];
            log_debug("audio: frame dropped: %s", av_make_error_string(e, sizeof e, r));
            return 0;
        }
        d->bad_run = 0;
        int rc = fr->nb_samples > 0 ? swr_for(d, fr) : 0;
        if (rc == 0 && fr->nb_samples > 0)
            rc = resample(d, fr);
        av_frame_unref(fr);
        if (rc)
            return rc;
    }
}

static void input_name(const char *path, char *name, size_t sz)
{
    /* only the extension reaches FFmpeg (it helps probing raw streams) */
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    size_t n = dot && (!slash || dot > slash) ? strlen(dot + 1) : 0;
    bool ok = n > 0 && n <= 5;
    for (size_t i = 0; ok && i < n; i++)
        ok = (dot[1 + i] >= 'a' && dot[1 + i] <= 'z') || (dot[1 + i] >= 'A' && dot[1 + i] <= 'Z') ||
             (dot[1 + i] >= '0' && dot[1 + i] <= '9');
    snprintf(name, sz, ok ? "input.%s" : "input", ok ? dot + 1 : "");
}

/* Why av_find_best_stream found nothing: it skips audio streams that lack
 * channels or a rate, and those deserve their own message. */
static const char *no_stream_reason(const AVFormatContext *fmt, int err)
{
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVCodecParameters *p = fmt->streams[i]->codecpar;
        if (p->codec_type != AVMEDIA_TYPE_AUDIO)
            continue;
        if (p->ch_layout.nb_channels <= 0)
            return "the audio stream has no channels";
        if (p->sample_rate <= 0)
            return "the audio stream has an invalid sample rate";
    }
    return err == AVERROR_DECODER_NOT_FOUND ? "no decoder for the file's audio codec"
                                            : "the file has no audio stream";
}

static int open_regular(dec *d, const char *path, struct stat *st)
{
    if (!path || !*path)
        return fail(d, AUDIO_EINPUT, "no file given");
    if (stat(path, st) != 0)
        return fail(d, AUDIO_EINPUT, "the file cannot be read: %s", strerror(errno));
    if (!S_ISREG(st->st_mode))
        return fail(d, AUDIO_EINPUT, "not a regular file");
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(d, AUDIO_EINPUT, "the file cannot be opened: %s", strerror(errno));
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return fail(d, AUDIO_EINPUT, "not a regular file");
    }
    return fd;
}

int audio_decode_file(const char *path, float **pcm, size_t *n, double *duration,
                      size_t max_samples, char *err, size_t errlen)
{
    dec d = { .err = err, .errlen = errlen };
    input in = { .fd = -1 };
    AVFormatContext *fmt = NULL;
    AVIOContext *pb = NULL;
    AVDictionary *opts = NULL;
    AVPacket *pkt = NULL;
    AVFrame *fr = NULL;
    struct stat st;
    char name[16];
    int rc = AUDIO_EINTERNAL, r;

    *pcm = NULL;
    *n = 0;
    *duration = 0;
    if (err && errlen)
        err[0] = '\0';
    pthread_once(&log_once, log_init);
    d.out.max = max_samples ? max_samples : AUDIO_DEFAULT_MAX;

    if ((in.fd = open_regular(&d, path, &st)) < 0) {
        rc = in.fd;
        in.fd = -1;
        goto out;
    }
    if (st.st_size == 0) {
        rc = fail(&d, AUDIO_EINPUT, "the file is empty");
        goto out;
    }
    in.size = st.st_size;
    in.read_cap = in.size > (INT64_MAX - READ_SLACK) / READ_FACTOR
                      ? INT64_MAX : in.size * READ_FACTOR + READ_SLACK;

    uint8_t *iobuf = av_malloc(IO_BUF);
    fmt = avformat_alloc_context();
    pkt = av_packet_alloc();
    fr = av_frame_alloc();
    if (iobuf)
        pb = avio_alloc_context(iobuf, IO_BUF, 0, &in, io_read, NULL, io_seek);
    if (!pb)
        av_free(iobuf);
    if (!fmt || !pb || !pkt || !fr) {
        rc = fail(&d, AUDIO_EINTERNAL, "out of memory");
        goto out;
    }
    fmt->pb = pb;
    fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    fmt->io_open = io_open_refuse;
    /* probe first, so "what is it" and "is it intact" get different answers */
    input_name(path, name, sizeof name);
    const AVInputFormat *ifmt = NULL;
    if (av_probe_input_buffer2(pb, &ifmt, name, NULL, 0, 0) < 0 || !ifmt) {
        rc = fail(&d, AUDIO_EINPUT, "not a recognised audio file (unknown format)");
        goto out;
    }
    if (av_match_list(ifmt->name, AUDIO_FORMATS, ',') <= 0) {
        rc = fail(&d, AUDIO_EINPUT, "unsupported file type (%.*s): not an audio recording",
                  (int)strcspn(ifmt->name, ","), ifmt->name);
        goto out;
    }
    av_dict_set(&opts, "format_whitelist", AUDIO_FORMATS, 0);
    r = avformat_open_input(&fmt, name, ifmt, &opts);     /* frees fmt on failure */
    if (r < 0) {
        rc = fail(&d, AUDIO_EINPUT, "the %.*s file is damaged or truncated (its header cannot "
                                    "be read)", (int)strcspn(ifmt->name, ","), ifmt->name);
        goto out;
    }
    if (avformat_find_stream_info(fmt, NULL) < 0)
        log_debug("audio: stream info incomplete; decoding anyway");
    int si = av_find_best_stream(fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (si < 0) {
        rc = fail(&d, AUDIO_EINPUT, "%s", no_stream_reason(fmt, si));
        goto out;
    }
    AVStream *as = fmt->streams[si];
    if (as->codecpar->ch_layout.nb_channels <= 0) {
        rc = fail(&d, AUDIO_EINPUT, "the audio stream has no channels");
        goto out;
    }
    /* the container's stated length: refuse early what is clearly too long
     * (10% + 5 s of slack: bitrate-based estimates are rough) */
    if (fmt->duration > 0 && fmt->duration != AV_NOPTS_VALUE &&
        (double)fmt->duration / AV_TIME_BASE > (double)d.out.max / AUDIO_RATE * 1.1 + 5) {
        rc = too_long(&d);
        goto out;
    }
    const AVCodec *codec = avcodec_find_decoder(as->codecpar->codec_id);
    if (!codec) {
        rc = fail(&d, AUDIO_EINPUT, "no decoder for the file's audio codec");
        goto out;
    }
    d.cc = avcodec_alloc_context3(codec);
    if (!d.cc) {
        rc = fail(&d, AUDIO_EINTERNAL, "out of memory");
        goto out;
    }
    if (avcodec_parameters_to_context(d.cc, as->codecpar) < 0) {
        rc = fail(&d, AUDIO_EINPUT, "the audio stream parameters are invalid");
        goto out;
    }
    d.cc->thread_count = 1;
    d.cc->pkt_timebase = as->time_base;
    if (avcodec_open2(d.cc, codec, NULL) < 0) {
        rc = fail(&d, AUDIO_EINPUT, "the audio decoder refused the stream");
        goto out;
    }

    while ((r = av_read_frame(fmt, pkt)) >= 0) {
        if (pkt->stream_index == si) {
            /* a damaged packet is skipped (EAGAIN cannot happen: we drain) */
            if (avcodec_send_packet(d.cc, pkt) < 0 && ++d.bad_run > MAX_BAD_RUN) {
                av_packet_unref(pkt);
                rc = fail(&d, AUDIO_EINPUT, "the audio data is corrupt (nothing decodable in "
                                            "%d packets)", MAX_BAD_RUN);
                goto out;
            }
            if ((rc = drain_frames(&d, fr)) != 0) {
                av_packet_unref(pkt);
                goto out;
            }
        }
        av_packet_unref(pkt);
    }
    /* end of file, or a read error (truncated data): flush what we have */
    avcodec_send_packet(d.cc, NULL);
    if ((rc = drain_frames(&d, fr)) != 0)
        goto out;
    if (d.swr && (rc = resample(&d, NULL)) != 0)
        goto out;
    if (d.out.n == 0) {
        rc = fail(&d, AUDIO_EINPUT, "no audio could be decoded (corrupt, truncated or silent "
                                    "container)");
        goto out;
    }
    /* A file cut short decodes only its head: when the container states its
     * length (an MP3's Xing/Info frame count, a WAV's data size) and far less
     * came out, the upload is truncated, and a transcript of a fragment would
     * be a silent loss. */
    if (fmt->duration > 0 && fmt->duration != AV_NOPTS_VALUE) {
        double declared = (double)fmt->duration / AV_TIME_BASE;
        double got = (double)d.out.n / AUDIO_RATE;
        if (got + 1.0 < declared * 0.9) {
            rc = fail(&d, AUDIO_EINPUT, "the recording is truncated: it declares %.1f s but "
                                        "only %.1f s could be decoded", declared, got);
            goto out;
        }
    }
    *pcm = d.out.s;
    *n = d.out.n;
    *duration = (double)d.out.n / AUDIO_RATE;
    d.out.s = NULL;
    rc = AUDIO_OK;
out:
    if (rc != AUDIO_OK && err && errlen && !err[0])
        snprintf(err, errlen, "the audio could not be decoded");
    free(d.out.s);
    swr_free(&d.swr);
    av_channel_layout_uninit(&d.swr_in);
    avcodec_free_context(&d.cc);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avformat_close_input(&fmt);
    avformat_free_context(fmt);
    if (pb) {
        av_freep(&pb->buffer);
        avio_context_free(&pb);
    }
    av_dict_free(&opts);
    if (in.fd >= 0)
        close(in.fd);
    return rc;
}
