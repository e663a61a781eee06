/*
 * index.h: `hearth index` (watched folders: add, rm, ls, wait with a
 * progress bar, docs, rescan), `hearth search` and `hearth ask`, the CLI
 * of hearthd's retrieval index (/v1/index, /v1/search, /v1/ask).
 */
#ifndef HEARTH_CLI_INDEX_H
#define HEARTH_CLI_INDEX_H

/* argv[0] is the command's name. Each returns the process exit status. */
int index_main(int argc, char **argv);
int search_main(int argc, char **argv);
int ask_main(int argc, char **argv);

#endif
