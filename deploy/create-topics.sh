#!/usr/bin/env bash
# create-topics.sh - create the four topics of the contract (docs/CONTRACT.md
# section 1) on a real Kafka cluster with Apache Kafka's kafka-topics.sh.
#
# Safe to run again: --if-not-exists leaves existing topics as they are (it
# does not change their partition count or settings; see OPERATIONS.md).
#
#   deploy/create-topics.sh --bootstrap-server broker:9092
#   deploy/create-topics.sh --bootstrap-server b:9093 --command-config client.properties  # SASL/SSL
#   deploy/create-topics.sh --dry-run ...          # print the commands, run nothing
#
# Topic names follow THOPTER_PROVISION_TOPIC, THOPTER_DESTROY_TOPIC,
# THOPTER_DLQ_TOPIC and THOPTER_EVENTS_TOPIC when set, as the consumer does.
# SASL credentials belong in the --command-config file, never on this
# command line.
set -euo pipefail

usage() {
    cat <<'USAGE'
Usage: create-topics.sh --bootstrap-server HOST:PORT [options]

Creates (if missing):
  thopter.provision  1 partition   (provisioning stays serial across instances)
  thopter.destroy    6 partitions
  thopter.dlq        1 partition   retention.ms=2592000000 (30 days)
  thopter.events     3 partitions

Options:
  --bootstrap-server B     Kafka bootstrap servers (or KAFKA_BROKERS)
  --command-config FILE    client properties for kafka-topics.sh (SASL/SSL)
  --replication-factor N   replicas per partition (default: the broker's
                           default.replication.factor)
  --dlq-retention-ms MS    dead-letter retention (default 2592000000; -1 = forever)
  --kafka-topics PATH      the kafka-topics.sh to run (default: kafka-topics.sh
                           on PATH, else $KAFKA_HOME/bin/kafka-topics.sh)
  --dry-run                print the commands instead of running them
  -h, --help               this text

Exit status: 0 on success, 1 if a command failed, 2 on bad usage.
USAGE
}

die_usage() {
    echo "create-topics.sh: $1 (see --help)" >&2
    exit 2
}

bootstrap=${KAFKA_BROKERS:-}
command_config=""
replication=""
dlq_retention_ms=2592000000
kafka_topics=""
dry_run=0

while [ $# -gt 0 ]; do
    case "$1" in
    --bootstrap-server | -b)
        [ $# -ge 2 ] || die_usage "$1 needs a value"
        bootstrap=$2
        shift 2
        ;;
    --bootstrap-server=*) bootstrap=${1#*=}; shift ;;
    --command-config)
        [ $# -ge 2 ] || die_usage "$1 needs a value"
        command_config=$2
        shift 2
        ;;
    --command-config=*) command_config=${1#*=}; shift ;;
    --replication-factor)
        [ $# -ge 2 ] || die_usage "$1 needs a value"
        replication=$2
        shift 2
        ;;
    --replication-factor=*) replication=${1#*=}; shift ;;
    --dlq-retention-ms)
        [ $# -ge 2 ] || die_usage "$1 needs a value"
        dlq_retention_ms=$2
        shift 2
        ;;
    --dlq-retention-ms=*) dlq_retention_ms=${1#*=}; shift ;;
    --kafka-topics)
        [ $# -ge 2 ] || die_usage "$1 needs a value"
        kafka_topics=$2
        shift 2
        ;;
    --kafka-topics=*) kafka_topics=${1#*=}; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die_usage "unknown argument \"$1\"" ;;
    esac
done

[ -n "$bootstrap" ] || die_usage "--bootstrap-server (or KAFKA_BROKERS) is required"
if [ -n "$replication" ] && ! [[ "$replication" =~ ^[1-9][0-9]*$ ]]; then
    die_usage "--replication-factor must be a positive integer"
fi
if ! [[ "$dlq_retention_ms" =~ ^(-1|[1-9][0-9]*)$ ]]; then
    die_usage "--dlq-retention-ms must be -1 or a positive integer"
fi
if [ -n "$command_config" ] && [ "$dry_run" -eq 0 ] && [ ! -r "$command_config" ]; then
    die_usage "--command-config: cannot read $command_config"
fi
if [ -z "$kafka_topics" ]; then
    if command -v kafka-topics.sh >/dev/null 2>&1; then
        kafka_topics=kafka-topics.sh
    elif [ -n "${KAFKA_HOME:-}" ] && [ -x "$KAFKA_HOME/bin/kafka-topics.sh" ]; then
        kafka_topics=$KAFKA_HOME/bin/kafka-topics.sh
    elif [ "$dry_run" -eq 1 ]; then
        kafka_topics=kafka-topics.sh
    else
        echo "create-topics.sh: kafka-topics.sh not found: put Apache Kafka's bin/ on PATH," \
            "set KAFKA_HOME, or pass --kafka-topics PATH" >&2
        exit 1
    fi
fi

# name partitions [config...]
topics=(
    "${THOPTER_PROVISION_TOPIC:-thopter.provision} 1"
    "${THOPTER_DESTROY_TOPIC:-thopter.destroy} 6"
    "${THOPTER_DLQ_TOPIC:-thopter.dlq} 1 retention.ms=$dlq_retention_ms"
    "${THOPTER_EVENTS_TOPIC:-thopter.events} 3"
)

status=0
for spec in "${topics[@]}"; do
    read -r name partitions configs <<<"$spec"
    cmd=("$kafka_topics" --bootstrap-server "$bootstrap")
    [ -z "$command_config" ] || cmd+=(--command-config "$command_config")
    cmd+=(--create --if-not-exists --topic "$name" --partitions "$partitions")
    [ -z "$replication" ] || cmd+=(--replication-factor "$replication")
    for c in $configs; do
        cmd+=(--config "$c")
    done
    if [ "$dry_run" -eq 1 ]; then
        printf '%q' "${cmd[0]}"
        printf ' %q' "${cmd[@]:1}"
        echo
        continue
    fi
    echo "create-topics.sh: $name ($partitions partition(s)${configs:+, $configs})" >&2
    if ! "${cmd[@]}"; then
        echo "create-topics.sh: creating $name failed" >&2
        status=1
    fi
done
[ "$dry_run" -eq 1 ] || [ "$status" -ne 0 ] || echo "create-topics.sh: done (check with kafka-topics.sh --describe)" >&2
exit "$status"
