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
 */
#ifndef HEARTH_MAPPED_H
#define HEARTH_MAPPED_H

#include <stddef.h>

/* Returns the bytes of mapping released (0 when the file is not mapped),
 * or -1 when /proc/self/maps or the file cannot be read. */
long long mapped_release(const char *path);

#endif
