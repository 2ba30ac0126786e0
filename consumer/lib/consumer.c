/* consumer.c - see consumer.h. */
#include "consumer.h"
#include "destroy.h"
#include "fly_breaker.h"
#include "fly_client.h"
#include "fly_retry.h"
#include "health_server.h"
#include "kafka_conf.h"
#include "kafka_loop.h"
#include "kafka_producer.h"
#include "log.h"
#include "provision.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "thopter-consumer"

/* On a rebalance the running provision may finish (up to 4 minutes, inside
 * max.poll.interval.ms) rather than be done twice: the new owner would redo
 * it from the start. */
#define PROVISION_REVOKE_TIMEOUT_MS 240000L
/* Destroys are tiny and quick: keep a good backlog queued per slot. */
#define DESTROY_BACKLOG_PER_SLOT 50

struct loop_thread {
        struct kafka_loop *loop;
        pthread_t thread;
        int started;
        enum kafka_loop_exit rc;
        atomic_int done;
};

struct consumer {
        const struct config *cfg;
        struct fly_client *fly;
        struct fly_breaker *breaker;
        struct fly_retry retry;
        struct kafka_producer *producer;
        struct destroy_deps destroy;
        struct provision_deps provision_deps;
        struct provision_ctx *provision;
        struct health_server *health;
        struct loop_thread loops[2];
        int nloops;
};

static void *loop_main(void *arg) {
        struct loop_thread *lt = arg;
        lt->rc = kafka_loop_run(lt->loop);
        atomic_store(&lt->done, 1);
        return NULL;
}

static int probe_fly(void *arg, struct err *err) {
        struct fly_machine *machines = NULL;
        size_t n = 0;
        int rc = fly_machine_list(arg, NULL, &machines, &n, err);
        free(machines);
        return rc;
}

/* The librdkafka configuration of one client: brokers, the -X that apply to
 * a client of @p type (a consumer-only property on the producer drew a
 * warning at every start), then the project's defaults for what the user
 * did not set: any -X wins (contract 5.14). */
static rd_kafka_conf_t *client_conf(const struct config *cfg,
                                    rd_kafka_type_t type,
                                    const char *client_id,
                                    const char *const *defaults,
                                    struct err *err) {
        rd_kafka_conf_t *conf =
            kafka_conf_new_for(type, cfg->kafka_brokers, cfg->kafka_props,
                               cfg->n_kafka_props, err);
        if (!conf)
                return NULL;
        if (kafka_conf_default(conf, cfg->kafka_props, cfg->n_kafka_props,
                               "client.id", client_id, err) == -1)
                goto fail;
        for (int i = 0; defaults && defaults[i]; i += 2)
                if (kafka_conf_default(conf, cfg->kafka_props,
                                       cfg->n_kafka_props, defaults[i],
                                       defaults[i + 1], err) == -1)
                        goto fail;
        return conf;
fail:
        rd_kafka_conf_destroy(conf);
        return NULL;
}

/* An idle partition's fetch is held by the broker for fetch.wait.max.ms, and
 * a resumed partition waits for that fetch to come back: 100 ms instead of
 * 500 keeps resumes prompt. librdkafka prefetches up to 64 MiB by default;
 * 8 MiB bounds a flood of large records. Not less: librdkafka 2.0.2 backs a
 * partition whose prefetch queue is full off for about a second (2.1 made it
 * fetch.queue.backoff.ms), so 2 MiB cut the dead-letter path from ~18,000 to
 * ~1,400 records/s in bench/run.py's flood. A -X from the user wins. */
static const char *const consumer_defaults[] = {
    "fetch.wait.max.ms", "100", "queued.max.messages.kbytes", "8192", NULL};
static const char *const producer_defaults[] = {
    "linger.ms", "1", "enable.idempotence", "true", "acks", "all", NULL};

static struct kafka_loop *new_loop(struct consumer *c,
                                   struct kafka_loop_opts *o,
                                   const struct job_handler *h,
                                   struct err *err) {
        char client_id[64];

        snprintf(client_id, sizeof(client_id), PROG "-%s", o->name);
        o->conf = client_conf(c->cfg, RD_KAFKA_CONSUMER, client_id,
                              consumer_defaults, err);
        if (!o->conf)
                return NULL;
        o->producer = c->producer;
        o->dlq_topic = c->cfg->dlq_topic;
        o->events_topic = c->cfg->events_topic;
        o->breaker = c->breaker;
        o->drain_timeout_ms = c->cfg->drain_timeout_s * 1000L;
        struct kafka_loop *loop = kafka_loop_new(o, h, err);
        if (loop)
                c->loops[c->nloops++].loop = loop;
        return loop;
}

static int add_provision(struct consumer *c, struct err *err) {
        const struct config *cfg = c->cfg;

        c->provision_deps = (struct provision_deps){cfg, c->fly, &c->retry};
        c->provision = provision_ctx_new(&c->provision_deps, err);
        if (!c->provision)
                return -1;
        struct job_handler h = provision_handler(c->provision);
        /* Serial by default (MAX_CONCURRENT_PROVISIONS=1): one in flight,
         * nothing queued. More run as destroys do, never two of one
         * requestId at once; the claims in provision_ctx keep them off each
         * other's volumes, capacity and Golden Claude. */
        struct kafka_loop_opts o = {
            .name = "provision",
            .topic = cfg->provision_topic,
            .group = cfg->provision_group,
            .max_in_flight = cfg->max_concurrent_provisions,
            .revoke_timeout_ms = PROVISION_REVOKE_TIMEOUT_MS,
        };
        return new_loop(c, &o, &h, err) ? 0 : -1;
}

static int add_destroy(struct consumer *c, struct err *err) {
        const struct config *cfg = c->cfg;
        int n = cfg->max_concurrent_destroys;
        int backlog = cfg->destroy_backlog ? cfg->destroy_backlog
                                           : DESTROY_BACKLOG_PER_SLOT * n;

        c->destroy = (struct destroy_deps){c->fly, &c->retry};
        struct job_handler h = destroy_handler(&c->destroy);
        struct kafka_loop_opts o = {
            .name = "destroy",
            .topic = cfg->destroy_topic,
            .group = cfg->destroy_group,
            .max_in_flight = n,
            .prefetch_high = backlog,
            .prefetch_low = backlog * 2 / 5,
        };
        return new_loop(c, &o, &h, err) ? 0 : -1;
}

struct consumer *consumer_new(const struct config *cfg, struct err *err) {
        struct consumer *c = calloc(1, sizeof(*c));

        if (!c) {
                err_oom(err, PROG);
                return NULL;
        }
        c->cfg = cfg;
        struct fly_client_opts fo = {
            .base_url = cfg->fly_api_base,
            .app = cfg->app_name,
            .token = cfg->fly_deploy_key,
            .timeout_ms = cfg->fly_timeout_s * 1000L,
            .proxy = cfg->fly_proxy,
            .pacing = cfg->fly_pacing,
        };
        c->fly = fly_client_new(&fo, err);
        if (!c->fly)
                goto fail;
        c->breaker =
            fly_breaker_new(cfg->breaker_threshold, cfg->breaker_probe_ms,
                            probe_fly, c->fly, err);
        if (!c->breaker)
                goto fail;
        c->retry = (struct fly_retry){cfg->fly_retries, cfg->retry_base_ms,
                                      cfg->retry_max_ms, c->breaker};
        rd_kafka_conf_t *pconf = client_conf(
            cfg, RD_KAFKA_PRODUCER, PROG "-producer", producer_defaults, err);
        if (!pconf)
                goto fail;
        c->producer = kafka_producer_new(pconf, err);
        if (!c->producer)
                goto fail;
        kafka_producer_warm_topic(c->producer, cfg->dlq_topic, 2000);
        kafka_producer_warm_topic(c->producer, cfg->events_topic, 2000);

        if (cfg->role != ROLE_DESTROY && add_provision(c, err) == -1)
                goto fail;
        if (cfg->role != ROLE_PROVISION && add_destroy(c, err) == -1)
                goto fail;
        if (strcmp(cfg->metrics_addr, "off") != 0) {
                struct kafka_loop *ls[2] = {c->loops[0].loop, c->loops[1].loop};
                c->health =
                    health_server_start(cfg->metrics_addr, ls, c->nloops, err);
                if (!c->health)
                        goto fail;
        }
        return c;
fail:
        consumer_destroy(c);
        return NULL;
}

int consumer_start(struct consumer *c, struct err *err) {
        for (int i = 0; i < c->nloops; i++) {
                struct loop_thread *lt = &c->loops[i];
                if (pthread_create(&lt->thread, NULL, loop_main, lt) != 0)
                        return err_set(err, ERR_PERMANENT, 0,
                                       "cannot start the %s loop thread",
                                       kafka_loop_name(lt->loop));
                lt->started = 1;
        }
        return 0;
}

int consumer_running(struct consumer *c) {
        int running = 0;
        for (int i = 0; i < c->nloops; i++)
                running +=
                    c->loops[i].started && !atomic_load(&c->loops[i].done);
        return running;
}

void consumer_stop(struct consumer *c) {
        for (int i = 0; i < c->nloops; i++)
                kafka_loop_stop(c->loops[i].loop);
}

enum consumer_exit consumer_join(struct consumer *c) {
        enum consumer_exit rc = CONSUMER_CLEAN;
        for (int i = 0; i < c->nloops; i++) {
                struct loop_thread *lt = &c->loops[i];
                if (!lt->started)
                        continue;
                pthread_join(lt->thread, NULL);
                lt->started = 0;
                if (lt->rc == KAFKA_LOOP_STUCK)
                        return CONSUMER_STUCK;
                if (lt->rc == KAFKA_LOOP_ABANDONED)
                        rc = CONSUMER_ABANDONED;
        }
        return rc;
}

void consumer_destroy(struct consumer *c) {
        if (!c)
                return;
        health_server_stop(c->health);
        /* The producer goes first: its last delivery reports still reach the
         * loops, which free those jobs. */
        kafka_producer_destroy(c->producer);
        for (int i = 0; i < c->nloops; i++)
                kafka_loop_destroy(c->loops[i].loop);
        provision_ctx_destroy(c->provision);
        fly_breaker_destroy(c->breaker);
        fly_client_destroy(c->fly);
        free(c);
}
