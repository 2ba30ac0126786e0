#!/usr/bin/env bash
# Installs everything this project needs to build, run and test on Debian 12.
# Safe to run twice. Run as root (or with sudo available).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
    build-essential cmake pkg-config git ca-certificates
    librdkafka-dev kcat libcjson-dev libssh2-1-dev libcurl4-openssl-dev libssl-dev
    zlib1g-dev libzstd-dev
    libcriterion-dev libmicrohttpd-dev
    openssh-server openssh-client tmux procps
    python3 python3-confluent-kafka
    shellcheck valgrind clang libclang-rt-14-dev clang-format
    prometheus
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "setup: all Debian packages present"
fi

# Node.js and npm run the JSON Schema validator of the tests. Some images ship
# a Node.js whose package already contains npm (and conflicts with Debian's).
if ! command -v npm >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm
fi

# Java and Maven fetch and run the real Apache Kafka cluster of the realkafka
# tests and Kafka's own tools (deploy/kafka/). Some images ship their own JDK
# and Maven on PATH; Debian's are installed only where none is.
jdk=()
command -v java >/dev/null 2>&1 || jdk+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || jdk+=(maven)
if [ "${#jdk[@]}" -gt 0 ]; then
    echo "setup: installing ${jdk[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${jdk[@]}"
fi
# Apache Kafka's jars from Maven Central into a cache folder (nothing is
# downloaded when it is already there).
bash "$here/deploy/kafka/fetch-kafka.sh" >/dev/null

# sshd refuses to start without its privilege separation directory, which
# systemd would normally create.
$SUDO mkdir -p /run/sshd

# Test tools from npm (the JSON Schema validator), pinned by package-lock.json.
if [ -f "$here/tests/tools/package.json" ] && [ ! -d "$here/tests/tools/node_modules" ]; then
    echo "setup: npm install in tests/tools"
    (cd "$here/tests/tools" && npm install --no-audit --no-fund --loglevel=error)
fi
# The hub's package (producer-tools/hub): exactly what its package-lock.json
# pins; npm ci only when something is missing or its Kafka client does not
# load, from npm's cache when it can. The client, @confluentinc/kafka-javascript,
# is built here from the source its npm tarball carries (librdkafka included),
# with the registry alone (producer-tools/hub/README.md, "The Kafka client"):
#   npm_config_build_from_source  skip the prebuilt binary (its host is not the registry)
#   npm_config_nodedir            the installed Node.js headers (node-gyp would download them)
#   CKJS_LINKING=dynamic          link the system's zlib, zstd, OpenSSL and libcurl
#                                 (the default downloads their sources)
#   MAKEFLAGS=-l<cores>           its gyp file runs `make -j` with no limit, which
#                                 neither JOBS nor MAKEFLAGS=-jN can cap (a -j on
#                                 the command line wins); a load limit does
# JOBS is unset: node-gyp's parallel make (JOBS=2) fails in the gyp Makefile
# ("No rule to make target '../deps/librdkafka/config.h'").
hub="$here/producer-tools/hub"
if [ -f "$hub/package-lock.json" ] && ! (cd "$hub" && npm ls --depth=0 >/dev/null 2>&1 &&
        node -e "require('@confluentinc/kafka-javascript')" >/dev/null 2>&1); then
    nodedir=$(node -p "require('path').resolve(process.execPath, '..', '..')")
    [ -f "$nodedir/include/node/node.h" ] || { echo "setup: no Node.js headers in $nodedir/include/node" >&2; exit 1; }
    echo "setup: npm ci in producer-tools/hub (builds librdkafka for @confluentinc/kafka-javascript: ~100 CPU-seconds)"
    (cd "$hub" && env -u JOBS npm_config_build_from_source=true npm_config_nodedir="$nodedir" CKJS_LINKING=dynamic \
        MAKEFLAGS="-l$(nproc)" nice npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
fi
echo "setup: done"
