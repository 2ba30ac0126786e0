#!/usr/bin/env bash
# Runs a Golden Claude machine (gc-NAME) of the thopter image with a FIXED SSH host key and
# the consumer's public key, delivered as the consumer delivers them to thopters: files in
# the machine config (flyctl's --file-local = the Machines API's config.files). Then prints
# the known_hosts lines to add to the consumer's THOPTER_SSH_KNOWN_HOSTS.
#
#   deploy/thopter-image/gc-run.sh --app APP --region REGION --image IMAGE \
#       --consumer-key CONSUMER_KEY.pub [--name NAME] [--key-dir DIR] [--volume VOLUME] \
#       [--vm-size SIZE] [--ssh-port PORT] [--known-hosts-only] [--dry-run]
#       [-- MORE fly machine run ARGS]
#
#   --image          the image with the SSH layer (deploy/thopter-image/build.sh prints it)
#   --consumer-key   the consumer's PUBLIC key (the .pub of THOPTER_SSH_KEY)
#   --name           Golden Claude name (default "default": machine gc-default)
#   --key-dir        where the GC's host key lives (default ~/.config/thopter/gc-NAME); made
#                    with ssh-keygen on first use and reused afterwards, so re-creating the
#                    GC keeps its key. Keep it like any other secret.
#   --volume         its data volume (default gc_volume_NAME, as fly/recreate-gc.sh; created
#                    if missing)
#   --ssh-port       the port of the image's sshd (default 2222, sshd_config's Port; the
#                    consumer's THOPTER_SSH_PORT): the known_hosts lines name the host as
#                    [host]:PORT, which is what OpenSSH (and the consumer) look up for a
#                    port other than 22. Port 22 is fly's own SSH server (hallpass).
#   --known-hosts-only   run nothing; print the lines for the existing gc-NAME
#   after --          more `fly machine run` arguments, e.g. --env WEB_TERMINAL_PORT=7681
#                    --env HUB_STATUS_PORT=8081 (what fly/recreate-gc.sh also passes)
#
# The machine gets DANGEROUSLY_SKIP_FIREWALL=I_UNDERSTAND, APP_NAME and
# METADATA_SERVICE_HOST as fly/recreate-gc.sh gives them. It refuses to touch an existing
# gc-NAME: destroy it first (fly machine destroy ID --force -a APP).
#
# NOTE: the image's init (dd6852b thopter-init.sh, unchanged) runs `rm -rf /data/*` on
# EVERY boot, the Golden Claude's included: a restart of the GC loses its Claude login,
# which must then be redone in its web terminal. The host key survives (fly writes the
# config files again at each boot), so the known_hosts line stays valid until the GC is
# re-created, which gives it a new machine id (a new host name in the line).
set -euo pipefail

app="" region="" image="" consumer_key="" name="default" key_dir="" volume="" vm_size="shared-cpu-2x"
ssh_port=2222 dry=0 only_known=0 extra=()

usage() {
    sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

while [ "$#" -gt 0 ]; do
    case $1 in
    --app) app=${2:?}; shift 2 ;;
    --region) region=${2:?}; shift 2 ;;
    --image) image=${2:?}; shift 2 ;;
    --consumer-key) consumer_key=${2:?}; shift 2 ;;
    --name) name=${2:?}; shift 2 ;;
    --key-dir) key_dir=${2:?}; shift 2 ;;
    --volume) volume=${2:?}; shift 2 ;;
    --vm-size) vm_size=${2:?}; shift 2 ;;
    --ssh-port) ssh_port=${2:?}; shift 2 ;;
    --known-hosts-only) only_known=1; shift ;;
    --dry-run) dry=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) usage 0 ;;
    *) echo "gc-run.sh: unknown argument: $1" >&2; usage 2 ;;
    esac
done

fail() {
    echo "gc-run.sh: $*" >&2
    exit 2
}
name=${name#gc-}
printf '%s' "$name" | grep -Eq '^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$' ||
    fail "--name must be lower-case letters, digits and inner hyphens (at most 32): $name"
machine="gc-$name"
[ -n "$app" ] || fail "--app is required"
if ! printf '%s' "$ssh_port" | grep -Eq '^[1-9][0-9]{0,4}$' || [ "$ssh_port" -gt 65535 ]; then
    fail "--ssh-port must be a port number: $ssh_port"
fi
[ "$ssh_port" != 22 ] ||
    fail "--ssh-port 22 is fly's own SSH server (hallpass) on the 6PN address; the image's sshd listens on 2222"
key_dir=${key_dir:-${HOME:?}/.config/thopter/$machine}
volume=${volume:-gc_volume_${name//-/_}}
host_key=$key_dir/ssh_host_ed25519_key
auth_keys=$key_dir/authorized_keys

run() {
    if [ "$dry" = 1 ]; then
        printf '%q ' "$@"
        printf '\n'
    else
        "$@"
    fi
}

# The machine's id and private IP, from `fly machines list`.
lookup() {
    if [ "$dry" = 1 ]; then
        echo "MACHINE_ID fdaa:0:0:0:0:0:0:0"
        return
    fi
    fly machines list --app "$app" --json |
        jq -r --arg n "$machine" '.[] | select(.name == $n and .state != "destroyed") | "\(.id) \(.private_ip)"' |
        head -n 1
}

print_known_hosts() {
    local found id ip pub
    found=$(lookup)
    [ -n "$found" ] || fail "no machine $machine in app $app"
    id=${found%% *} ip=${found#* }
    if [ -f "$host_key" ]; then
        pub=$(ssh-keygen -y -P '' -f "$host_key" | cut -d' ' -f1,2)
    else
        [ "$dry" = 1 ] || fail "no host key at $host_key"
        pub="ssh-ed25519 AAAA...(from $host_key)"
    fi
    echo "# $machine ($id): add to the consumer's THOPTER_SSH_KNOWN_HOSTS; the first line"
    echo "# matches THOPTER_SSH_HOST={id}.vm.{app}.internal (the default), the second {private_ip};"
    echo "# both on port $ssh_port (THOPTER_SSH_PORT), hence [host]:$ssh_port"
    echo "[$id.vm.$app.internal]:$ssh_port $pub"
    echo "[$ip]:$ssh_port $pub"
}

if [ "$only_known" = 1 ]; then
    print_known_hosts
    exit 0
fi

[ -n "$region" ] || fail "--region is required"
[ -n "$image" ] || fail "--image is required (the image with the SSH layer)"
[ -n "$consumer_key" ] || fail "--consumer-key is required (the consumer's public key file)"
[ -f "$consumer_key" ] || fail "no such file: $consumer_key"
case $(head -c 40 "$consumer_key") in
*PRIVATE*) fail "$consumer_key is a private key; give the .pub" ;;
esac
ssh-keygen -l -f "$consumer_key" >/dev/null 2>&1 || fail "$consumer_key holds no public key"

if [ "$dry" = 0 ] && [ -n "$(lookup)" ]; then
    fail "$machine already exists in $app; destroy it first (fly machine destroy ID --force -a $app)"
fi

# The fixed host key: made once, kept in key_dir, never in the repository.
if [ ! -f "$host_key" ]; then
    run mkdir -p "$key_dir"
    run chmod 700 "$key_dir"
    run ssh-keygen -q -t ed25519 -N '' -C "$machine.vm.$app.internal" -f "$host_key"
fi
if [ "$dry" = 1 ]; then
    echo "cp $(printf '%q' "$consumer_key") $(printf '%q' "$auth_keys")"
else
    cp "$consumer_key" "$auth_keys"
fi

if [ "$dry" = 0 ] && ! fly volumes list --app "$app" --json | jq -e --arg v "$volume" '.[] | select(.name == $v)' >/dev/null; then
    run fly volumes create "$volume" --app "$app" --size 10 --region "$region" --yes
elif [ "$dry" = 1 ]; then
    run fly volumes create "$volume" --app "$app" --size 10 --region "$region" --yes
fi

run fly machine run "$image" --app "$app" --name "$machine" --region "$region" \
    --vm-size "$vm_size" --autostop=off --volume "$volume:/data" \
    --file-local "/etc/thopter/ssh/ssh_host_ed25519_key=$host_key" \
    --file-local "/etc/thopter/ssh/authorized_keys=$auth_keys" \
    --env "APP_NAME=$app" --env "METADATA_SERVICE_HOST=1.redis.kv._metadata.$app.internal" \
    --env "DANGEROUSLY_SKIP_FIREWALL=I_UNDERSTAND" "${extra[@]}"

print_known_hosts
