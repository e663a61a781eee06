/*
 * ocr.c: Tesseract + Leptonica for images, poppler for PDFs; see ocr.h.
 */
#include "engine/ocr.h"

#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <leptonica/allheaders.h>
#include <math.h>
#include <poppler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tesseract/capi.h>
#include <unistd.h>

#include "core/log.h"
#include "engine/stopcheck.h"

#define MAX_LANGS 4
#define PDF_DPI 300.0
#define TEXT_LAYER_MIN 16       /* fewer visible characters: treat as scanned */

struct ocr {
    char tessdata[512];
    struct {
        char lang[64];
        TessBaseAPI *api;
    } inst[MAX_LANGS];
    TessBaseAPI *osd;
    struct stop_check stop;             /* ocr_set_abort() */
    ETEXT_DESC *monitor;                /* asks the check while Tesseract recognises */
    void (*progress)(void *ud, double fraction);    /* ocr_set_progress() */
    void *progress_ud;
};

void ocr_set_progress(ocr *o, void (*progress)(void *ud, double fraction), void *ud)
{
    o->progress = progress;
    o->progress_ud = ud;
}

/* Pages done out of total, to the caller's progress hook. */
static void tell(ocr *o, int done, int total)
{
    if (o->progress && total > 0)
        o->progress(o->progress_ud, (double)done / total);
}

/* The pages of a TIFF in memory (0 when they cannot be counted). */
static int tiff_pages(const unsigned char *d, size_t n)
{
    FILE *f = fmemopen((void *)d, n, "rb");
    l_int32 count = 0;
    if (f) {
        if (tiffGetCount(f, &count) != 0)
            count = 0;
        fclose(f);
    }
    return count;
}

/* Tesseract's cancel callback, called as it recognises words. */
static bool tess_cancel(void *cancel_this, int words)
{
    (void)words;
    return stop_check_now(&((ocr *)cancel_this)->stop);
}

void ocr_set_abort(ocr *o, bool (*should_abort)(void *ud), void *ud)
{
    stop_check_set(&o->stop, should_abort, ud);
    if (should_abort && !o->monitor) {
        o->monitor = TessMonitorCreate();
        if (o->monitor) {
            TessMonitorSetCancelFunc(o->monitor, tess_cancel);
            TessMonitorSetCancelThis(o->monitor, o);
        }
    }
}

/* ocr_page()'s answer when the result outgrew its cap */
#define OCR_TOO_LARGE (-3)

static void too_large(int *status, char *err, size_t el)
{
    *status = 413;
    snprintf(err, el, "the recognised text is larger than the %u MB limit", OCR_MAX_RESULT >> 20);
}

/* the answer when the caller's check stopped the run */
static void cancelled(int *status, char *err, size_t el)
{
    *status = 499;
    snprintf(err, el, "cancelled");
}

ocr *ocr_load(const char *tessdata, char *err, size_t el)
{
    ocr *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, el, "out of memory");
        return NULL;
    }
    snprintf(o->tessdata, sizeof o->tessdata, "%s", tessdata);
    char p[700];
    snprintf(p, sizeof p, "%s/eng.traineddata", tessdata);
    if (access(p, R_OK) != 0) {
        snprintf(err, el, "no eng.traineddata in the tessdata folder");
        free(o);
        return NULL;
    }
    setMsgSeverity(L_SEVERITY_NONE);        /* Leptonica: errors come back as NULL */
    snprintf(p, sizeof p, "%s/osd.traineddata", tessdata);
    if (access(p, R_OK) == 0) {
        o->osd = TessBaseAPICreate();
        if (TessBaseAPIInit3(o->osd, tessdata, "osd") != 0) {
            TessBaseAPIDelete(o->osd);
            o->osd = NULL;
        } else {
            TessBaseAPISetPageSegMode(o->osd, PSM_OSD_ONLY);
        }
    }
    if (!o->osd)
        log_warn("no usable osd.traineddata: page orientation will not be corrected");
    log_info("ocr engine ready (tesseract %s)", TessVersion());
    return o;
}

void ocr_free(ocr *o)
{
    if (!o)
        return;
    for (int i = 0; i < MAX_LANGS; i++)
        if (o->inst[i].api)
            TessBaseAPIDelete(o->inst[i].api);
    if (o->osd)
        TessBaseAPIDelete(o->osd);
    if (o->monitor)
        TessMonitorDelete(o->monitor);
    free(o);
}

int ocr_describe(ocr *o, buf *out)
{
    (void)o;
    return buf_printf(out, "{\"kind\":\"ocr\",\"slots\":1,\"engine\":\"tesseract %s\","
                      "\"backend\":\"tesseract\"}",
                      TessVersion());
}

static TessBaseAPI *engine_for(ocr *o, const char *lang, char *err, size_t el)
{
    int free_slot = -1;
    for (int i = 0; i < MAX_LANGS; i++) {
        if (o->inst[i].api && strcmp(o->inst[i].lang, lang) == 0)
            return o->inst[i].api;
        if (!o->inst[i].api && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0) {
        free_slot = MAX_LANGS - 1;              /* evict the last one */
        TessBaseAPIDelete(o->inst[free_slot].api);
        o->inst[free_slot].api = NULL;
    }
    TessBaseAPI *api = TessBaseAPICreate();
    if (TessBaseAPIInit3(api, o->tessdata, lang) != 0) {
        TessBaseAPIDelete(api);
        snprintf(err, el, "language '%s' is not installed", lang);
        return NULL;
    }
    TessBaseAPISetPageSegMode(api, PSM_AUTO);
    snprintf(o->inst[free_slot].lang, sizeof o->inst[free_slot].lang, "%s", lang);
    o->inst[free_slot].api = api;
    return api;
}

/* Detect how the page is turned and return it upright (a new reference). */
static PIX *upright(ocr *o, PIX *pix, int *deg)
{
    *deg = 0;
    if (!o->osd)
        return pixClone(pix);
    TessBaseAPISetImage2(o->osd, pix);
    int orient = 0;
    float oconf = 0, sconf = 0;
    const char *script = NULL;
    if (TessBaseAPIDetectOrientationScript(o->osd, &orient, &oconf, &script, &sconf) &&
        oconf > 1.0f && orient % 90 == 0 && orient != 0) {
        *deg = orient;
        /* orient is how far the page is turned clockwise; pixRotateOrth turns
         * clockwise by quarter turns, so turn it the rest of the way round */
        return pixRotateOrth(pix, (4 - orient / 90) % 4);
    }
    TessBaseAPIClear(o->osd);
    return pixClone(pix);
}

static int bbox(buf *b, const TessResultIterator *it, TessPageIteratorLevel lv)
{
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    TessPageIteratorBoundingBox(TessResultIteratorGetPageIteratorConst(it), lv, &x0, &y0, &x1, &y1);
    return buf_printf(b, "[%d,%d,%d,%d]", x0, y0, x1, y1);
}

/* Elements of one level as a JSON array; -1 when b's cap was hit. */
static int elements(buf *b, TessBaseAPI *api, TessPageIteratorLevel lv)
{
    int e = buf_putc(b, '[');
    TessResultIterator *it = TessBaseAPIGetIterator(api);
    bool first = true;
    if (it) {
        do {
            char *t = TessResultIteratorGetUTF8Text(it, lv);
            if (!t)
                continue;
            size_t n = strlen(t);
            while (n && (t[n - 1] == '\n' || t[n - 1] == ' '))
                t[--n] = '\0';
            if (n) {
                if (!first)
                    e |= buf_putc(b, ',');
                first = false;
                e |= buf_puts(b, "{\"text\":") | jw_str(b, t, n) | buf_puts(b, ",\"bbox\":") |
                     bbox(b, it, lv) |
                     buf_printf(b, ",\"confidence\":%.1f}",
                                (double)TessResultIteratorConfidence(it, lv));
            }
            TessDeleteText(t);
        } while (TessResultIteratorNext(it, lv));
        TessResultIteratorDelete(it);
    }
    return e | buf_putc(b, ']');
}

/* Recognise one page image; appends the page object to pages and its text
 * to all. -1: the engine failed or was stopped; OCR_TOO_LARGE: a cap was
 * hit. */
static int ocr_page(ocr *o, TessBaseAPI *api, PIX *pix, int pageno, buf *pages, buf *all)
{
    int deg;
    if (stop_check_now(&o->stop))
        return -1;
    PIX *up = upright(o, pix, &deg);
    if (!up)
        return -1;
    TessBaseAPISetImage2(api, up);
    if (TessBaseAPIRecognize(api, o->stop.should_stop ? o->monitor : NULL) != 0 || o->stop.stopped) {
        TessBaseAPIClear(api);
        pixDestroy(&up);
        return -1;
    }
    char *text = TessBaseAPIGetUTF8Text(api);
    int e = pages->len > 1 ? buf_putc(pages, ',') : 0;
    e |= buf_printf(pages, "{\"page\":%d,\"source\":\"ocr\",\"orientation\":%d,\"width\":%d,"
                    "\"height\":%d,\"confidence\":%d,\"text\":", pageno, deg,
                    (int)pixGetWidth(up), (int)pixGetHeight(up), TessBaseAPIMeanTextConf(api));
    e |= jw_cstr(pages, text ? text : "") | buf_puts(pages, ",\"lines\":") |
         elements(pages, api, RIL_TEXTLINE) | buf_puts(pages, ",\"words\":") |
         elements(pages, api, RIL_WORD) | buf_putc(pages, '}');
    if (text)
        e |= buf_puts(all, text);
    TessDeleteText(text);
    TessBaseAPIClear(api);
    pixDestroy(&up);
    return e ? OCR_TOO_LARGE : 0;
}

static int read_file(const char *path, unsigned char **data, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > OCR_MAX_FILE) {
        close(fd);
        return -1;
    }
    *n = (size_t)st.st_size;
    *data = malloc(*n ? *n : 1);
    size_t got = 0;
    while (*data && got < *n) {
        ssize_t r = read(fd, *data + got, *n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!*data || got != *n) {
        free(*data);
        return -1;
    }
    return 0;
}

static int run_image(ocr *o, TessBaseAPI *api, const unsigned char *d, size_t n, buf *pages,
                     buf *all, int *status, char *err, size_t el)
{
    l_int32 fmt = 0, w = 0, h = 0, bps = 0, spp = 0, cmap = 0;
    if (pixReadHeaderMem(d, n, &fmt, &w, &h, &bps, &spp, &cmap) != 0 || w <= 0 || h <= 0) {
        *status = 400;
        snprintf(err, el, "the file is not a PNG, JPEG, TIFF or PDF this server can read");
        return -1;
    }
    if ((uint64_t)w * (uint64_t)h > OCR_MAX_PIXELS) {
        *status = 413;
        snprintf(err, el, "the image is %dx%d pixels; the limit is %u megapixels", w, h,
                 OCR_MAX_PIXELS / 1000000);
        return -1;
    }
    if (fmt == IFF_TIFF || fmt == IFF_TIFF_G4 || fmt == IFF_TIFF_G3 || fmt == IFF_TIFF_LZW ||
        fmt == IFF_TIFF_ZIP || fmt == IFF_TIFF_PACKBITS || fmt == IFF_TIFF_RLE ||
        fmt == IFF_TIFF_JPEG) {
        size_t off = 0;
        int page = 0, total = tiff_pages(d, n);
        do {
            if (page == OCR_MAX_PAGES) {
                *status = 413;
                snprintf(err, el, "more than %d pages", OCR_MAX_PAGES);
                return -1;
            }
            PIX *pix = pixReadMemFromMultipageTiff(d, n, &off);
            if (!pix)
                break;
            page++;
            int rc = (uint64_t)pixGetWidth(pix) * (uint64_t)pixGetHeight(pix) > OCR_MAX_PIXELS
                         ? -2 : ocr_page(o, api, pix, page, pages, all);
            pixDestroy(&pix);
            if (rc == -2) {
                *status = 413;
                snprintf(err, el, "page %d is larger than %u megapixels", page,
                         OCR_MAX_PIXELS / 1000000);
                return -1;
            }
            if (rc == OCR_TOO_LARGE) {
                too_large(status, err, el);
                return -1;
            }
            if (rc < 0)
                goto engine;
            tell(o, page, total > page ? total : page);
        } while (off != 0);
        if (page == 0) {
            *status = 400;
            snprintf(err, el, "the TIFF has no readable page");
            return -1;
        }
        return 0;
    }
    PIX *pix = pixReadMem(d, n);
    if (!pix) {
        *status = 400;
        snprintf(err, el, "the image could not be decoded");
        return -1;
    }
    int rc = ocr_page(o, api, pix, 1, pages, all);
    pixDestroy(&pix);
    if (rc == 0)
        return 0;
    if (rc == OCR_TOO_LARGE) {
        too_large(status, err, el);
        return -1;
    }
engine:
    if (o->stop.stopped) {
        cancelled(status, err, el);
    } else {
        *status = 500;
        snprintf(err, el, "the OCR engine failed on this image");
    }
    return -1;
}

/* A rendered cairo surface as a Leptonica image (32 bpp). */
static PIX *surface_to_pix(cairo_surface_t *s)
{
    int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
    int stride = cairo_image_surface_get_stride(s);
    const unsigned char *src = cairo_image_surface_get_data(s);
    PIX *pix = pixCreate(w, h, 32);
    if (!pix)
        return NULL;
    l_uint32 *dst = pixGetData(pix);
    int wpl = pixGetWpl(pix);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(src + (size_t)y * (size_t)stride);
        for (int x = 0; x < w; x++) {
            uint32_t p = row[x];       /* cairo RGB24: 0x00RRGGBB */
            dst[(size_t)y * (size_t)wpl + (size_t)x] = ((p >> 16 & 0xff) << 24) |
                                                       ((p >> 8 & 0xff) << 16) | ((p & 0xff) << 8);
        }
    }
    return pix;
}

static int visible_chars(const char *t)
{
    int n = 0;
    for (; t && *t; t++)
        n += (unsigned char)*t > ' ';
    return n;
}

/* Unicode's directional marks and embeddings, which poppler puts around
 * right-to-left runs of a page's text without a rectangle of their own. */
static bool bidi_control(gunichar c)
{
    return c == 0x200E || c == 0x200F || (c >= 0x202A && c <= 0x202E) ||
           (c >= 0x2066 && c <= 0x2069);
}

/* A text layer's lines (or words) with their boxes, in the shape OCR gives:
 * poppler has one rectangle per character of the page's text (points, from
 * the top left; directional marks have none); an element's box is the union
 * of its visible characters', clamped to the page (pw x ph). A layout that
 * does not match the text gives an empty list. */
static int layer_elements(buf *b, const char *text, const PopplerRectangle *r, guint nr,
                          double pw, double ph, bool lines)
{
    int e = buf_putc(b, '[');
    guint chars = 0;
    for (const char *p = text; p && *p; p = g_utf8_next_char(p))
        chars += !bidi_control(g_utf8_get_char(p));
    if (!text || !r || nr != chars)
        return e | buf_putc(b, ']');
    bool first = true, open = false;
    const char *start = NULL, *end = NULL;
    double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    guint k = 0;
    for (const char *p = text;; p = g_utf8_next_char(p)) {
        gunichar c = *p ? g_utf8_get_char(p) : 0;
        if (c && bidi_control(c))
            continue;
        bool brk = !c || (lines ? c == '\n' : g_unichar_isspace(c));
        if (!brk && !g_unichar_isspace(c)) {
            const PopplerRectangle *q = &r[k];
            if (!open) {
                open = true;
                start = p;
                x0 = q->x1, y0 = q->y1, x1 = q->x2, y1 = q->y2;
            } else {
                x0 = fmin(x0, q->x1), y0 = fmin(y0, q->y1);
                x1 = fmax(x1, q->x2), y1 = fmax(y1, q->y2);
            }
            end = g_utf8_next_char(p);
        }
        if (brk && open) {
            if (!first)
                e |= buf_putc(b, ',');
            first = false;
            e |= buf_puts(b, "{\"text\":") | jw_str(b, start, (size_t)(end - start)) |
                 buf_printf(b, ",\"bbox\":[%d,%d,%d,%d],\"confidence\":100.0}",
                            (int)fmax(0, floor(x0)), (int)fmax(0, floor(y0)),
                            (int)fmin(floor(pw), ceil(x1)), (int)fmin(floor(ph), ceil(y1)));
            open = false;
        }
        if (!c)
            break;
        k++;
    }
    return e | buf_putc(b, ']');
}

static int run_pdf(ocr *o, TessBaseAPI *api, const unsigned char *d, size_t n, buf *pages,
                   buf *all, int *status, char *err, size_t el)
{
    GBytes *bytes = g_bytes_new_static(d, n);
    GError *gerr = NULL;
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &gerr);
    int rc = -1;
    if (!doc) {
        *status = 400;
        snprintf(err, el, "the PDF could not be opened%s", gerr && gerr->code ==
                 POPPLER_ERROR_ENCRYPTED ? " (it is encrypted)" : "");
        goto out;
    }
    int np = poppler_document_get_n_pages(doc);
    if (np > OCR_MAX_PAGES) {
        *status = 413;
        snprintf(err, el, "the PDF has %d pages; the limit is %d", np, OCR_MAX_PAGES);
        goto out;
    }
    if (np <= 0) {
        *status = 400;
        snprintf(err, el, "the PDF has no pages");
        goto out;
    }
    for (int i = 0; i < np; i++) {
        if (stop_check_now(&o->stop)) {     /* text-layer pages too, between pages */
            cancelled(status, err, el);
            goto out;
        }
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page)
            continue;
        char *text = poppler_page_get_text(page);
        double pw = 0, ph = 0;
        poppler_page_get_size(page, &pw, &ph);
        if (visible_chars(text) >= TEXT_LAYER_MIN) {
            int e = pages->len > 1 ? buf_putc(pages, ',') : 0;
            e |= buf_printf(pages, "{\"page\":%d,\"source\":\"text_layer\",\"orientation\":0,"
                            "\"width\":%d,\"height\":%d,\"text\":", i + 1, (int)pw, (int)ph);
            e |= jw_cstr(pages, text);
            PopplerRectangle *rects = NULL;
            guint nr = 0;
            if (!poppler_page_get_text_layout(page, &rects, &nr))
                nr = 0;
            e |= buf_puts(pages, ",\"lines\":") |
                 layer_elements(pages, text, rects, nr, pw, ph, true) |
                 buf_puts(pages, ",\"words\":") |
                 layer_elements(pages, text, rects, nr, pw, ph, false) | buf_putc(pages, '}');
            g_free(rects);
            e |= buf_puts(all, text) | buf_putc(all, '\n');
            if (e) {
                g_free(text);
                g_object_unref(page);
                too_large(status, err, el);
                goto out;
            }
        } else {
            double scale = PDF_DPI / 72.0;
            int w = (int)(pw * scale), h = (int)(ph * scale);
            if (w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > OCR_MAX_PIXELS) {
                g_free(text);
                g_object_unref(page);
                *status = 413;
                snprintf(err, el, "page %d would render larger than %u megapixels", i + 1,
                         OCR_MAX_PIXELS / 1000000);
                goto out;
            }
            cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
            cairo_t *cr = cairo_create(s);
            cairo_set_source_rgb(cr, 1, 1, 1);
            cairo_paint(cr);
            cairo_scale(cr, scale, scale);
            poppler_page_render(page, cr);
            cairo_destroy(cr);
            cairo_surface_flush(s);
            PIX *pix = surface_to_pix(s);
            cairo_surface_destroy(s);
            int prc = pix ? ocr_page(o, api, pix, i + 1, pages, all) : -1;
            pixDestroy(&pix);
            if (prc < 0) {
                g_free(text);
                g_object_unref(page);
                if (prc == OCR_TOO_LARGE)
                    too_large(status, err, el);
                else if (o->stop.stopped)
                    cancelled(status, err, el);
                else
                    *status = 500, snprintf(err, el, "the OCR engine failed on page %d", i + 1);
                goto out;
            }
        }
        g_free(text);
        g_object_unref(page);
        tell(o, i + 1, np);
    }
    rc = 0;
out:
    if (gerr)
        g_error_free(gerr);
    if (doc)
        g_object_unref(doc);
    g_bytes_unref(bytes);
    return rc;
}

int ocr_run(ocr *o, const json *opts, buf *out, int *status, char *err, size_t el)
{
    const json *jp = json_get(opts, "path"), *jl = json_get(opts, "language");
    const char *lang = jl && jl->type == JSON_STRING && jl->len ? jl->str : "eng";
    *status = 500;
    if (!jp || jp->type != JSON_STRING) {
        snprintf(err, el, "no input file");
        return -1;
    }
    if (strlen(lang) > 60 || strspn(lang, "abcdefghijklmnopqrstuvwxyz_+") != strlen(lang)) {
        *status = 400;
        snprintf(err, el, "language must look like 'eng' or 'eng+deu'");
        return -1;
    }
    TessBaseAPI *api = engine_for(o, lang, err, el);
    if (!api) {
        *status = 400;
        return -1;
    }
    unsigned char *d = NULL;
    size_t n = 0;
    if (read_file(jp->str, &d, &n) < 0 || n == 0) {
        *status = 400;
        snprintf(err, el, "the uploaded file could not be read");
        free(d);
        return -1;
    }
    buf pages = buf_make(OCR_MAX_RESULT), all = buf_make(OCR_MAX_RESULT);
    buf_putc(&pages, '[');
    stop_check_reset(&o->stop);
    int rc = n >= 5 && memcmp(d, "%PDF-", 5) == 0
                 ? run_pdf(o, api, d, n, &pages, &all, status, err, el)
                 : run_image(o, api, d, n, &pages, &all, status, err, el);
    if (rc < 0 && o->stop.stopped)
        log_info("OCR of a %zu-byte file cancelled", n);
    if (rc == 0) {
        buf res = buf_make(0);       /* out is untouched on failure */
        if (buf_putc(&pages, ']') || buf_puts(&res, "{\"text\":") ||
            jw_str(&res, all.data ? all.data : "", all.len) || buf_puts(&res, ",\"pages\":") ||
            buf_append(&res, pages.data, pages.len) || buf_putc(&res, '}') ||
            buf_append(out, res.data, res.len)) {
            too_large(status, err, el);
            rc = -1;
        }
        buf_free(&res);
    }
    buf_free(&pages);
    buf_free(&all);
    free(d);
    return rc;
}
