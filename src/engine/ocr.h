/*
 * ocr.h: the OCR engine: Tesseract (through its C API) on images and PDFs.
 * Runs only inside a worker.
 *
 * Inputs: PNG, JPEG, TIFF (every page of a multi-page TIFF) and PDF. A PDF
 * page with a text layer returns that text; a scanned page is rendered at
 * 300 dpi and recognised. Each page's orientation is detected (Tesseract's
 * OSD) and corrected before recognition.
 *
 * Caps, checked before anything is decoded where the format allows: pixels
 * per page (OCR_MAX_PIXELS), pages per document (OCR_MAX_PAGES), the result
 * (OCR_MAX_RESULT; over it, 413).
 * A decompression bomb is refused with 413, never decoded.
 *
 * One Tesseract instance per language set, created on first use and reused
 * (the worker is single-threaded, so that is one per worker thread).
 */
#ifndef HEARTH_OCR_H
#define HEARTH_OCR_H

#include <stdbool.h>

#include "core/buf.h"
#include "core/json.h"

#define OCR_MAX_PIXELS (60u * 1000 * 1000)
#define OCR_MAX_PAGES  300
#define OCR_MAX_FILE   (256u << 20)
/* the recognised text, and the pages' JSON (text, lines, words and boxes),
 * each at most this large: a result must fit one wire frame */
#define OCR_MAX_RESULT (16u << 20)

typedef struct ocr ocr;

/* tessdata: the folder holding <lang>.traineddata (and osd.traineddata). */
ocr *ocr_load(const char *tessdata, char *err, size_t errlen);
void ocr_free(ocr *o);
int  ocr_describe(ocr *o, buf *out);

/* opts: {"path":"...","language":"eng"}. On success 0 and out holds
 * {"text":..., "pages":[{"page":1,"source":"ocr"|"text_layer","orientation":0,
 *   "width":..,"height":..,"text":...,"confidence":..,
 *   "lines":[{"text","bbox":[x0,y0,x1,y1],"confidence"}],
 *   "words":[{"text","bbox":[...],"confidence"}]}]}
 * On failure -1, *status (400 unreadable, 413 over a cap, 500 engine) and a
 * message without any path in err. */
int  ocr_run(ocr *o, const json *opts, buf *out, int *status, char *err, size_t errlen);

/* A check that ocr_run() calls between pages and while Tesseract
 * recognises (often, so it must be cheap): when it returns true the run
 * stops and fails with *status 499 and "cancelled". NULL removes it. */
void ocr_set_abort(ocr *o, bool (*should_abort)(void *ud), void *ud);

/* Told the share of the document's pages done (0..1) after each page;
 * NULL removes it. */
void ocr_set_progress(ocr *o, void (*progress)(void *ud, double fraction), void *ud);

#endif
