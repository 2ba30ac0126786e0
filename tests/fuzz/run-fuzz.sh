#!/usr/bin/env bash
# run-fuzz.sh - build the libFuzzer targets of tests/fuzz and run each one for
# a bounded time. See tests/fuzz/README.md.
#
#   tests/fuzz/run-fuzz.sh [--seconds N] [--runs N] [--target NAME]...
#
# Builds with clang -fsanitize=fuzzer,address,undefined straight from the
# consumer/lib sources each target needs (no CMake), seeds build/fuzz/corpus/
# from schemas/examples and a set of hostile payloads, runs each target for
# N seconds (default 60; with --runs, until N executions or N seconds, whichever
# comes first), prints executions, exec/s and corpus size, and exits
# non-zero on any crash, leak, timeout or out-of-memory, naming the
# reproducer under build/fuzz/artifacts/.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${THOPTER_FUZZ_OUT:-$root/build/fuzz}
seconds=60
runs=
targets=()

usage() {
        sed -n '2,14s/^# \{0,1\}//p' "$0"
}

while [ $# -gt 0 ]; do
        case "$1" in
        --seconds)
                [ $# -ge 2 ] || { usage >&2; exit 2; }
                seconds=$2
                shift 2
                ;;
        --seconds=*)
                seconds=${1#--seconds=}
                shift
                ;;
        --runs)
                [ $# -ge 2 ] || { usage >&2; exit 2; }
                runs=$2
                shift 2
                ;;
        --target)
                [ $# -ge 2 ] || { usage >&2; exit 2; }
                targets+=("$2")
                shift 2
                ;;
        -h | --help)
                usage
                exit 0
                ;;
        *)
                echo "run-fuzz: unknown argument: $1" >&2
                usage >&2
                exit 2
                ;;
        esac
done
case "$seconds" in
'' | *[!0-9]* | 0)
        echo "run-fuzz: --seconds wants a positive whole number, not '$seconds'" >&2
        exit 2
        ;;
esac
case "$runs" in
'' | *[!0-9]*)
        [ -z "$runs" ] || {
                echo "run-fuzz: --runs wants a whole number, not '$runs'" >&2
                exit 2
        }
        ;;
esac
all_targets=(fuzz_request fuzz_json_strict fuzz_shell_quote fuzz_fly_json
        fuzz_http_header fuzz_known_hosts)
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

CC=${CC:-clang}
if ! command -v "$CC" >/dev/null 2>&1; then
        echo "run-fuzz: $CC not found (Debian: clang, libclang-rt-14-dev)" >&2
        exit 3
fi

# The consumer/lib sources each target is linked from.
sources_of() {
        case "$1" in
        fuzz_request) echo "request.c json_strict.c err.c log.c clock.c" ;;
        fuzz_json_strict) echo "json_strict.c" ;;
        fuzz_shell_quote) echo "shell_quote.c" ;;
        fuzz_fly_json) echo "fly_json.c err.c log.c clock.c secret.c" ;;
        fuzz_http_header) echo "http.c dynbuf.c err.c log.c clock.c" ;;
        fuzz_known_hosts) echo "known_hosts.c" ;;
        *) return 1 ;;
        esac
}

# The longest input each target is given: past the 512 KiB payload cap for
# the request parser and shell quoting; for what a server sends, long enough
# for every shape that matters (the memory caps of fly_json are unit-tested
# with 4 MiB bodies), short enough for millions of executions. The same for
# the strict JSON scan, whose reference duplicate search is quadratic (its
# size limits are the request parser's, fuzzed above).
max_len_of() {
        case "$1" in
        fuzz_fly_json | fuzz_http_header | fuzz_known_hosts | fuzz_json_strict)
                echo 4096
                ;;
        *) echo 600000 ;;
        esac
}

# The pkg-config packages each target links.
packages_of() {
        case "$1" in
        fuzz_http_header) echo "libcjson libcurl" ;;
        fuzz_known_hosts | fuzz_fly_json) echo "libcjson libcrypto" ;;
        *) echo "libcjson" ;;
        esac
}

mkdir -p "$out/bin" "$out/corpus" "$out/artifacts" "$out/logs"

# ---------------------------------------------------------------- build

build() {
        local name=$1 srcs=() f
        local cflags=(-g -O1 "-fsanitize=fuzzer,address,undefined"
                -fno-sanitize-recover=all -fno-omit-frame-pointer
                -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
                '-DTHOPTER_VERSION="fuzz"'
                -Wall -Wextra -I"$root/consumer/lib")
        local pc_cflags pc_libs

        for f in $(sources_of "$name"); do
                srcs+=("$root/consumer/lib/$f")
        done
        # shellcheck disable=SC2046 # a list of package names
        pc_cflags=$(pkg-config --cflags $(packages_of "$name"))
        # shellcheck disable=SC2046
        pc_libs=$(pkg-config --libs $(packages_of "$name"))
        # shellcheck disable=SC2086 # pkg-config output is a list of words
        if ! "$CC" "${cflags[@]}" $pc_cflags -o "$out/bin/$name" \
                "$root/tests/fuzz/$name.c" "$root/tests/fuzz/fuzz_common.c" \
                "${srcs[@]}" $pc_libs -lm \
                2>"$out/logs/$name.build.log"; then
                cat "$out/logs/$name.build.log" >&2
                if grep -q 'libclang_rt.fuzzer' "$out/logs/$name.build.log"; then
                        echo "run-fuzz: $CC has no libFuzzer runtime" \
                                "(Debian: libclang-rt-14-dev)" >&2
                        exit 3
                fi
                echo "run-fuzz: building $name failed" >&2
                exit 1
        fi
        cat "$out/logs/$name.build.log" >&2
}

# ---------------------------------------------------------------- seeds

# rep STR N: STR N times
rep() {
        local i
        for ((i = 0; i < $2; i++)); do printf '%s' "$1"; done
}

# seed DIR NAME: the bytes of stdin become DIR/seed-NAME
seed() {
        cat >"$1/seed-$2"
}

# shellcheck disable=SC2016 # the $( and backticks are payload bytes
seed_request() {
        local dir=$1 f n=0 big
        local tid='"thopterId":"148e21a3c96989"'
        local prov='"requestId":"r-1","repository":"o/n","github":{"issueNumber":"1","issueTitle":"t","issueBody":"b"'

        while IFS= read -r -d '' f; do
                cp "$f" "$dir/seed-example-$(basename "$f")"
                n=$((n + 1))
        done < <(find "$root/schemas/examples" -name '*.json' -print0)

        # the hostile shapes of tests/unit/test_request_hostile*.c, small
        printf '{%s,"x":%s1%s}' "$tid" "$(rep '[' 63)" "$(rep ']' 63)" | seed "$dir" nest-64
        printf '{%s,"x":%s}' "$tid" "$(rep '[' 200)" |
                seed "$dir" nest-deep
        printf '{%s,"x":%s0%s}' "$tid" "$(rep '{"a":' 64)" "$(rep '}' 64)" | seed "$dir" nest-obj
        printf '{%s,"x":{"a":1,"b":{"c":[{"d":1,"\\u0064":2}]}}}' "$tid" |
                seed "$dir" dup-deep
        printf '{%s,"thopterId":"148e21a3c96989"}' "$tid" | seed "$dir" dup-top
        printf '{%s,"reason":"$(id) `id` ;|&><\\"'"'"' \\n../..\\u0000"}' "$tid" |
                seed "$dir" meta-reason
        printf '{"thopterId":"148e21a3c9698$(id)"}' | seed "$dir" meta-tid
        printf '{"requestId":"$(id)","repository":"../..","github":{"issueNumber":1,"issueTitle":"`id`","issueBody":";|&><"},"gc":"a;b","prompt":"../x"}' |
                seed "$dir" meta-provision
        printf '{%s},"gc":"default","prompt":"p_1","github2":null}' "$prov" |
                seed "$dir" provision-small
        printf '{%s,"comments":[{"id":1,"author":"a","body":"b","createdAt":"c","updatedAt":"u","url":"x"}],"mentionLocation":"comment","mentionCommentId":4.2e1}}' "$prov" |
                seed "$dir" provision-comments
        printf '{%s,"reason":"\xc3\xa9\xe6\x97\xa5\xf0\x9f\x9a\x80\\ud83d\\ude80\xc0\xaf\xed\xa0\x80"}' "$tid" |
                seed "$dir" utf8
        printf '{%s,"x":[0,-0,1.5e300,-2E-10,01,1.,+1,NaN,true,false,null]}' "$tid" |
                seed "$dir" numbers
        big=$(rep a 2000)
        printf '{"requestId":"%s",%s}' "$big" "$tid" | seed "$dir" long-id
        echo "$n"
}

# The strict JSON scan: one seed per rule, on both sides of it (valid
# escapes, numbers and nesting; leading zeros, lone surrogates, overlong and
# cut UTF-8, raw control bytes, a BOM, trailing text, duplicate keys deep).
seed_json_strict() {
        local dir=$1
        printf '{"a":[1,-0.5e+3,1E-2,true,false,null,"x"],"b":{}}' | seed "$dir" valid
        printf ' \t\r\n[] ' | seed "$dir" ws
        printf '"\\ud83d\\ude80 \\u00e9 \\" \\\\ \\/ \\b\\f\\n\\r\\t"' | seed "$dir" escapes
        printf '"\xc3\xa9\xe2\x82\xac\xf0\x9f\x9a\x80"' | seed "$dir" utf8
        printf '{"a":"x\\u0000y"}' | seed "$dir" nul-escape
        printf '%s1%s' "$(rep '[' 64)" "$(rep ']' 64)" | seed "$dir" nest-64
        printf '%s1%s' "$(rep '{"a":[' 33)" "$(rep ']}' 33)" | seed "$dir" nest-66
        printf '[01,+1,1.,1e,-]' | seed "$dir" numbers
        printf '["\\udc00","\\ud800x","\\ud800\\u0041"]' | seed "$dir" surrogates
        printf '["\xc0\xaf","\xed\xa0\x80","\xf4\x90\x80\x80","\xe2\x82"]' | seed "$dir" bad-utf8
        printf '["a\tb","\\x"]' | seed "$dir" control
        printf '\xef\xbb\xbf{}' | seed "$dir" bom
        printf '{} {}' | seed "$dir" trailing
        printf '{"x":{"y":[0,{"k":1,"k":2}]},"z":1}' | seed "$dir" dup-deep
        printf '{"b":1,"a":2,"b":3}' | seed "$dir" dup-top
}

# shellcheck disable=SC2016 # the $( and backticks are payload bytes
seed_shell_quote() {
        local dir=$1
        printf '' | seed "$dir" empty
        printf "it's" | seed "$dir" quote
        printf "'\\\\''" | seed "$dir" quote-escape
        printf '$(touch pwned) `id` ${x:-$(id)}' | seed "$dir" subst
        printf 'a\nb\t; | & && || < > >> 2>&1 #' | seed "$dir" meta
        printf '"double" '"'"'single'"'"' \\\\ !! * ? ~ [a-z]' | seed "$dir" mixed
        printf '\xc3\xbcn\xc3\xafc\xc3\xb8d\xc3\xa9 \x01\x1b[31m\x7f\xfe\xff' | seed "$dir" bytes
        printf -- '-rf' | seed "$dir" dash
        printf '..' | seed "$dir" dotdot
        printf 'thopter_user-1.x' | seed "$dir" name
}

# The fly API's answers: the canned bodies of tests/data/fly, and shapes a
# hostile server would send (tiny-value floods, deep nesting, long strings,
# wrong types where ids go).
seed_fly_json() {
        local dir=$1 f n=0
        local m='{"id":"148e21a3c96989","name":"thopter-1","state":"started","region":"ord","private_ip":"fdaa::2","config":{"image":"i","metadata":{"thopter_request_id":"r-1","thopter_role":"thopter"},"mounts":[{"volume":"vol_1","path":"/data"}]}}'

        for f in "$root"/tests/data/fly/*.json; do
                cp "$f" "$dir/seed-$(basename "$f")"
                n=$((n + 1))
        done
        printf '[%s,%s]' "$m" "${m/started/destroyed}" | seed "$dir" list-2
        printf '[%s]' "$(rep '{"id":"a"},' 300)" | seed "$dir" list-tiny
        printf '[%s1]' "$(rep '1,' 2000)" | seed "$dir" values-flood
        printf '{"id":"a","config":%s}' "$(rep '[' 300)" | seed "$dir" deep
        printf '{"id":"%s"}' "$(rep x 200)" | seed "$dir" long-id
        printf '{"id":1,"config":[],"mounts":{}}' | seed "$dir" types
        printf '[{"id":"vol_1","state":"created","size_gb":1e308},{"id":"v","size_gb":-1}]' |
                seed "$dir" volumes-sizes
        printf '{"error":"insufficient resources\u0000\n\u001b[31m","status":"insufficient_capacity"}' |
                seed "$dir" error-control
        printf '<html>\r\n502\x01\x7f</html>\r\n' | seed "$dir" error-html
        echo "$n"
}

seed_http_header() {
        local dir=$1
        printf 'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nfly-request-id: 01J5ZC8N6Q0K9V-ord\r\n\r\n' |
                seed "$dir" 429
        printf 'HTTP/1.1 100 Continue\r\nfly-request-id: early\r\nHTTP/1.1 503 x\r\nretry-after:   Wed, 21 Oct 2015 07:28:00 GMT \r\n' |
                seed "$dir" continue-date
        printf 'Retry-After: 9999999999999999999999\nRetry-After: -1\nRetry-After: 1.5\nRetry-After: \t\n' |
                seed "$dir" numbers
        printf 'fly-request-id: %s\r\n' "$(rep 'a\x1b' 100)" | seed "$dir" long-control
        printf 'Retry-After:Sunday, 06-Nov-94 08:49:37 GMT\nRetry-After: Sun Nov  6 08:49:37 1994' |
                seed "$dir" dates
}

seed_known_hosts() {
        local dir=$1 f
        for f in "$root"/tests/data/known_hosts/*.known_hosts; do
                cp "$f" "$dir/seed-$(basename "$f")"
        done
}

# shellcheck disable=SC2016 # the $( and backticks are payload bytes
dict_request() {
        local w
        for w in '"thopterId"' '"requestId"' '"repository"' '"github"' \
                '"issueNumber"' '"issueTitle"' '"issueBody"' '"issueUrl"' \
                '"issueAuthor"' '"mentionAuthor"' '"mentionLocation"' \
                '"mentionCommentId"' '"comments"' '"id"' '"author"' '"body"' \
                '"createdAt"' '"updatedAt"' '"url"' '"gc"' '"prompt"' \
                '"reason"' '"source"' '"comment"' '"default"' \
                '"148e21a3c96989"' '"owner/name"' 'null' 'true' 'false' \
                '\\u0000' '\\ud83d\\ude80' '\\u006b' '\\"' '1e300' '4.2e1' \
                '9007199254740991' '9999999999' '\xc3\xa9' '\xf0\x9f\x9a\x80' \
                '\xed\xa0\x80' '\xef\xbb\xbf' '$(' '`' '../'; do
                printf '"%s"\n' "${w//\"/\\\"}"
        done
}

# ---------------------------------------------------------------- run

# stat NAME LOG: the last value libFuzzer printed for stat::NAME
stat_of() {
        sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

failed=0
for name in "${targets[@]}"; do
        if ! sources_of "$name" >/dev/null; then
                echo "run-fuzz: unknown target $name" >&2
                exit 2
        fi
        echo "== $name: building"
        build "$name"
        corpus="$out/corpus/$name"
        mkdir -p "$corpus"
        extra=()
        case "$name" in
        fuzz_request)
                n=$(seed_request "$corpus")
                dict_request >"$out/$name.dict"
                extra+=(-dict="$out/$name.dict")
                echo "== $name: seeded $n schema examples + hostile payloads"
                ;;
        fuzz_json_strict)
                seed_json_strict "$corpus"
                ;;
        fuzz_shell_quote)
                seed_shell_quote "$corpus"
                ;;
        fuzz_fly_json)
                n=$(seed_fly_json "$corpus")
                echo "== $name: seeded $n canned fly bodies + hostile shapes"
                ;;
        fuzz_http_header)
                seed_http_header "$corpus"
                ;;
        fuzz_known_hosts)
                seed_known_hosts "$corpus"
                ;;
        esac
        [ -z "$runs" ] || extra+=(-runs="$runs")
        log="$out/logs/$name.log"
        echo "== $name: running ${seconds}s (log: ${log#"$root"/})"
        rc=0
        UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
                "$out/bin/$name" -max_total_time="$seconds" \
                -max_len="$(max_len_of "$name")" \
                -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
                -artifact_prefix="$out/artifacts/$name-" "${extra[@]}" \
                "$corpus" >"$log" 2>&1 || rc=$?
        execs=$(stat_of number_of_executed_units "$log")
        rate=$(stat_of average_exec_per_sec "$log")
        rss=$(stat_of peak_rss_mb "$log")
        files=$(find "$corpus" -type f | wc -l)
        echo "== $name: exit $rc, executions ${execs:-?}, exec/s ${rate:-?}," \
                "corpus ${files} files, peak RSS ${rss:-?} MB"
        if [ "$rc" -ne 0 ]; then
                failed=1
                grep -E 'ERROR: |SUMMARY: |invariant failed|runtime error:' "$log" |
                        head -n 20 >&2 || true
                repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" |
                        tail -n 1)
                echo "== $name: FAILED; reproducer: ${repro:-none written}" >&2
                [ -z "$repro" ] ||
                        echo "== rerun: $out/bin/$name $repro" >&2
                echo "== full log: $log" >&2
        fi
done
exit "$failed"
