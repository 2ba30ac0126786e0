/* test_helpers.h - what the Criterion suites share: reading canned files,
 * handing bytes to a parser the way a Kafka payload arrives, and asserting
 * a call's success with the callee's own message (STYLE.md section 7, after
 * librdkafka's TEST_CALL__).
 *
 * Every helper fails the running test through Criterion itself, so a caller
 * never checks a helper's result for NULL.
 */
#ifndef THOPTER_TEST_HELPERS_H
#define THOPTER_TEST_HELPERS_H

#include "err.h"
#include "request.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include <stddef.h>

/* A call that returns 0 or -1 with a struct err: on -1 the test stops with
 * the call and the callee's message. */
#define assert_ok(call, err) cr_assert((call) == 0, "%s: %s", #call, (err)->msg)
#define expect_ok(call, err) cr_expect((call) == 0, "%s: %s", #call, (err)->msg)

/**
 * @brief The exact bytes of @p path in a buffer of exactly their size (no
 * terminator, like a Kafka payload, so ASan sees any over-read).
 * @returns a malloc'd buffer (1 byte for an empty file); *@p len its size.
 */
char *test_slurp(const char *path, size_t *len);

/** @brief test_slurp() plus a terminating NUL (not counted in *@p len). */
char *test_slurp_str(const char *path, size_t *len);

/** @brief @p unit repeated @p times, NUL-terminated, malloc'd. */
char *test_repeat(const char *unit, size_t times);

/**
 * @brief A copy of @p len bytes of @p text in a buffer of exactly that size
 * (malloc'd; 1 byte when @p len is 0), as a Kafka payload arrives.
 */
char *test_payload(const void *text, size_t len);

/** @brief request_parse_provision() of a test_payload() copy of @p text.
 * @p err is not cleared first: a recorded failure stays recorded. */
int test_parse_provision(const char *text,
                         size_t len,
                         struct provision_request *req,
                         struct err *err);

/** @brief request_parse_destroy() of a test_payload() copy of @p text. */
int test_parse_destroy(const char *text,
                       size_t len,
                       struct destroy_request *req,
                       struct err *err);

/** @brief @p ms scaled by THOPTER_TIMEOUT_MULTIPLIER (slow builds: ASan). */
long test_ms(long ms);

/**
 * @brief Poll @p done(@p arg) every millisecond until it is non-zero or
 * test_ms(@p timeout_ms) passed. @returns its last answer.
 */
int test_wait_for(int (*done)(void *arg), void *arg, long timeout_ms);

/** @brief The file @p path parsed as a provision request; the test fails
 * with the parser's message otherwise. Free with request_provision_free(). */
void test_load_provision(const char *path, struct provision_request *req);

/** @brief The JSON file @p path as a cJSON tree (cJSON_Delete() it); the
 * test fails when it is not JSON. */
cJSON *test_load_json(const char *path);

/** @brief The member names of @p obj in order, joined by ',' into @p out
 * ("requestId,kind,state"); the test fails when they do not fit. */
void test_json_keys(const cJSON *obj, char *out, size_t cap);

/* ---- a job_ops that records what a job reports ---------------------- */

#include "job.h"

#include <stdatomic.h>

#define TEST_EVENTS_MAX 64

/* One job_emit(), as test_recording_ops saw it. */
struct test_event {
        char state[32];
        char step[32];             /* "" for a NULL step */
        char failure[ERR_MSG_LEN]; /* the failure's message, "" for none */
        enum err_class cls;        /* the failure's, ERRC_NONE for none */
        int code;                  /* the failure's, 0 for none */
};

/*
 * What a job reported through test_recording_ops: zero it (= {0} or
 * memset) and make it the job's ops_ctx. Emits may come from any thread
 * (one lock in helpers.c); read n, e[] and list after they are done, or
 * through test_events_count().
 */
struct test_events {
        int n;                                /* emits, also past the array */
        struct test_event e[TEST_EVENTS_MAX]; /* the first TEST_EVENTS_MAX */
        char list[1024];    /* "state[:step]" joined by ',', cut to fit */
        struct job *job;    /* the last emit's */
        atomic_int holds;   /* hold() calls */
        atomic_int hold_on; /* the last hold()'s argument */
};

/** @brief A job_ops whose emit and hold record into the struct test_events
 * that is the job's ops_ctx. */
extern const struct job_ops test_recording_ops;

/** @brief How many of the recorded events (the first TEST_EVENTS_MAX) have
 * the state @p state; safe while a job still emits. */
int test_events_count(struct test_events *ev, const char *state);

#endif
