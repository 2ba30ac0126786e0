/* c11_threads.c - the tsan preset only: C11 <threads.h> over pthreads, so
 * that ThreadSanitizer sees librdkafka's threads and locks.
 *
 * librdkafka 2.0.2 (Debian's) creates its threads with thrd_create() and
 * locks with mtx_lock()/cnd_wait(). glibc implements those by calling its
 * internal pthread functions, which the ThreadSanitizer runtime of gcc 12
 * (and clang 14) does not intercept: a thread it never saw crashes in its
 * first malloc() (a SEGV in the allocator cache of "rdk:mock"), and locks
 * it never saw would make every hand-off through librdkafka a false race.
 * Defined in each executable, these are found before glibc's, and call the
 * pthread functions the runtime does intercept.
 *
 * Not part of the library: CMakeLists.txt adds this file to every program
 * only when SANITIZE is "thread".
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

struct start {
        thrd_start_t func;
        void *arg;
};

static void *trampoline(void *p) {
        struct start s = *(struct start *)p;
        free(p);
        return (void *)(intptr_t)s.func(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t func, void *arg) {
        struct start *s = malloc(sizeof(*s));
        int rc;

        if (!s)
                return thrd_nomem;
        s->func = func;
        s->arg = arg;
        rc = pthread_create(thr, NULL, trampoline, s);
        if (rc != 0) {
                free(s);
                return rc == EAGAIN ? thrd_nomem : thrd_error;
        }
        return thrd_success;
}

int thrd_join(thrd_t thr, int *res) {
        void *v = NULL;

        if (pthread_join(thr, &v) != 0)
                return thrd_error;
        if (res)
                *res = (int)(intptr_t)v;
        return thrd_success;
}

int mtx_init(mtx_t *m, int type) {
        pthread_mutexattr_t attr;
        int rc;

        pthread_mutexattr_init(&attr);
        if (type & mtx_recursive)
                pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        rc = pthread_mutex_init((pthread_mutex_t *)m, &attr);
        pthread_mutexattr_destroy(&attr);
        return rc == 0 ? thrd_success : thrd_error;
}

int mtx_lock(mtx_t *m) {
        return pthread_mutex_lock((pthread_mutex_t *)m) == 0 ? thrd_success
                                                             : thrd_error;
}

int mtx_unlock(mtx_t *m) {
        return pthread_mutex_unlock((pthread_mutex_t *)m) == 0 ? thrd_success
                                                               : thrd_error;
}

void mtx_destroy(mtx_t *m) {
        pthread_mutex_destroy((pthread_mutex_t *)m);
}

int cnd_init(cnd_t *c) {
        int rc = pthread_cond_init((pthread_cond_t *)c, NULL);
        return rc == 0 ? thrd_success : rc == ENOMEM ? thrd_nomem : thrd_error;
}

int cnd_signal(cnd_t *c) {
        return pthread_cond_signal((pthread_cond_t *)c) == 0 ? thrd_success
                                                             : thrd_error;
}

int cnd_broadcast(cnd_t *c) {
        return pthread_cond_broadcast((pthread_cond_t *)c) == 0 ? thrd_success
                                                                : thrd_error;
}

int cnd_wait(cnd_t *c, mtx_t *m) {
        return pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m) == 0
                   ? thrd_success
                   : thrd_error;
}

int cnd_timedwait(cnd_t *restrict c,
                  mtx_t *restrict m,
                  const struct timespec *restrict ts) {
        int rc = pthread_cond_timedwait((pthread_cond_t *)c,
                                        (pthread_mutex_t *)m, ts);
        return rc == 0           ? thrd_success
               : rc == ETIMEDOUT ? thrd_timedout
                                 : thrd_error;
}

void cnd_destroy(cnd_t *c) {
        pthread_cond_destroy((pthread_cond_t *)c);
}

void call_once(once_flag *flag, void (*func)(void)) {
        pthread_once((pthread_once_t *)flag, func);
}
