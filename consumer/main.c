/* main.c - thopter-consumer: wiring and signals only.
 *
 * Reads the settings, builds the shared parts (fly client, circuit breaker,
 * producer for dead letters and events) and one Kafka loop per role, runs
 * each loop on its own thread, and turns SIGTERM/SIGINT into a graceful stop:
 * the first signal drains, a second one exits at once.
 */
#include "breaker.h"
#include "config.h"
#include "destroy_steps.h"
#include "fly_client.h"
#include "health_server.h"
#include "kafka_conf.h"
#include "kafka_loop.h"
#include "log.h"
#include "producer.h"
#include "provision_steps.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "thopter-consumer"

#define TEARDOWN_TIMEOUT_S 15

static volatile sig_atomic_t teardown_status = 1;

static void on_teardown_timeout(int sig) {
        static const char msg[] =
            "{\"level\":\"warn\",\"component\":\"main\",\"msg\":"
            "\"freeing the Kafka handles hung (librdkafka 2.0.2); exiting\"}\n";
        (void)sig;
        if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
                /* nothing more to do */
        }
        _exit(teardown_status);
}

struct loop_thread {
        struct kafka_loop *loop;
        pthread_t thread;
        int started;
        int rc;
        volatile int done;
};

static void *loop_main(void *arg) {
        struct loop_thread *lt = arg;
        lt->rc = kafka_loop_run(lt->loop);
        lt->done = 1;
        return NULL;
}

static int probe_fly(void *arg, struct err *err) {
        struct fly_machine *machines = NULL;
        size_t n = 0;
        int rc = fly_machine_list(arg, NULL, NULL, &machines, &n, err);
        free(machines);
        return rc;
}

static rd_kafka_conf_t *
loop_conf(const struct config *cfg, const char *client_id, struct err *err) {
        rd_kafka_conf_t *conf = kafka_conf_new(
            cfg->kafka_brokers, cfg->kafka_props, cfg->n_kafka_props, err);
        if (!conf)
                return NULL;
        /* An idle partition's fetch is held by the broker for
         * fetch.wait.max.ms, and a resumed partition waits for that fetch to
         * come back: 100 ms instead of 500 keeps resumes prompt. */
        if (kafka_conf_default(conf, cfg->kafka_props, cfg->n_kafka_props,
                               "client.id", client_id, err) == -1 ||
            kafka_conf_default(conf, cfg->kafka_props, cfg->n_kafka_props,
                               "fetch.wait.max.ms", "100", err) == -1) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

/* One consumer group's loop, stored in @p lt. NULL on failure (see err). */
static struct kafka_loop *add_loop(const struct config *cfg,
                                   const char *name,
                                   const char *topic,
                                   const char *group,
                                   int max_in_flight,
                                   int prefetch_high,
                                   int prefetch_low,
                                   long revoke_timeout_ms,
                                   const struct job_handler *h,
                                   struct producer *producer,
                                   struct breaker *breaker,
                                   struct loop_thread *lt,
                                   struct err *err) {
        char client_id[64];
        snprintf(client_id, sizeof(client_id), PROG "-%s", name);
        struct kafka_loop_opts o = {
            .name = name,
            .topic = topic,
            .group = group,
            .max_in_flight = max_in_flight,
            .prefetch_high = prefetch_high,
            .prefetch_low = prefetch_low,
            .conf = loop_conf(cfg, client_id, err),
            .producer = producer,
            .dlq_topic = cfg->dlq_topic,
            .events_topic = cfg->events_topic,
            .breaker = breaker,
            .drain_timeout_ms = cfg->drain_timeout_s * 1000L,
            .revoke_timeout_ms = revoke_timeout_ms,
        };
        if (!o.conf)
                return NULL;
        lt->loop = kafka_loop_new(&o, h, err);
        return lt->loop;
}

int main(int argc, char **argv) {
        struct config cfg;
        struct err err = {0};
        struct fly_client *fly = NULL;
        struct breaker *breaker = NULL;
        struct producer *producer = NULL;
        struct health_server *health = NULL;
        struct job_services destroy_svc = {0}, provision_svc = {0};
        struct provision_ctx *provision = NULL;
        struct loop_thread loops[2] = {{0}};
        int nloops = 0, status = 1;
        sigset_t sigs;

        if (config_load(&cfg, argc, argv, &err) == -1) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                config_free(&cfg);
                return 2;
        }
        if (cfg.show_help) {
                config_print_help(stdout, PROG);
                config_free(&cfg);
                return 0;
        }
        if (cfg.show_version) {
                printf(PROG " %s (librdkafka %s)\n", THOPTER_VERSION,
                       rd_kafka_version_str());
                config_free(&cfg);
                return 0;
        }
        enum log_level lvl = LOG_INFO;
        log_level_parse(cfg.log_level, &lvl);
        log_set_level(lvl);

        /* Signals go to the main thread only: block them before any thread. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);

        struct fly_client_opts fo = {
            .base_url = cfg.fly_api_base,
            .app = cfg.app_name,
            .token = cfg.fly_deploy_key,
            .timeout_ms = cfg.fly_timeout_s * 1000L,
        };
        fly = fly_client_new(&fo, &err);
        if (!fly)
                goto out;
        breaker = breaker_new(cfg.breaker_threshold, cfg.breaker_probe_ms,
                              probe_fly, fly, &err);
        if (!breaker)
                goto out;
        rd_kafka_conf_t *pconf = loop_conf(&cfg, PROG "-producer", &err);
        if (!pconf ||
            kafka_conf_default(pconf, cfg.kafka_props, cfg.n_kafka_props,
                               "linger.ms", "1", &err) == -1) {
                if (pconf)
                        rd_kafka_conf_destroy(pconf);
                goto out;
        }
        producer = producer_new(pconf, &err);
        if (!producer)
                goto out;
        producer_warm_topic(producer, cfg.dlq_topic, 2000);
        producer_warm_topic(producer, cfg.events_topic, 2000);

        struct retry_policy policy = {cfg.fly_retries, cfg.retry_base_ms,
                                      cfg.retry_max_ms};
        destroy_svc = (struct job_services){&cfg, fly, breaker, policy, NULL};
        provision_svc = destroy_svc;

        if (cfg.role != ROLE_DESTROY) {
                provision = provision_ctx_new(&provision_svc, &err);
                if (!provision)
                        goto out;
                /* Provisioning is serial: one in flight, nothing queued. */
                struct job_handler h = provision_steps_handler(provision);
                /* On a rebalance the running provision may finish (up to 4
                 * minutes, inside max.poll.interval.ms) rather than be done
                 * twice: the new owner would redo it from the start. */
                provision_svc.loop =
                    add_loop(&cfg, "provision", cfg.provision_topic,
                             cfg.provision_group, 1, 0, 0, 240000, &h, producer,
                             breaker, &loops[nloops], &err);
                if (!provision_svc.loop)
                        goto out;
                nloops++;
        }
        if (cfg.role != ROLE_PROVISION) {
                /* Destroys are tiny and quick: keep a good backlog queued. */
                int n = cfg.max_concurrent_destroys;
                int backlog =
                    cfg.destroy_backlog ? cfg.destroy_backlog : 50 * n;
                struct job_handler h = destroy_steps_handler(&destroy_svc);
                destroy_svc.loop =
                    add_loop(&cfg, "destroy", cfg.destroy_topic,
                             cfg.destroy_group, n, backlog, backlog * 2 / 5, 0,
                             &h, producer, breaker, &loops[nloops], &err);
                if (!destroy_svc.loop)
                        goto out;
                nloops++;
        }

        if (strcmp(cfg.metrics_addr, "off") != 0) {
                struct kafka_loop *ls[2] = {loops[0].loop, loops[1].loop};
                health =
                    health_server_start(cfg.metrics_addr, ls, nloops, &err);
                if (!health)
                        goto out;
        }

        for (int i = 0; i < nloops; i++) {
                if (pthread_create(&loops[i].thread, NULL, loop_main,
                                   &loops[i]) != 0) {
                        err_set(&err, ERR_PERMANENT, 0,
                                "cannot start the %s loop thread",
                                kafka_loop_name(loops[i].loop));
                        goto stop;
                }
                loops[i].started = 1;
        }
        log_info("main",
                 PROG " %s started: role %s, brokers %s, fly API %s, app %s",
                 THOPTER_VERSION,
                 cfg.role == ROLE_ALL         ? "all"
                 : cfg.role == ROLE_PROVISION ? "provision"
                                              : "destroy",
                 cfg.kafka_brokers, cfg.fly_api_base, cfg.app_name);

        /* Wait for a signal, or for every loop to end on its own. */
        for (;;) {
                struct timespec ts = {1, 0};
                int sig = sigtimedwait(&sigs, NULL, &ts);
                int running = 0;
                for (int i = 0; i < nloops; i++)
                        running += loops[i].started && !loops[i].done;
                if (!running)
                        break;
                if (sig == SIGTERM || sig == SIGINT) {
                        log_info(
                            "main",
                            "%s: stopping gracefully (again to exit at once)",
                            sig == SIGTERM ? "SIGTERM" : "SIGINT");
                        break;
                }
        }
stop:
        for (int i = 0; i < nloops; i++)
                kafka_loop_stop(loops[i].loop);
        {
                /* A second signal, or a drain that overruns, exits at once:
                 * what was not committed is redelivered later. */
                time_t give_up = time(NULL) + cfg.drain_timeout_s + 20;
                for (;;) {
                        int running = 0;
                        for (int i = 0; i < nloops; i++)
                                running += loops[i].started && !loops[i].done;
                        if (!running)
                                break;
                        struct timespec ts = {0, 200 * 1000000L};
                        int sig = sigtimedwait(&sigs, NULL, &ts);
                        if (sig == SIGTERM || sig == SIGINT ||
                            time(NULL) > give_up) {
                                log_warn("main",
                                         "%s: exiting now; uncommitted work "
                                         "will be redelivered",
                                         sig > 0 ? "second signal"
                                                 : "shutdown took too long");
                                _exit(1);
                        }
                }
        }
        status = 0;
        for (int i = 0; i < nloops; i++) {
                if (loops[i].started) {
                        pthread_join(loops[i].thread, NULL);
                        if (loops[i].rc == -2) {
                                /* Workers still inside remote calls use the
                                 * producer and the fly client: exit without
                                 * freeing them. Nothing uncommitted is lost. */
                                log_warn(
                                    "main",
                                    "exiting with work still in remote calls; "
                                    "uncommitted requests will be redelivered");
                                _exit(1);
                        }
                        if (loops[i].rc != 0)
                                status = 1;
                }
        }
        /* librdkafka 2.0.2 can hang in rd_kafka_destroy after a broker went
         * down and came back (librdkafka #4674): the work is done and
         * committed by now, so if freeing the handles takes too long the
         * process ends anyway, with the status it earned. */
        teardown_status = status;
        signal(SIGALRM, on_teardown_timeout);
        alarm(TEARDOWN_TIMEOUT_S);
out:
        if (err.kind != ERR_NONE) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                status = 1;
        }
        health_server_stop(health);
        /* The producer goes first: its last delivery reports still reach the
         * loops, which free those jobs. */
        producer_destroy(producer);
        for (int i = 0; i < nloops; i++)
                kafka_loop_destroy(loops[i].loop);
        provision_ctx_destroy(provision);
        breaker_destroy(breaker);
        fly_client_destroy(fly);
        config_free(&cfg);
        if (status == 0)
                log_info("main", "stopped cleanly");
        return status;
}
