#!/bin/bash
# thopter-sim-boot.sh - boots one simulated thopter machine; tests/harness/thopter_machine.py
# runs it as PID 1 of fresh mount, PID and UTS (and optionally network) namespaces:
#
#   unshare --mount --propagation private --pid --fork --uts [--net] --kill-child=SIGKILL \
#       thopter-sim-boot.sh --state DIR --volume DIR [--files DIR] [--hostname H] [--net] \
#           [--no-user] [--hook F] [--init F] [--sshd-config F] [--bind SRC:DST]... \
#           [--hallpass ADDR [--hallpass-dir DIR]] -- [thopter-start arguments]
#
# The machine's root filesystem is an overlay of the host's / (read-only lower layer)
# with a tmpfs upper layer, so nothing the machine writes reaches the host, and host
# paths that do not exist (/data, /thopter, /etc/thopter) can exist in the machine.
# On it, this script does what the thopter image and fly would have done before the
# image's CMD runs:
#   - the image (dd6852b thopter/Dockerfile): user thopter with home /data/thopter,
#     /thopter/log (mode 666), /etc/tmux.conf, /uv/env, and stubs of firewall.sh,
#     start-observer.sh and gotty (tests/data/thopter-image-stubs/);
#   - the image's init at /usr/local/bin/thopter-init.sh (default: the project's model
#     of it, tests/data/sim-thopter-init.sh: the original's steps, in its order);
#   - our layer (deploy/thopter-image/Dockerfile): the REAL hook bind-mounted at
#     /usr/local/bin/thopter-start and the REAL sshd_config at /etc/ssh/sshd_config (both
#     files themselves, not copies), /etc/ssh/ssh_host_* removed, /etc/thopter/ssh made;
#   - fly: a fresh /tmp and /run, the volume bind-mounted at /data, and config.files: every
#     file under --files DIR (as tests/fakes/fake_fly.py writes them, DIR/<guest path>)
#     copied to its guest path, with the mode it has there;
#   - fly's own SSH server, hallpass (with --hallpass ADDR): on fly every machine runs it,
#     bound to port 22 of the machine's private 6PN address, before the image's CMD. Its
#     stand-in is OpenSSH's sshd under the name `hallpass` (/usr/local/sbin/hallpass in
#     the machine, so that `sshd` still means the image's), with a host key of its own
#     made at each boot and nobody allowed to log in, listening on ADDR port 22; its log
#     is /run/hallpass/log in the machine (with --hallpass-dir, a host directory mounted
#     there, so that the log outlives the machine). The boot goes on only once it listens, so an
#     image whose sshd wants port 22 on that address loses the bind, as on fly;
# then it execs `chroot ROOT /usr/local/bin/thopter-start ARGS`, which is then PID 1.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
state="" volume="" files="" host="thopter-sim" net=0 user=1 hallpass="" hallpass_dir=""
hook="$src/deploy/thopter-image/thopter-start"
init="$src/tests/data/sim-thopter-init.sh"
sshd_config="$src/deploy/thopter-image/sshd_config"
stubs="$src/tests/data/thopter-image-stubs"
binds=()

die() {
    echo "thopter-sim-boot: $*" >&2
    exit 2
}

while [ "$#" -gt 0 ]; do
    case $1 in
    --state) state=$2; shift 2 ;;
    --volume) volume=$2; shift 2 ;;
    --files) files=$2; shift 2 ;;
    --hostname) host=$2; shift 2 ;;
    --hook) hook=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --sshd-config) sshd_config=$2; shift 2 ;;
    --bind) binds+=("$2"); shift 2 ;;
    --hallpass) hallpass=$2; shift 2 ;;
    --hallpass-dir) hallpass_dir=$2; shift 2 ;;
    --net) net=1; shift ;;
    --no-user) user=0; shift ;;
    --) shift; break ;;
    *) die "unknown argument: $1" ;;
    esac
done
[ -d "$state" ] || die "--state DIR is required (an empty directory)"
[ -d "$volume" ] || die "--volume DIR is required (the machine's /data)"
[ "$$" -eq 1 ] || die "must run as PID 1 of a new PID namespace (unshare --pid --fork)"

# The root filesystem.
mount -t tmpfs -o mode=0755 sim-rw "$state"
mkdir "$state/upper" "$state/work" "$state/root"
mount -t overlay sim-root -o "lowerdir=/,upperdir=$state/upper,workdir=$state/work" "$state/root"
r=$state/root
mount --rbind /dev "$r/dev"
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=1777 sim-tmp "$r/tmp"
mount -t tmpfs -o mode=0755 sim-run "$r/run"
mkdir -p "$r/data"
mount --bind "$volume" "$r/data"
# A thopter's root has none of this host's shell start-up: root's ~/.bashrc here
# runs `pyenv init`, whose rehash lock is shared by every shell on the host and
# waits up to 60 s for it, on every remote command. (A whiteout in the overlay:
# the host keeps its files.)
for f in .bashrc .bash_profile .bash_login .profile .bash_logout; do
    rm -f "$r/root/$f"
done

# The thopter image (dd6852b thopter/Dockerfile), as far as the init needs it.
if [ "$user" = 1 ]; then
    if chroot "$r" id -u thopter >/dev/null 2>&1; then
        chroot "$r" usermod -d /data/thopter -s /bin/bash thopter
    else
        chroot "$r" useradd -M -d /data/thopter -s /bin/bash -U thopter
    fi
fi
mkdir -p "$r/thopter" "$r/uv" "$r/usr/local/bin"
: >"$r/thopter/log"
chmod 666 "$r/thopter/log"
install -m 0644 "$stubs/uv-env" "$r/uv/env"
for stub in firewall.sh start-observer.sh gotty; do
    install -m 0755 "$stubs/$stub" "$r/usr/local/bin/$stub"
done
printf '%s\n' "set -g mouse on" "setw -g mode-keys vi" "set -g prefix C-a" "unbind C-b" \
    "bind C-a send-prefix" "set -g default-terminal 'tmux-256color'" \
    "set -ga terminal-overrides ',*256col*:Tc'" >"$r/etc/tmux.conf"
install -m 0755 "$init" "$r/usr/local/bin/thopter-init.sh"

# Our layer (deploy/thopter-image/Dockerfile): the files themselves, bind-mounted.
: >"$r/usr/local/bin/thopter-start"
mount --bind "$hook" "$r/usr/local/bin/thopter-start"
mkdir -p "$r/etc/ssh"
[ -e "$r/etc/ssh/sshd_config" ] || : >"$r/etc/ssh/sshd_config"
mount --bind "$sshd_config" "$r/etc/ssh/sshd_config"
rm -f "$r"/etc/ssh/ssh_host_*
mkdir -p "$r/etc/thopter/ssh"
chmod 0755 "$r/etc/thopter" "$r/etc/thopter/ssh"

# Extra host paths the test wants inside (e.g. a file:// git repository).
for b in "${binds[@]}"; do
    bsrc=${b%%:*} bdst=${b#*:}
    if [ -d "$bsrc" ]; then mkdir -p "$r$bdst"; else mkdir -p "$(dirname "$r$bdst")" && : >"$r$bdst"; fi
    mount --bind "$bsrc" "$r$bdst"
done

# config.files: written into the root filesystem before the image's CMD runs.
if [ -n "$files" ] && [ -d "$files" ]; then
    (cd "$files" && find . -type f -print0) | while IFS= read -r -d '' f; do
        f=${f#./}
        mkdir -p "$(dirname "$r/$f")"
        cp --no-preserve=ownership "$files/$f" "$r/$f"
        chmod "$(stat -c %a "$files/$f")" "$r/$f"
    done
fi

if [ "$net" = 1 ]; then
    ip link set lo up
fi

# fly's SSH server on ADDR:22, up before the image's CMD starts.
if [ -n "$hallpass" ]; then
    hp=$r/run/hallpass
    mkdir -p "$hp" "$r/run/sshd"
    if [ -n "$hallpass_dir" ]; then
        mount --bind "$hallpass_dir" "$hp"
    fi
    chmod 0755 "$r/run/sshd"
    install -m 0755 /usr/sbin/sshd "$r/usr/local/sbin/hallpass"
    ssh-keygen -q -t ed25519 -N '' -C "hallpass@$host" -f "$hp/ssh_host_ed25519_key" </dev/null
    case $hallpass in *:*) listen="[$hallpass]:22" ;; *) listen="$hallpass:22" ;; esac
    chroot "$r" /usr/local/sbin/hallpass -D -E /run/hallpass/log -f /dev/null \
        -h /run/hallpass/ssh_host_ed25519_key -o "ListenAddress=$listen" -o PidFile=none \
        -o AuthorizedKeysFile=none -o AuthenticationMethods=publickey \
        -o PasswordAuthentication=no -o KbdInteractiveAuthentication=no -o UsePAM=no \
        -o PermitRootLogin=no -o LogLevel=VERBOSE </dev/null >/dev/null 2>&1 &
    hallpass_pid=$!
    for _ in $(seq 500); do
        grep -q "Server listening" "$hp/log" 2>/dev/null && break
        kill -0 "$hallpass_pid" 2>/dev/null || break
        sleep 0.01
    done
    if ! grep -q "Server listening" "$hp/log" 2>/dev/null; then
        die "hallpass stand-in did not come up on $listen: $(cat "$hp/log" 2>/dev/null)"
    fi
    fp=$(ssh-keygen -l -f "$hp/ssh_host_ed25519_key.pub" | awk '{print $2}')
    echo "[HALLPASS] fly's SSH server stand-in (pid $hallpass_pid) on $listen, host key $fp"
fi
hostname "$host"
exec chroot "$r" /usr/local/bin/thopter-start "$@"
