/* clock.c - see clock.h. */
#include "clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
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

/* Two digits of @p v (0-99) at @p p. */
static char *put2(char *p, int v) {
        p[0] = (char)('0' + v / 10);
        p[1] = (char)('0' + v % 10);
        return p + 2;
}

/* Civil date of day @p days since 1970-01-01 (proleptic Gregorian), in
 * whole 400-year eras of 146,097 days counted from 0000-03-01, so that the
 * leap day is the last day of a year. */
static void civil_from_days(int64_t days, int *y, int *m, int *d) {
        int64_t z = days + 719468; /* days from 0000-03-01 */
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097; /* 0..146096 */
        int64_t yoe =
            (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);     /* 0..365 */
        int64_t mp = (5 * doy + 2) / 153; /* 0..11, March = 0 */

        *d = (int)(doy - (153 * mp + 2) / 5 + 1);
        *m = (int)(mp < 10 ? mp + 3 : mp - 9);
        *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Every log line, event and dead letter carries one or more of these, so
 * it is formed by hand: snprintf and gmtime_r (which takes glibc's time
 * zone lock) cost ~15 times as much. */
void clock_iso8601(int64_t wall_ms, char *buf, size_t cap) {
        char out[32], *p = out;
        int y, mo, d;

        if (wall_ms < 0)
                wall_ms = 0;
        int64_t secs = wall_ms / 1000, days = secs / 86400;
        int sod = (int)(secs % 86400), ms = (int)(wall_ms % 1000);

        civil_from_days(days, &y, &mo, &d);
        if (y > 9999)
                y = 9999;
        p = put2(p, y / 100);
        p = put2(p, y % 100);
        *p++ = '-';
        p = put2(p, mo);
        *p++ = '-';
        p = put2(p, d);
        *p++ = 'T';
        p = put2(p, sod / 3600);
        *p++ = ':';
        p = put2(p, sod / 60 % 60);
        *p++ = ':';
        p = put2(p, sod % 60);
        *p++ = '.';
        *p++ = (char)('0' + ms / 100);
        p = put2(p, ms % 100);
        *p++ = 'Z';
        *p = '\0';
        if (!cap)
                return;
        size_t n = (size_t)(p - out);
        if (n >= cap)
                n = cap - 1;
        memcpy(buf, out, n);
        buf[n] = '\0';
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
