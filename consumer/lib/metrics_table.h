/* metrics_table.h - every metric of the consumer, declared once: its id,
 * its Prometheus name, type and help. metrics.c renders HELP/TYPE from here,
 * `--help`'s neighbours (docs/OPERATIONS.md, deploy/prometheus/) name these,
 * and the tests check that each name on /metrics comes from this table.
 *
 * To add a metric: add a row here, then call metrics_inc/set/observe with
 * its id. Labels are low-cardinality only (topic, class, route, status,
 * outcome): never a request or machine id.
 *
 * Callers: metrics.h (and through it every module that counts).
 */
#ifndef THOPTER_METRICS_TABLE_H
#define THOPTER_METRICS_TABLE_H

/* clang-format off */
#define METRICS_TABLE(X)                                                      \
  /* Kafka loops (label topic) */                                            \
  X(M_IN_FLIGHT, "thopter_in_flight", GAUGE,                                 \
    "Requests being worked on")                                              \
  X(M_PAUSED, "thopter_paused", GAUGE,                                       \
    "1 while the loop's partitions are paused")                              \
  X(M_MESSAGES_RECEIVED, "thopter_messages_received_total", COUNTER,         \
    "Records received from Kafka")                                           \
  X(M_MESSAGES_FINISHED, "thopter_messages_finished_total", COUNTER,         \
    "Records finished (completed, or dead letter acknowledged)")             \
  X(M_DEAD_LETTER_SEND_FAILURES, "thopter_dead_letter_send_failures_total",  \
    COUNTER, "Dead-letter sends that failed (their offsets stay "            \
    "uncommitted)")                                                          \
  X(M_EVENT_SEND_FAILURES, "thopter_event_send_failures_total", COUNTER,     \
    "Final status events not acknowledged (their offsets stay "              \
    "uncommitted)")                                                          \
  X(M_REBALANCES, "thopter_rebalances_total", COUNTER,                       \
    "Rebalance callbacks")                                                   \
  X(M_COMMIT_FAILURES, "thopter_commit_failures_total", COUNTER,             \
    "Offset commits that failed")                                            \
  X(M_LAST_COMMIT_TIMESTAMP, "thopter_last_commit_timestamp_seconds", GAUGE, \
    "Unix time of the last offset commit the broker confirmed")              \
  X(M_JOB_DURATION, "thopter_job_duration_seconds", HISTOGRAM,               \
    "Time to work one request")                                              \
  /* Outcomes (labels kind, outcome / topic, class) */                       \
  X(M_REQUESTS, "thopter_requests_total", COUNTER,                           \
    "Requests by outcome")                                                   \
  X(M_DEAD_LETTERS, "thopter_dead_letters_total", COUNTER,                   \
    "Dead letters by class")                                                 \
  X(M_PRODUCE_ERRORS, "thopter_produce_errors_total", COUNTER,               \
    "Records the broker did not acknowledge (they are retried or "           \
    "redelivered)")                                                          \
  /* fly API (labels route, status) */                                       \
  X(M_FLY_REQUESTS, "thopter_fly_requests_total", COUNTER,                   \
    "Machines API requests by route and HTTP status (\"error\": no "         \
    "response)")                                                             \
  X(M_FLY_REQUEST_DURATION, "thopter_fly_request_duration_seconds",          \
    HISTOGRAM, "Machines API request duration by route")                     \
  X(M_FLY_RETRIES, "thopter_fly_retries_total", COUNTER,                     \
    "fly API calls retried after a transient failure")                       \
  X(M_CIRCUIT_OPEN, "thopter_circuit_open", GAUGE,                           \
    "1 while the fly API circuit breaker is open")                           \
  X(M_CIRCUIT_OPENED, "thopter_circuit_opened_total", COUNTER,               \
    "Times the fly API circuit breaker opened")                              \
  X(M_CIRCUIT_PROBES, "thopter_circuit_probes_total", COUNTER,               \
    "Probes of the fly API by the circuit breaker, by result")               \
  /* SSH */                                                                  \
  X(M_SSH_CONNECTIONS, "thopter_ssh_connections_total", COUNTER,             \
    "SSH connection attempts, by result")                                    \
  X(M_SSH_COMMANDS, "thopter_ssh_commands_total", COUNTER,                   \
    "Commands started on remote hosts over SSH")                             \
  X(M_PROVISION_SSH_CONNECTIONS, "thopter_provision_ssh_connections_total",  \
    COUNTER, "SSH connections opened by provisioning")                       \
  X(M_SSH_STEP_RETRIES, "thopter_ssh_step_retries_total", COUNTER,           \
    "Remote steps run again on a new connection after the old one dropped")  \
  X(M_GOLDEN_CLAUDE_COPIES, "thopter_golden_claude_copies_total", COUNTER,   \
    "Golden Claude copies by outcome: copied, or why none was made "         \
    "(not_running, host_key, unreachable, copy_failed)")                     \
  /* Per scrape (health_server.c) */                                         \
  X(M_POLL_AGE, "thopter_poll_age_seconds", GAUGE,                           \
    "Seconds since each Kafka loop last polled")                             \
  X(M_READY, "thopter_ready", GAUGE,                                         \
    "1 when the loop is ready (what /readyz checks), 0 when not")            \
  X(M_CONSUMER_LAG, "thopter_consumer_lag", GAUGE,                           \
    "Records not yet committed per assigned partition (high watermark - "    \
    "committed offset; 0 for a partition this instance no longer owns)")     \
  X(M_SECONDS_SINCE_LAST_COMMIT, "thopter_seconds_since_last_commit", GAUGE, \
    "Seconds since the broker last confirmed an offset commit of the topic " \
    "(since start when none yet)")                                           \
  X(M_BUILD_INFO, "thopter_build_info", GAUGE,                               \
    "Always 1; labels carry the versions")
/* clang-format on */

#define METRICS_ID_(id, name, type, help) id,
enum metrics_id { METRICS_TABLE(METRICS_ID_) METRICS__COUNT };
#undef METRICS_ID_

#endif
