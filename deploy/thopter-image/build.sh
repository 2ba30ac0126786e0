#!/usr/bin/env bash
# Builds the per-machine SSH layer (deploy/thopter-image/Dockerfile) on top of a thopter
# image and pushes it to the app's fly registry.
#
#   deploy/thopter-image/build.sh --app APP --base IMAGE [--tag TAG] [--no-push]
#       [--set-metadata] [--dry-run]
#
#   --base IMAGE     the thopter image to extend, e.g. registry.fly.io/APP:thopter-ab12cd34-1765000000
#                    (what the original fly/build-thopter.sh pushed; the hub's Redis has it:
#                    redis-cli -h 1.redis.kv._metadata.APP.internal HGET metadata THOPTER_IMAGE)
#   --tag TAG        tag of the result (default: the base tag + "-ssh")
#   --no-push        build only
#   --set-metadata   also store the result as the hub's THOPTER_IMAGE in its Redis metadata
#                    (as fly/build-thopter.sh does; needs the 6PN, e.g. fly wireguard)
#   --dry-run        print the commands instead of running them
#
# Prints THOPTER_IMAGE=<image> last: set that in the consumer's environment (and, without
# --set-metadata, in the hub's metadata) to roll out; see docs/OPERATIONS.md section 2.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
app="" base="" tag="" push=1 metadata=0 dry=0

usage() {
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

while [ "$#" -gt 0 ]; do
    case $1 in
    --app) app=${2:?--app needs a value}; shift 2 ;;
    --base) base=${2:?--base needs a value}; shift 2 ;;
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --no-push) push=0; shift ;;
    --set-metadata) metadata=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "build.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done
[ -n "$app" ] || { echo "build.sh: --app is required" >&2; exit 2; }
[ -n "$base" ] || { echo "build.sh: --base is required (the thopter image to extend)" >&2; exit 2; }
case ${base##*/} in
*:*) ;;
*) echo "build.sh: --base must name a tag (registry.fly.io/$app:thopter-...)" >&2; exit 2 ;;
esac
if [ -z "$tag" ]; then
    tag="${base##*:}-ssh"
fi
if ! printf '%s' "$tag" | grep -Eq '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'; then
    echo "build.sh: not a valid image tag: $tag" >&2
    exit 2
fi
image="registry.fly.io/$app:$tag"

run() {
    if [ "$dry" = 1 ]; then
        printf '%q ' "$@"
        printf '\n'
    else
        "$@"
    fi
}

# The base is the app's private image on fly's registry: docker build pulls it, so on a
# clean machine (no docker login yet) it must be authenticated first, as the push is.
# `fly auth docker` writes fly's credentials for registry.fly.io into docker's config.
case $base in
registry.fly.io/*) auth=1 ;;
*) auth=$push ;;
esac
if [ "$auth" = 1 ]; then
    run fly auth docker
fi
run docker build --platform linux/amd64 \
    --build-arg "BASE_IMAGE=$base" --build-arg "CURRENT_IMAGE=$image" \
    -t "$image" "$here"
if [ "$push" = 1 ]; then
    run docker push "$image"
fi
if [ "$metadata" = 1 ]; then
    run redis-cli -h "1.redis.kv._metadata.$app.internal" HSET metadata THOPTER_IMAGE "$image"
fi
echo "THOPTER_IMAGE=$image"
