/*
 * mapped.h: give back the resident pages of a memory-mapped file.
 *
 * llama.cpp maps a model file and copies the weights it repacks for this
 * CPU out of the mapping; the mapped pages it read stay in the worker's
 * resident set although nothing reads them again. mapped_release() drops
 * this process's page-table entries for every mapping of the file
 * (MADV_DONTNEED). The page cache keeps the data: pages still in use
 * (embeddings, weights used in place) come back on first touch as cheap
 * minor faults, so the resident set becomes the working set and the memory
 * budget's measurements stay honest.
 *
 * Ownership: touches no memory it owns; the mappings stay mapped.
 * mapped_warm_huge() maps and unmaps the file itself.
 */
#ifndef HEARTH_MAPPED_H
#define HEARTH_MAPPED_H

#include <stdbool.h>
#include <stddef.h>

/* Returns the bytes of mapping released (0 when the file is not mapped),
 * or -1 when /proc/self/maps or the file cannot be read. */
long long mapped_release(const char *path);

/* Huge pages for a file about to be mapped. A decode step reads every weight
 * once, and weights used in place (Q8_0, F16 and the other types ggml does
 * not repack) are read through the file mapping: with 4 KiB pages the walk
 * misses the TLB all along (decode about 10% slower here). Under THP
 * "madvise" a mapping gets 2 MiB entries when it asks for them
 * (MADV_HUGEPAGE, which mapped_release() sets on the model's mapping) and
 * the page cache holds the file in 2 MiB folios. This reads the parts of the
 * file not yet cached as 2 MiB folios. Parts already cached in small folios
 * (a file just written or downloaded) stay so until the kernel evicts them:
 * dropping them to read them again costs a disk read at every load where it
 * does not stick (a 0.5B model's load went from 0.13 to 1.5 s). Returns the
 * bytes that map with 2 MiB entries afterwards, 0 for a file under 16 MiB,
 * or -1 when huge pages are unavailable (THP "never") or the file cannot be
 * read. */
long long mapped_warm_huge(const char *path);

#endif
