/* clock.c - see clock.h. */
#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

int64_t clock_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clock_iso8601(int64_t wall_ms, char *buf, size_t cap) {
        time_t secs = (time_t)(wall_ms / 1000);
        struct tm tm;

        gmtime_r(&secs, &tm);
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
}

void clock_sleep_ms(int64_t ms) {
        struct timespec ts = {.tv_sec = ms / 1000,
                              .tv_nsec = (ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}
