/* clock.c - see clock.h. */
#include "clock.h"

#include <errno.h>
#include <pthread.h>
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

int64_t clock_deadline(int64_t ms) {
        return clock_mono_ms() + ms;
}

int64_t clock_left_ms(int64_t deadline) {
        int64_t left = deadline - clock_mono_ms();
        return left > 0 ? left : 0;
}

int clock_sleep_cancellable(int64_t ms, const atomic_int *cancel) {
        int64_t end = clock_deadline(ms);
        for (;;) {
                if (cancel && atomic_load(cancel))
                        return -1;
                int64_t left = clock_left_ms(end);
                if (left <= 0)
                        return 0;
                clock_sleep_ms(left < 100 ? left : 100);
        }
}

int clock_cond_init(pthread_cond_t *cond) {
        pthread_condattr_t attr;
        int rc = pthread_condattr_init(&attr);
        if (rc)
                return rc;
        rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (!rc)
                rc = pthread_cond_init(cond, &attr);
        pthread_condattr_destroy(&attr);
        return rc;
}

int clock_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        return pthread_cond_timedwait(cond, lock, &ts);
}
