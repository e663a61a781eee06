/*
 * jobs.h: `hearth jobs`, the CLI of the batch queue (POST /v1/jobs ...):
 * add files, list, show, wait with a progress bar, fetch results, cancel,
 * retry, remove.
 */
#ifndef HEARTH_CLI_JOBS_H
#define HEARTH_CLI_JOBS_H

/* argv[0] is "jobs". Returns the process exit status. */
int jobs_main(int argc, char **argv);

#endif
