/*
 * clock.h: the two clocks hearthd reads, in seconds as doubles: monotonic
 * (durations, time-outs) and wall (timestamps stored or shown).
 */
#ifndef HEARTH_CLOCK_H
#define HEARTH_CLOCK_H

double clock_mono_s(void);
double clock_wall_s(void);

#endif
