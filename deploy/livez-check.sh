#!/bin/bash
# thopter-livez-check: exit 0 when thopter-consumer's /livez answers 200.
# For container HEALTHCHECKs on images without curl: bash's /dev/tcp only.
# Reads THOPTER_METRICS_ADDR (IPV4:PORT or [IPV6]:PORT) like the consumer;
# an unspecified address (0.0.0.0, [::]) is checked on loopback.
set -u
addr=${THOPTER_METRICS_ADDR:-127.0.0.1:9464}
port=${addr##*:}
host=${addr%:*}
host=${host#[}
host=${host%]}
case "$host" in
"" | 0.0.0.0 | ::) host=127.0.0.1 ;;
esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /livez HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
IFS= read -r -t 4 status <&3 || exit 1
case "$status" in
"HTTP/1."?" 200 "*) exit 0 ;;
*) exit 1 ;;
esac
