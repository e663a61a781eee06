/*
 * test_wire.c: unit tests for src/worker/wire.{h,c} over a socketpair.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "check.h"
#include "worker/wire.h"

static int pair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
}

/* Write all of p (blocking). */
static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static void make_hdr(unsigned char out[WIRE_HDR_SIZE], uint32_t magic, uint16_t version,
                     uint16_t type, uint32_t id, uint32_t len)
{
    wire_hdr h = { magic, version, type, id, len };
    memcpy(out, &h, WIRE_HDR_SIZE);
}

/* Read until wire_reader_next gives a frame (1) or an error (-1), filling as
 * needed; returns 0 on EOF before a frame. */
static int next_frame(wire_reader *r, int fd, wire_hdr *h, const char **p)
{
    for (;;) {
        int rc = wire_reader_next(r, h, p);
        if (rc != 0)
            return rc;
        long n = wire_reader_fill(r, fd);
        if (n <= 0)
            return 0;
    }
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 131u + 7u) & 0xFF);
}

#define BIG (1u << 20)

TEST(header_layout)
{
    CHECK_EQ_INT(sizeof(wire_hdr), WIRE_HDR_SIZE);
    unsigned char raw[WIRE_HDR_SIZE];
    make_hdr(raw, WIRE_MAGIC, WIRE_VERSION, WIRE_DELTA, 7, 3);
    CHECK(memcmp(raw, "HRTH", 4) == 0);   /* on little-endian hosts */
}

TEST(hdr_check)
{
    wire_hdr h = { WIRE_MAGIC, WIRE_VERSION, WIRE_HELLO, 1, 0 };
    CHECK_EQ_INT(wire_hdr_check(&h), 0);
    h.type = WIRE_ERROR;
    CHECK_EQ_INT(wire_hdr_check(&h), 0);
    h.len = WIRE_MAX_PAYLOAD;
    CHECK_EQ_INT(wire_hdr_check(&h), 0);
    h.len = WIRE_MAX_PAYLOAD + 1;
    CHECK_EQ_INT(wire_hdr_check(&h), -1);
    h.len = UINT32_MAX;
    CHECK_EQ_INT(wire_hdr_check(&h), -1);
    h.len = 0;
    h.type = 0;
    CHECK_EQ_INT(wire_hdr_check(&h), -1);
    h.type = WIRE_TYPE_MAX;
    CHECK_EQ_INT(wire_hdr_check(&h), -1);
    h.type = 0xFFFF;
    CHECK_EQ_INT(wire_hdr_check(&h), -1);
    h.type = WIRE_DONE;
    h.version = 2;
    CHECK_EQ_INT(wire_hdr_check(&h), -1);
    h.version = 0;
    CHECK_EQ_INT(wire_hdr_check(&h), -1);
    h.version = WIRE_VERSION;
    h.magic = 0x48545249u;
    CHECK_EQ_INT(wire_hdr_check(&h), -1);
}

TEST(type_names)
{
    CHECK_STR(wire_type_name(WIRE_HELLO), "HELLO");
    CHECK_STR(wire_type_name(WIRE_LOAD_FAILED), "LOAD_FAILED");
    CHECK_STR(wire_type_name(WIRE_REQUEST), "REQUEST");
    CHECK_STR(wire_type_name(WIRE_DELTA), "DELTA");
    CHECK_STR(wire_type_name(WIRE_ERROR), "ERROR");
    CHECK_STR(wire_type_name(0), "?");
    CHECK_STR(wire_type_name(WIRE_TYPE_MAX), "?");
    CHECK_STR(wire_type_name(1000), "?");
}

TEST(send_and_read_frames)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    char *big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)pattern(i);

    /* the writer runs in a child: 1 MB does not fit in the socket buffer */
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        int rc = 0;
        rc |= wire_send(sv[1], WIRE_HELLO, 0, "{\"ok\":true}", 11);
        rc |= wire_send(sv[1], WIRE_CANCEL, 42, NULL, 0);
        rc |= wire_send(sv[1], WIRE_DELTA, 0xFFFFFFFFu, "h\xC3\xA9", 3);
        rc |= wire_send(sv[1], WIRE_REQUEST, 7, big, BIG);
        rc |= wire_send(sv[1], WIRE_DONE, 8, "{}", 2);
        close(sv[1]);
        _exit(rc ? 1 : 0);
    }
    close(sv[1]);

    wire_reader r;
    wire_reader_init(&r);
    wire_hdr h;
    const char *p = NULL;

    CHECK_EQ_INT(next_frame(&r, sv[0], &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_HELLO);
    CHECK_EQ_INT(h.id, 0);
    CHECK_EQ_INT(h.len, 11);
    CHECK(memcmp(p, "{\"ok\":true}", 11) == 0);

    CHECK_EQ_INT(next_frame(&r, sv[0], &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_CANCEL);
    CHECK_EQ_INT(h.id, 42);
    CHECK_EQ_INT(h.len, 0);

    CHECK_EQ_INT(next_frame(&r, sv[0], &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_DELTA);
    CHECK_EQ_INT(h.id, 0xFFFFFFFFu);
    CHECK_EQ_INT(h.len, 3);
    CHECK(memcmp(p, "h\xC3\xA9", 3) == 0);

    CHECK_EQ_INT(next_frame(&r, sv[0], &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_REQUEST);
    CHECK_EQ_INT(h.id, 7);
    CHECK_EQ_INT(h.len, BIG);
    CHECK(h.len == BIG && memcmp(p, big, BIG) == 0);

    CHECK_EQ_INT(next_frame(&r, sv[0], &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_DONE);
    CHECK_EQ_INT(h.id, 8);
    CHECK_EQ_INT(h.len, 2);
    CHECK(memcmp(p, "{}", 2) == 0);

    /* then EOF, nothing left over */
    CHECK_EQ_INT(next_frame(&r, sv[0], &h, &p), 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);
    CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), 0);

    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    wire_reader_free(&r);
    close(sv[0]);
    free(big);
}

TEST(several_frames_one_read)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_START, 1, "{\"n\":1}", 7), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_DELTA, 1, "abc", 3), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_DELTA, 1, "", 0), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_DONE, 1, "{}", 2), 0);

    wire_reader r;
    wire_reader_init(&r);
    wire_hdr h;
    const char *p;
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);          /* nothing yet */
    long n = wire_reader_fill(&r, sv[0]);
    CHECK_EQ_INT(n, 4 * WIRE_HDR_SIZE + 7 + 3 + 0 + 2);

    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_START);
    CHECK(h.len == 7 && memcmp(p, "{\"n\":1}", 7) == 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_DELTA);
    CHECK(h.len == 3 && memcmp(p, "abc", 3) == 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_DELTA);
    CHECK_EQ_INT(h.len, 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_DONE);
    CHECK(h.len == 2 && memcmp(p, "{}", 2) == 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);

    wire_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}

/* Looking ahead for a frame consumes nothing, needs the whole frame, and
 * tells ids and types apart. */
TEST(holds_looks_ahead)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_REQUEST, 7, "{}", 2), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_CANCEL, 5, NULL, 0), 0);
    wire_reader r;
    wire_reader_init(&r);
    CHECK(!wire_reader_holds(&r, WIRE_CANCEL, 5, false));       /* nothing read yet */
    CHECK(wire_reader_fill(&r, sv[0]) > 0);
    CHECK(wire_reader_holds(&r, WIRE_CANCEL, 5, false));
    CHECK(wire_reader_holds(&r, WIRE_CANCEL, 0, true));
    CHECK(!wire_reader_holds(&r, WIRE_CANCEL, 7, false));       /* another request's */
    CHECK(!wire_reader_holds(&r, WIRE_SHUTDOWN, 0, true));
    wire_hdr h;
    const char *p;
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);              /* still all there */
    CHECK_EQ_INT(h.type, WIRE_REQUEST);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_CANCEL);
    CHECK(!wire_reader_holds(&r, WIRE_CANCEL, 5, false));       /* handed out: gone */
    /* half a frame is not a frame */
    CHECK_EQ_INT(wire_send(sv[1], WIRE_SHUTDOWN, 0, "xyz", 3), 0);
    char part[WIRE_HDR_SIZE + 1];
    CHECK_EQ_INT((int)read(sv[0], part, sizeof part), (int)sizeof part);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);
    buf_append(&r.in, part, sizeof part);
    CHECK(!wire_reader_holds(&r, WIRE_SHUTDOWN, 0, true));
    CHECK(wire_reader_fill(&r, sv[0]) > 0);
    CHECK(wire_reader_holds(&r, WIRE_SHUTDOWN, 0, true));
    wire_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}

TEST(frame_split_across_reads)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    const char payload[] = "{\"prompt\":\"split me\"}";
    size_t plen = sizeof payload - 1;
    unsigned char raw[WIRE_HDR_SIZE + sizeof payload];
    make_hdr(raw, WIRE_MAGIC, WIRE_VERSION, WIRE_REQUEST, 99, (uint32_t)plen);
    memcpy(raw + WIRE_HDR_SIZE, payload, plen);
    size_t total = WIRE_HDR_SIZE + plen;

    wire_reader r;
    wire_reader_init(&r);
    wire_hdr h;
    const char *p;

    /* split inside the header */
    CHECK_EQ_INT(write_all(sv[1], raw, 5), 0);
    CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), 5);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);
    CHECK_EQ_INT(write_all(sv[1], raw + 5, total - 5), 0);
    CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), (long)(total - 5));
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.type, WIRE_REQUEST);
    CHECK_EQ_INT(h.id, 99);
    CHECK(h.len == plen && memcmp(p, payload, plen) == 0);

    /* split inside the payload (two halves) */
    size_t half = WIRE_HDR_SIZE + plen / 2;
    CHECK_EQ_INT(write_all(sv[1], raw, half), 0);
    CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), (long)half);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);           /* still 0 */
    CHECK_EQ_INT(write_all(sv[1], raw + half, total - half), 0);
    CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), (long)(total - half));
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.id, 99);
    CHECK(h.len == plen && memcmp(p, payload, plen) == 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);

    /* byte by byte */
    int frames = 0;
    for (size_t i = 0; i < total; i++) {
        CHECK_EQ_INT(write_all(sv[1], raw + i, 1), 0);
        CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), 1);
        int rc = wire_reader_next(&r, &h, &p);
        CHECK(rc == (i + 1 == total ? 1 : 0));
        frames += rc == 1;
    }
    CHECK_EQ_INT(frames, 1);
    CHECK(h.len == plen && memcmp(p, payload, plen) == 0);

    wire_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}

TEST(payload_valid_until_next_call)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_DELTA, 1, "first", 5), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_DELTA, 2, "second", 6), 0);
    wire_reader r;
    wire_reader_init(&r);
    wire_hdr h;
    const char *p;
    CHECK(wire_reader_fill(&r, sv[0]) > 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    /* activity on the socket does not disturb the payload handed out */
    CHECK_EQ_INT(wire_send(sv[1], WIRE_DONE, 3, "{}", 2), 0);
    CHECK(memcmp(p, "first", 5) == 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.id, 2);
    CHECK(memcmp(p, "second", 6) == 0);
    CHECK(wire_reader_fill(&r, sv[0]) > 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK_EQ_INT(h.id, 3);
    CHECK(memcmp(p, "{}", 2) == 0);
    wire_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}

/* Write one header (plus a few payload bytes) and expect -1 from next. */
static int corrupt_gives_error(uint32_t magic, uint16_t version, uint16_t type, uint32_t len)
{
    int sv[2];
    if (pair(sv) < 0)
        return 0;
    unsigned char raw[WIRE_HDR_SIZE + 4];
    make_hdr(raw, magic, version, type, 1, len);
    memcpy(raw + WIRE_HDR_SIZE, "abcd", 4);
    size_t n = WIRE_HDR_SIZE + (len < 4 ? len : 4);
    int ok = write_all(sv[1], raw, n) == 0;
    wire_reader r;
    wire_reader_init(&r);
    wire_hdr h;
    const char *p;
    ok = ok && wire_reader_fill(&r, sv[0]) == (long)n;
    ok = ok && wire_reader_next(&r, &h, &p) == -1;
    /* stays an error */
    ok = ok && wire_reader_next(&r, &h, &p) == -1;
    wire_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
    return ok;
}

TEST(corrupt_frames)
{
    /* control: a valid header is not reported as an error by the same path */
    CHECK(!corrupt_gives_error(WIRE_MAGIC, WIRE_VERSION, WIRE_DELTA, 4));
    CHECK(corrupt_gives_error(0x48545249u, WIRE_VERSION, WIRE_DELTA, 4));   /* bad magic */
    CHECK(corrupt_gives_error(0, WIRE_VERSION, WIRE_DELTA, 4));
    CHECK(corrupt_gives_error(WIRE_MAGIC, WIRE_VERSION + 1, WIRE_DELTA, 4)); /* bad version */
    CHECK(corrupt_gives_error(WIRE_MAGIC, 0, WIRE_DELTA, 4));
    CHECK(corrupt_gives_error(WIRE_MAGIC, WIRE_VERSION, 0, 4));              /* type 0 */
    CHECK(corrupt_gives_error(WIRE_MAGIC, WIRE_VERSION, WIRE_TYPE_MAX, 4));
    CHECK(corrupt_gives_error(WIRE_MAGIC, WIRE_VERSION, 0xFFFF, 4));
    CHECK(corrupt_gives_error(WIRE_MAGIC, WIRE_VERSION, WIRE_DELTA, WIRE_MAX_PAYLOAD + 1));
    CHECK(corrupt_gives_error(WIRE_MAGIC, WIRE_VERSION, WIRE_DELTA, UINT32_MAX));
}

TEST(corrupt_after_good_frame)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_DELTA, 1, "ok", 2), 0);
    CHECK_EQ_INT(write_all(sv[1], "garbage-garbage-garbage", 23), 0);
    wire_reader r;
    wire_reader_init(&r);
    wire_hdr h;
    const char *p;
    CHECK(wire_reader_fill(&r, sv[0]) > 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 1);
    CHECK(h.len == 2 && memcmp(p, "ok", 2) == 0);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), -1);
    wire_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}

TEST(max_payload_header_accepted_incomplete)
{
    /* a header announcing exactly WIRE_MAX_PAYLOAD is fine: just need more */
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    unsigned char raw[WIRE_HDR_SIZE];
    make_hdr(raw, WIRE_MAGIC, WIRE_VERSION, WIRE_REQUEST, 1, WIRE_MAX_PAYLOAD);
    CHECK_EQ_INT(write_all(sv[1], raw, sizeof raw), 0);
    wire_reader r;
    wire_reader_init(&r);
    wire_hdr h;
    const char *p;
    CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), WIRE_HDR_SIZE);
    CHECK_EQ_INT(wire_reader_next(&r, &h, &p), 0);
    wire_reader_free(&r);
    close(sv[0]);
    close(sv[1]);
}

TEST(max_payload_round_trip)
{
    /* a frame of exactly WIRE_MAX_PAYLOAD, then a small one, read with the
     * supervisor's loop (fill once, then next until 0): the reader's buffer
     * cap must leave room for both */
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        char *p = malloc(WIRE_MAX_PAYLOAD);
        for (size_t i = 0; i < WIRE_MAX_PAYLOAD; i++)
            p[i] = (char)pattern(i);
        int rc = wire_send(sv[1], WIRE_REQUEST, 5, p, WIRE_MAX_PAYLOAD);
        rc |= wire_send(sv[1], WIRE_CANCEL, 6, "x", 1);
        free(p);
        close(sv[1]);
        _exit(rc ? 1 : 0);
    }
    close(sv[1]);
    wire_reader r;
    wire_reader_init(&r);
    int got = 0, bad = 0, corrupt = 0;
    for (;;) {
        long n = wire_reader_fill(&r, sv[0]);
        if (n <= 0) {
            CHECK_EQ_INT(n, 0);
            break;
        }
        wire_hdr h;
        const char *p;
        int k;
        while ((k = wire_reader_next(&r, &h, &p)) == 1) {
            got++;
            if (got == 1) {
                if (h.type != WIRE_REQUEST || h.id != 5 || h.len != WIRE_MAX_PAYLOAD)
                    bad++;
                else
                    for (size_t i = 0; i < WIRE_MAX_PAYLOAD; i += 4099)
                        bad += (unsigned char)p[i] != pattern(i);
            } else if (h.type != WIRE_CANCEL || h.id != 6 || h.len != 1 || p[0] != 'x') {
                bad++;
            }
        }
        if (k < 0) {
            corrupt = 1;
            break;
        }
    }
    CHECK_EQ_INT(got, 2);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(corrupt, 0);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    wire_reader_free(&r);
    close(sv[0]);
}

TEST(send_too_large)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    static const char dummy[1];
    errno = 0;
    CHECK_EQ_INT(wire_send(sv[1], WIRE_REQUEST, 1, dummy, (size_t)WIRE_MAX_PAYLOAD + 1), -1);
    CHECK_EQ_INT(errno, EMSGSIZE);
    CHECK_EQ_INT(wire_send(sv[1], WIRE_REQUEST, 1, dummy, SIZE_MAX), -1);
    /* nothing was written */
    CHECK_EQ_INT(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    char c;
    errno = 0;
    CHECK(read(sv[0], &c, 1) == -1 && errno == EAGAIN);
    close(sv[0]);
    close(sv[1]);
}

TEST(send_to_closed_peer)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    close(sv[0]);
    /* MSG_NOSIGNAL: an error, not SIGPIPE */
    CHECK_EQ_INT(wire_send(sv[1], WIRE_DELTA, 1, "x", 1), -1);
    CHECK_EQ_INT(errno, EPIPE);
    close(sv[1]);
}

TEST(fill_nonblocking_empty)
{
    int sv[2];
    CHECK_EQ_INT(pair(sv), 0);
    CHECK_EQ_INT(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    wire_reader r;
    wire_reader_init(&r);
    errno = 0;
    CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), -1);
    CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
    close(sv[1]);
    CHECK_EQ_INT(wire_reader_fill(&r, sv[0]), 0);              /* EOF */
    wire_reader_free(&r);
    close(sv[0]);
}

int main(void)
{
    RUN(header_layout);
    RUN(hdr_check);
    RUN(type_names);
    RUN(send_and_read_frames);
    RUN(several_frames_one_read);
    RUN(holds_looks_ahead);
    RUN(frame_split_across_reads);
    RUN(payload_valid_until_next_call);
    RUN(corrupt_frames);
    RUN(corrupt_after_good_frame);
    RUN(max_payload_header_accepted_incomplete);
    RUN(max_payload_round_trip);
    RUN(send_too_large);
    RUN(send_to_closed_peer);
    RUN(fill_nonblocking_empty);
    return check_summary();
}
