/* main.c - thopter-consumer: the command line and signals.
 *
 * Reads the settings (config.h), builds and starts the daemon (consumer.h),
 * and turns SIGTERM/SIGINT into a graceful stop: the first signal drains, a
 * second one exits at once (what was not committed is redelivered later).
 */
#include "config.h"
#include "consumer.h"
#include "kafka_compat.h"
#include "kafka_probe.h"
#include "log.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "thopter-consumer"

/* librdkafka 2.0.2 can hang in rd_kafka_destroy after a broker went down and
 * came back (librdkafka #4674): the work is done and committed by then, so
 * if freeing the handles takes longer than this the process ends anyway,
 * with the status it earned. */
#define TEARDOWN_TIMEOUT_S 15
/* How long the start-up check of the brokers' features may take when no
 * broker answers (kafka_probe.h). */
#define PROBE_TIMEOUT_MS 5000
/* Beyond the drain timeout, how long a stop may take before exiting. */
#define STOP_GRACE_S 20

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

/* Non-zero when @p sig is a stop signal. */
static int is_stop(int sig) {
        return sig == SIGTERM || sig == SIGINT;
}

/* Wait for a signal, or for every loop to end on its own. */
static void wait_for_stop(struct consumer *c, sigset_t *sigs) {
        for (;;) {
                struct timespec ts = {1, 0};
                int sig = sigtimedwait(sigs, NULL, &ts);
                if (!consumer_running(c))
                        return;
                if (is_stop(sig)) {
                        log_info("main",
                                 "%s: stopping gracefully (again to exit at "
                                 "once)",
                                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
                        return;
                }
        }
}

/* Let the loops drain; a second signal, or a drain that overruns, exits at
 * once: what was not committed is redelivered later. */
static void wait_for_drain(struct consumer *c, sigset_t *sigs, int drain_s) {
        time_t give_up = time(NULL) + drain_s + STOP_GRACE_S;
        while (consumer_running(c)) {
                struct timespec ts = {0, 200 * 1000000L};
                int sig = sigtimedwait(sigs, NULL, &ts);
                if (is_stop(sig) || time(NULL) > give_up) {
                        log_warn("main",
                                 "%s: exiting now; uncommitted work will be "
                                 "redelivered",
                                 sig > 0 ? "second signal"
                                         : "shutdown took too long");
                        _exit(1);
                }
        }
}

static int usage_or_info(struct config *cfg, int argc, char **argv) {
        struct err err = {0};

        if (config_load(cfg, argc, argv, &err) == -1) {
                /* Every missing setting at once, one line each. */
                if (cfg->n_missing > 1)
                        for (int i = 0; i < cfg->n_missing; i++)
                                fprintf(stderr, PROG ": %s\n", cfg->missing[i]);
                else
                        fprintf(stderr, PROG ": %s\n", err.msg);
                return 2;
        }
        if (cfg->show_help) {
                config_print_help(stdout, PROG);
                return 0;
        }
        if (cfg->show_version) {
                printf(PROG " %s (librdkafka %s)\n", THOPTER_VERSION,
                       rd_kafka_version_str());
                return 0;
        }
        return -1;
}

int main(int argc, char **argv) {
        struct config cfg;
        struct err err = {0};
        struct consumer *c = NULL;
        int status = 1;
        sigset_t sigs;

        int rc = usage_or_info(&cfg, argc, argv);
        if (rc >= 0) {
                config_free(&cfg);
                return rc;
        }
        enum log_level lvl = LOG_INFO;
        log_level_parse(cfg.log_level, &lvl);
        log_set_level(lvl);
        if (cfg.ssh_insecure && cfg.role != ROLE_DESTROY)
                log_warn("main",
                         "THOPTER_SSH_INSECURE=1: any SSH host key is "
                         "accepted, so anyone on the path to a thopter can "
                         "pose as it and receive its secrets; for "
                         "development only");
        /* A Kafka setting this librdkafka cannot carry out on current
         * brokers (kafka_compat.h): said once, at start. */
        const char *kafka_warning = kafka_compat_warning(
            cfg.kafka_props, cfg.n_kafka_props, rd_kafka_version());
        if (kafka_warning)
                log_warn("kafka", "%s", kafka_warning);
        /* A setting that starts but cannot work on fly: said once, at start. */
        const char *port_warning = config_ssh_port_warning(&cfg);
        if (port_warning && cfg.role != ROLE_DESTROY)
                log_warn("config", "%s", port_warning);

        /* Signals go to the main thread only: block them before any thread. */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* Contract 5.14: a broker without record headers is refused at
         * start, with one line (exit 2: restarting cannot help). */
        if (kafka_probe_headers(cfg.kafka_brokers, cfg.kafka_props,
                                cfg.n_kafka_props, PROBE_TIMEOUT_MS,
                                &err) == -1) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                config_free(&cfg);
                return 2;
        }
        c = consumer_new(&cfg, &err);
        if (!c)
                goto out;
        if (consumer_start(c, &err) == 0) {
                log_info("main",
                         PROG " %s started: role %s, brokers %s, fly API %s, "
                              "app %s",
                         THOPTER_VERSION, config_role_name(cfg.role),
                         cfg.kafka_brokers, cfg.fly_api_base, cfg.app_name);
                wait_for_stop(c, &sigs);
        }
        consumer_stop(c);
        wait_for_drain(c, &sigs, cfg.drain_timeout_s);
        switch (consumer_join(c)) {
        case CONSUMER_STUCK:
                /* Workers still inside remote calls use the producer and the
                 * fly client: exit without freeing them. Nothing uncommitted
                 * is lost. */
                log_warn("main", "exiting with work still in remote calls; "
                                 "uncommitted requests will be redelivered");
                _exit(1);
        case CONSUMER_ABANDONED:
                status = 1;
                break;
        case CONSUMER_CLEAN:
                status = err.kind == ERR_NONE ? 0 : 1;
                break;
        }
        teardown_status = status;
        signal(SIGALRM, on_teardown_timeout);
        alarm(TEARDOWN_TIMEOUT_S);
out:
        if (err.kind != ERR_NONE) {
                fprintf(stderr, PROG ": %s\n", err.msg);
                status = 1;
        }
        consumer_destroy(c);
        config_free(&cfg);
        if (status == 0)
                log_info("main", "stopped cleanly");
        return status;
}
