"""Helpers for tests of the producer tools: thopter-send, thopter-dlq and
producer-tools/bulk-destroy, run as real processes."""
import os
import subprocess

from thopter_harness import SANITIZER_RE, SOURCE_DIR, binary, tmo

BULK_DESTROY = os.path.join(SOURCE_DIR, "producer-tools", "bulk-destroy")


def tool_path(name):
    """thopter-send / thopter-dlq from the build, bulk-destroy from the source tree."""
    return BULK_DESTROY if name == "bulk-destroy" else binary(name)


def tool_env(extra=None):
    """The environment minus the caller's Kafka and thopter settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("THOPTER_", "KAFKA_", "FLY_"))}
    env["ASAN_OPTIONS"] = "detect_leaks=1"
    env.update(extra or {})
    return env


def run_tool(name, args, input=None, env=None, timeout=30, check_sanitizer=True):
    """Runs a tool to completion; returns subprocess.CompletedProcess (text)."""
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run([tool_path(name)] + list(args), input=input, env=tool_env(env),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=tmo(timeout))
    out = subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(errors="replace"),
                                      p.stderr.decode(errors="replace"))
    if check_sanitizer and SANITIZER_RE.search(out.stderr):
        raise AssertionError("sanitizer report from %s:\n%s" % (name, out.stderr))
    return out


def murmur2_partition(key, partitions):
    """The partition Java's (and kafkajs', and librdkafka's murmur2_random)
    default partitioner picks for a non-empty @key (bytes)."""
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    length = len(key)
    h = (seed ^ length) & 0xFFFFFFFF
    i = 0
    while length - i >= 4:
        k = key[i] | key[i + 1] << 8 | key[i + 2] << 16 | key[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
        i += 4
    rest = length - i
    if rest == 3:
        h ^= key[i + 2] << 16
    if rest >= 2:
        h ^= key[i + 1] << 8
    if rest >= 1:
        h ^= key[i]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions
