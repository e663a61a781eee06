/*
 * e2e_ocr.c: POST /v1/ocr against the real daemon and the real Tesseract
 * (Debian's eng and osd models). Quality: the character error rate on the
 * shared OCR images and the rotated scans, against their ground truth, must
 * be no worse than the tesseract command line on the same files (both are
 * printed). Plus PDFs (text layer and scanned), JSON/base64 input, and the
 * hostile inputs: a 65535x65535 PNG, a PDF of 10,000 pages, not an image.
 * See harness.h for the environment.
 */
#include "harness.h"

#include <sys/stat.h>

static struct daemon O;
static char g_ocr[600];

static long g_give_up_ms;        /* > 0: the client gives up after this long */
static CURLcode g_curl_rc;       /* how the last request ended */

static struct resp ocr_file(const char *path, const char *bytes, size_t n, const char *lang)
{
    struct resp r = { 0, buf_make(0), buf_make(0) };
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/ocr", O.port);
    CURL *c = curl_easy_init();
    curl_mime *mime = curl_mime_init(c);
    curl_mimepart *part = curl_mime_addpart(mime);
    curl_mime_name(part, "file");
    if (path)
        curl_mime_filedata(part, path);
    else
        curl_mime_data(part, bytes, n);
    curl_mime_filename(part, "scan");
    if (lang) {
        part = curl_mime_addpart(mime);
        curl_mime_name(part, "language");
        curl_mime_data(part, lang, CURL_ZERO_TERMINATED);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    if (g_give_up_ms > 0)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, g_give_up_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    if ((g_curl_rc = curl_easy_perform(c)) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_mime_free(mime);
    curl_easy_cleanup(c);
    return r;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    buf b = buf_make(0);
    char tmp[65536];
    size_t k;
    while ((k = fread(tmp, 1, sizeof tmp, f)) > 0)
        buf_append(&b, tmp, k);
    fclose(f);
    return buf_detach(&b, n);
}

/* whitespace runs become one space; ends trimmed */
static char *normalize(const char *s)
{
    size_t n = strlen(s), o = 0;
    char *out = malloc(n + 1);
    bool space = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') {
            if (!space)
                out[o++] = ' ';
            space = true;
        } else {
            out[o++] = (char)c;
            space = false;
        }
    }
    while (o && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    return out;
}

/* character error rate = edit distance / reference length (bytes) */
static double cer(const char *hyp_raw, const char *ref_raw)
{
    char *h = normalize(hyp_raw), *r = normalize(ref_raw);
    size_t n = strlen(h), m = strlen(r);
    size_t *prev = malloc((n + 1) * sizeof *prev), *cur = malloc((n + 1) * sizeof *cur);
    for (size_t i = 0; i <= n; i++)
        prev[i] = i;
    for (size_t j = 1; j <= m; j++) {
        cur[0] = j;
        for (size_t i = 1; i <= n; i++) {
            size_t sub = prev[i - 1] + (h[i - 1] != r[j - 1]);
            size_t del = prev[i] + 1, ins = cur[i - 1] + 1;
            cur[i] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        size_t *t = prev;
        prev = cur;
        cur = t;
    }
    double d = m ? (double)prev[n] / (double)m : 0;
    free(prev);
    free(cur);
    free(h);
    free(r);
    return d;
}

static char *cli_text(const char *image)
{
    char out[700], cmd[1500];
    snprintf(out, sizeof out, "%s/cli-ocr", g_tmp);
    snprintf(cmd, sizeof cmd, "tesseract '%s' '%s' -l eng >/dev/null 2>&1", image, out);
    if (system(cmd) != 0)
        return strdup("");
    char txt[720];
    snprintf(txt, sizeof txt, "%s.txt", out);
    size_t n;
    char *s = slurp(txt, &n);
    return s ? s : strdup("");
}

static void t_cer_vs_cli(void)
{
    struct {
        const char *image, *truth;
    } cases[] = { { "phototest.tif", "phototest.txt" }, { "eurotext.tif", "eurotext.txt" },
                  { "phototest-rotated-L.png", "phototest.txt" },
                  { "phototest-rotated-R.png", "phototest.txt" },
                  { "phototest-rotated-180.png", "phototest.txt" } };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char img[700], tru[700];
        snprintf(img, sizeof img, "%s/%s", g_ocr, cases[i].image);
        snprintf(tru, sizeof tru, "%s/%s", g_ocr, cases[i].truth);
        size_t n;
        char *truth = slurp(tru, &n);
        struct resp r = ocr_file(img, NULL, 0, NULL);
        arena *a = arena_new(0);
        const json *j = parse(a, &r.body);
        const char *text = str_at(j, "text");
        CHECK(r.status == 200 && text);
        char *cli = cli_text(img);
        double ch = cer(text ? text : "", truth ? truth : ""), cc = cer(cli, truth ? truth : "");
        fprintf(stderr, "  %-28s CER hearth %5.1f%%   tesseract CLI %5.1f%%   orientation %d\n",
                cases[i].image, 100 * ch, 100 * cc, (int)num_at(j, "pages.0.orientation"));
        CHECK(ch <= cc + 0.005);
        if (i == 0) {
            /* boxes and confidences for lines and words */
            CHECK(num_at(j, "pages.0.lines.0.confidence") > 0);
            const json *bb = path(j, "pages.0.words.0.bbox");
            CHECK(bb && bb->type == JSON_ARRAY && bb->len == 4);
            CHECK(num_at(j, "pages.0.width") == 640);
        }
        free(cli);
        free(truth);
        arena_free(a);
        resp_free(&r);
    }
}

static void t_json_base64(void)
{
    char img[700];
    snprintf(img, sizeof img, "%s/phototest-rotated-180.png", g_ocr);
    size_t n;
    char *png = slurp(img, &n);
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    buf b = buf_make(0);
    buf_puts(&b, "{\"language\":\"eng\",\"file\":\"");
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)(unsigned char)png[i] << 16;
        if (i + 1 < n) v |= (unsigned)(unsigned char)png[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)png[i + 2];
        char q[4] = { tbl[v >> 18 & 63], tbl[v >> 12 & 63], i + 1 < n ? tbl[v >> 6 & 63] : '=',
                      i + 2 < n ? tbl[v & 63] : '=' };
        buf_append(&b, q, 4);
    }
    buf_puts(&b, "\"}");
    struct resp r = post(&O, "/v1/ocr", b.data);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    CHECK(r.status == 200 && str_at(j, "text") && strstr(str_at(j, "text"), "quick brown"));
    CHECK(num_at(j, "pages.0.orientation") == 180);
    arena_free(a);
    resp_free(&r);
    free(png);
    buf_free(&b);
    r = post(&O, "/v1/ocr", "{\"file\":\"!!!not base64!!!\"}");
    CHECK(r.status == 400);
    resp_free(&r);
}

/* A PDF built by hand: no xref (poppler rebuilds it), one object per page. */
static void write_pdf(const char *path, int pages, const char *text, const char *jpeg, size_t jn,
                      int jw, int jh)
{
    FILE *f = fopen(path, "wb");
    fprintf(f, "%%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n");
    fprintf(f, "2 0 obj << /Type /Pages /Count %d /Kids [", pages);
    for (int i = 0; i < pages; i++)
        fprintf(f, " %d 0 R", 10 + i);
    fprintf(f, " ] >> endobj\n");
    fprintf(f, "3 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n");
    size_t cn = (text ? strlen(text) : 0) + 128;
    char *content = calloc(1, cn);
    if (text)
        snprintf(content, cn, "BT /F1 14 Tf 72 700 Td (%s) Tj ET", text);
    else if (jpeg)
        snprintf(content, cn, "q %d 0 0 %d 0 0 cm /Im0 Do Q", jw, jh);
    fprintf(f, "4 0 obj << /Length %zu >> stream\n%s\nendstream endobj\n", strlen(content), content);
    free(content);
    if (jpeg) {
        fprintf(f, "5 0 obj << /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace "
                   "/DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length %zu >> stream\n",
                jw, jh, jn);
        fwrite(jpeg, 1, jn, f);
        fprintf(f, "\nendstream endobj\n");
    }
    for (int i = 0; i < pages; i++)
        fprintf(f, "%d 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R "
                   "/Resources << /Font << /F1 3 0 R >> %s >> >> endobj\n", 10 + i,
                jpeg ? jw : 612, jpeg ? jh : 792, jpeg ? "/XObject << /Im0 5 0 R >>" : "");
    fprintf(f, "trailer << /Root 1 0 R >>\n%%%%EOF\n");
    fclose(f);
}

static void t_pdfs(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/text.pdf", g_tmp);
    write_pdf(p, 1, "Hello hearth, this is a text layer.", NULL, 0, 0, 0);
    struct resp r = ocr_file(p, NULL, 0, NULL);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    CHECK(r.status == 200 && str_at(j, "pages.0.source") &&
          !strcmp(str_at(j, "pages.0.source"), "text_layer"));
    CHECK(str_at(j, "text") && strstr(str_at(j, "text"), "Hello hearth"));
    /* the text layer's words and line, with boxes inside the page (points) */
    const json *words = path(j, "pages.0.words");
    CHECK(words && words->type == JSON_ARRAY && words->len == 7);
    CHECK(str_at(j, "pages.0.words.0.text") && !strcmp(str_at(j, "pages.0.words.0.text"), "Hello"));
    CHECK(str_at(j, "pages.0.words.6.text") && !strcmp(str_at(j, "pages.0.words.6.text"), "layer."));
    CHECK(str_at(j, "pages.0.lines.0.text") &&
          !strcmp(str_at(j, "pages.0.lines.0.text"), "Hello hearth, this is a text layer."));
    double pw = num_at(j, "pages.0.width"), ph = num_at(j, "pages.0.height");
    double x0 = num_at(j, "pages.0.words.0.bbox.0"), y0 = num_at(j, "pages.0.words.0.bbox.1");
    double x1 = num_at(j, "pages.0.words.0.bbox.2"), y1 = num_at(j, "pages.0.words.0.bbox.3");
    double nx0 = num_at(j, "pages.0.words.1.bbox.0");
    CHECK(x0 >= 0 && y0 >= 0 && x0 < x1 && y0 < y1 && x1 <= pw && y1 <= ph);
    CHECK(nx0 > x1);                         /* "hearth," right of "Hello" */
    arena_free(a);
    resp_free(&r);
    /* a scanned page: the phototest image as a JPEG inside the PDF */
    char jpg[700], cmd[1600];
    snprintf(jpg, sizeof jpg, "%s/phototest.jpg", g_tmp);
    snprintf(cmd, sizeof cmd, "ffmpeg -loglevel error -y -i '%s/phototest.tif' '%s'",
             g_ocr, jpg);
    CHECK(system(cmd) == 0);
    size_t jn;
    char *jd = slurp(jpg, &jn);
    CHECK(jd != NULL);
    if (jd) {
        snprintf(p, sizeof p, "%s/scan.pdf", g_tmp);
        write_pdf(p, 2, NULL, jd, jn, 640, 480);
        r = ocr_file(p, NULL, 0, NULL);
        a = arena_new(0);
        j = parse(a, &r.body);
        CHECK(r.status == 200 && str_at(j, "pages.1.source") &&
              !strcmp(str_at(j, "pages.1.source"), "ocr"));
        CHECK(str_at(j, "text") && strstr(str_at(j, "text"), "quick brown"));
        arena_free(a);
        resp_free(&r);
        free(jd);
    }
}

/* A client that gives up on a long document (16 scanned pages, ~10 s of
 * Tesseract here) stops it: the worker logs the cancel, and the next
 * request is served. */
static void t_cancel_running(void)
{
    char p[700], one[700];
    snprintf(p, sizeof p, "%s/many-pages.tif", g_tmp);
    snprintf(one, sizeof one, "%s/phototest.tif", g_ocr);
    g_give_up_ms = 1500;
    struct resp r = ocr_file(p, NULL, 0, NULL);
    g_give_up_ms = 0;
    CHECK(g_curl_rc == CURLE_OPERATION_TIMEDOUT);
    resp_free(&r);
    CHECK(log_holds(O.log, "OCR of a", 60) && log_holds(O.log, "-byte file cancelled", 0));
    r = ocr_file(one, NULL, 0, NULL);
    CHECK(r.status == 200);
    resp_free(&r);
}

/* A text layer whose lines and words outgrow the result cap (300 pages of
 * 3,000 words each: ~50 MB of JSON) gets a 413, and the worker serves the
 * next request. The text carries its own line breaks (Td operators). */
static void t_result_cap(void)
{
    buf t = buf_make(0);
    for (int line = 0; line < 100; line++) {
        if (line)
            buf_puts(&t, ") Tj 0 -6 Td (");
        for (int w = 0; w < 30; w++)
            buf_puts(&t, w ? " w" : "w");
    }
    char p[700], one[700];
    snprintf(p, sizeof p, "%s/wordy.pdf", g_tmp);
    snprintf(one, sizeof one, "%s/phototest.tif", g_ocr);
    write_pdf(p, 300, t.data, NULL, 0, 0, 0);
    buf_free(&t);
    struct resp r = ocr_file(p, NULL, 0, NULL);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    CHECK(r.status == 413 && is_error_shape(j, NULL));
    CHECK(str_at(j, "error.message") && strstr(str_at(j, "error.message"), "16 MB"));
    arena_free(a);
    resp_free(&r);
    r = ocr_file(one, NULL, 0, NULL);
    CHECK(r.status == 200);
    resp_free(&r);
}

static void t_multipage_tiff(void)
{
    char p[700];
    snprintf(p, sizeof p, "%s/two-pages.tif", g_tmp);
    struct resp r = ocr_file(p, NULL, 0, NULL);
    arena *a = arena_new(0);
    const json *j = parse(a, &r.body);
    const json *pages = json_get(j, "pages");
    CHECK(r.status == 200 && pages && pages->len == 2);
    CHECK(str_at(j, "pages.0.text") && strstr(str_at(j, "pages.0.text"), "quick brown"));
    CHECK(str_at(j, "pages.1.text") && strstr(str_at(j, "pages.1.text"), "lazy"));
    CHECK(num_at(j, "pages.1.page") == 2);
    arena_free(a);
    resp_free(&r);
}

static void t_hostile(void)
{
    /* a PNG header claiming 65535 x 65535 pixels */
    static const unsigned char png[] = {
        0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
        0, 0, 0xff, 0xff, 0, 0, 0xff, 0xff, 8, 0, 0, 0, 0, 0x2b, 0x8c, 0x95, 0x2c,
        0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82 };
    struct resp r = ocr_file(NULL, (const char *)png, sizeof png, NULL);
    arena *a = arena_new(0);
    CHECK(r.status == 413 && is_error_shape(parse(a, &r.body), NULL));
    arena_free(a);
    resp_free(&r);
    char p[700];
    snprintf(p, sizeof p, "%s/many.pdf", g_tmp);
    write_pdf(p, 10000, NULL, NULL, 0, 0, 0);
    r = ocr_file(p, NULL, 0, NULL);
    a = arena_new(0);
    CHECK(r.status == 413 && is_error_shape(parse(a, &r.body), NULL));
    arena_free(a);
    resp_free(&r);
    r = ocr_file(NULL, "just some text, not an image", 28, NULL);
    CHECK(r.status == 400);
    resp_free(&r);
    r = ocr_file(NULL, "%PDF-1.4 garbage", 16, NULL);
    CHECK(r.status == 400);
    resp_free(&r);
    /* an empty file part, and multipart without its boundary: each says so */
    r = ocr_file(NULL, "", 0, NULL);
    CHECK(r.status == 400 && r.body.data && strstr(r.body.data, "is empty"));
    resp_free(&r);
    r = http_typed(&O, "POST", "/v1/ocr", "multipart/form-data", "x", 1);
    CHECK(r.status == 400 && r.body.data && strstr(r.body.data, "invalid_multipart"));
    resp_free(&r);
    char img[700];
    snprintf(img, sizeof img, "%s/phototest.tif", g_ocr);
    r = ocr_file(img, NULL, 0, "xx_not_installed");
    CHECK(r.status == 400);
    resp_free(&r);
    r = ocr_file(img, NULL, 0, "../../etc");
    CHECK(r.status == 400);
    resp_free(&r);
    CHECK(healthy(&O));
}

static void t_cli_ocr(void)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s/hearth' --url http://127.0.0.1:%d ocr '%s/phototest.tif' "
             "2>/dev/null | grep -q 'quick brown'", g_build, O.port, g_ocr);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    g_build = getenv("HEARTH_BUILD");
    g_tmp = getenv("HEARTH_TMP");
    g_shared = getenv("HEARTH_SHARED");
    if (!g_build || !g_tmp || !g_shared) {
        fprintf(stderr, "e2e: set HEARTH_BUILD, HEARTH_SHARED and HEARTH_TMP (tests/run.sh does)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(g_ocr, sizeof g_ocr, "%s/data/ocr", g_shared);
    char *args[] = { "--threads", "2", NULL };
    if (start_daemon(&O, "daemonOcr", args) < 0) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    run("cer_vs_cli", t_cer_vs_cli);
    run("json_base64", t_json_base64);
    run("pdfs", t_pdfs);
    run("multipage_tiff", t_multipage_tiff);
    run("result_cap", t_result_cap);
    run("cancel_running", t_cancel_running);
    run("hostile", t_hostile);
    run("cli_ocr", t_cli_ocr);
    stop_daemon(&O);
    curl_global_cleanup();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
