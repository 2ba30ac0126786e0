#!/usr/bin/env bash
# fetch-kafka.sh - puts Apache Kafka (broker and CLI tools, the version pinned
# in deploy/kafka/pom.xml) into a cache folder, laid out like Kafka's own
# distribution, so that tests, benchmarks and deploy/create-topics.sh can run
# the real thing:
#
#   $THOPTER_KAFKA_HOME/libs/*.jar           from Maven Central
#   $THOPTER_KAFKA_HOME/bin/kafka-*.sh       launchers written by this script
#   $THOPTER_KAFKA_HOME/config/log4j2.properties
#
# THOPTER_KAFKA_HOME defaults to ~/.cache/thopter/kafka-<version>. Safe to run
# twice: when the cache is complete nothing is downloaded. Prints the folder
# on its last line. Needs Java 17+ and Maven (deploy/setup.sh installs both).
set -euo pipefail

KAFKA_VERSION=4.1.1
here=$(cd "$(dirname "$0")" && pwd)
home=${THOPTER_KAFKA_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/thopter/kafka-$KAFKA_VERSION}

case "${1:-}" in
-h | --help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
"") ;;
*)
    echo "fetch-kafka.sh: unknown argument \"$1\" (see --help)" >&2
    exit 2
    ;;
esac

pinned=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
if [ "$pinned" != "$KAFKA_VERSION" ]; then
    echo "fetch-kafka.sh: pom.xml pins Kafka $pinned but this script says $KAFKA_VERSION" >&2
    exit 1
fi

stamp="$home/.complete"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$KAFKA_VERSION" ] &&
    [ -f "$home/libs/kafka_2.13-$KAFKA_VERSION.jar" ]; then
    echo "fetch-kafka.sh: Kafka $KAFKA_VERSION already in $home" >&2
    echo "$home"
    exit 0
fi

for tool in java mvn; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "fetch-kafka.sh: $tool not found (deploy/setup.sh installs it)" >&2
        exit 1
    }
done

echo "fetch-kafka.sh: fetching Kafka $KAFKA_VERSION from Maven Central into $home" >&2
rm -rf "$home.partial"
mkdir -p "$home.partial/libs" "$home.partial/bin" "$home.partial/config"
mvn -B -q -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$home.partial/libs" >&2

# One launcher per tool, each a class of the jars above (the class names are
# those of Kafka's own bin/*.sh at the pinned release).
launcher() { # name class [default JVM heap]
    cat >"$home.partial/bin/$1" <<SH
#!/bin/sh
# $1: Apache Kafka $KAFKA_VERSION's $2, from the jars beside this folder.
# Written by deploy/kafka/fetch-kafka.sh.
home=\$(cd "\$(dirname "\$0")/.." && pwd)
exec java \${KAFKA_HEAP_OPTS:-$3} \${KAFKA_OPTS:-} \\
    -Dlog4j2.configurationFile="\${KAFKA_LOG4J_CONFIG:-\$home/config/log4j2.properties}" \\
    -cp "\$home/libs/*" $2 "\$@"
SH
    chmod +x "$home.partial/bin/$1"
}
launcher kafka-server-start.sh kafka.Kafka "-Xmx1G -Xms256m"
launcher kafka-storage.sh kafka.tools.StorageTool "-Xmx256m"
launcher kafka-topics.sh org.apache.kafka.tools.TopicCommand "-Xmx256m"
launcher kafka-consumer-groups.sh org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "-Xmx256m"
launcher kafka-configs.sh kafka.admin.ConfigCommand "-Xmx256m"
launcher kafka-get-offsets.sh org.apache.kafka.tools.GetOffsetShell "-Xmx256m"
launcher kafka-metadata-quorum.sh org.apache.kafka.tools.MetadataQuorumCommand "-Xmx256m"

# The tools log warnings and errors to stderr; the broker's own log file is
# set by whoever starts it (KAFKA_LOG4J_CONFIG), see tests/harness/kafka_cluster.py.
cat >"$home.partial/config/log4j2.properties" <<'PROPS'
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
PROPS

echo "$KAFKA_VERSION" >"$home.partial/.complete"
rm -rf "$home"
mv "$home.partial" "$home"
echo "fetch-kafka.sh: Kafka $KAFKA_VERSION ready in $home ($(du -sh "$home" | cut -f1))" >&2
echo "$home"
