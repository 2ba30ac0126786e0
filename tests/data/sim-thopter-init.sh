#!/bin/bash
# sim-thopter-init.sh - the project's model of the thopter image's init, the program the
# image layer's start hook (deploy/thopter-image/thopter-start) runs as its child. It is
# /usr/local/bin/thopter-init.sh in the simulated machines of tests/harness/thopter_machine.py.
#
# Written for these tests from what the original init (thopter-swarm dd6852b,
# thopter/scripts/thopter-init.sh) does, not from its text: the same steps, in the same
# order, with the same effects on /data, /tmp and the thopter user's shell files, under
# bash `set -e` (a step that fails ends the init before the steps after it, tmux
# included). Each step is a function named after what it models and logs
# "[THOPTER-INIT] step NAME" to the console and /thopter/log before it runs, as the
# original logs each step before doing it (so the log says a step began, never that it
# ended). What the simulation cannot run is a stub on the PATH
# (tests/data/thopter-image-stubs/): firewall.sh, start-observer.sh, gotty, /uv/env.
#
# The steps (STEPS below, in order; tests/integration/test_thopter_image.py checks the
# order a boot logs):
#   check_data_mount    /data takes a write, a read back and a delete; 30 tries, 2 s apart
#   open_data           /data mode 755
#   wipe_data           everything under /data that a `*` glob matches is deleted: the
#                       volume may come from another machine (dot-files at its top stay)
#   make_workspace      /data/thopter/workspace
#   shell_aliases       ~/.bash_aliases with the yolo-claude alias, sourced by ~/.bashrc
#   firewall            firewall.sh, its output tagged [FIREWALL]
#   move_env_thopters   /tmp/.env.thopters (config.files) into the workspace, the user's,
#                       exported by ~/.bashrc
#   move_post_checkout  /tmp/post-checkout.sh into the workspace, the user's, executable
#   uv_env              ~/.bashrc sets up uv; ~/.bash_profile sources ~/.bashrc
#   log_dirs            ~/logs and ~/.claude/projects
#   start_observer      start-observer.sh, its output tagged [OBSERVER]
#   chown_data          everything under /data becomes thopter:thopter
#   run_terminal        the init becomes `runuser -u thopter`, which starts tmux session
#                       `thopter` (detached) in the workspace, then gotty attached to it
set -e

LOG=/thopter/log
USER_NAME=thopter
USER_HOME=/data/thopter
WORKSPACE=$USER_HOME/workspace
STEPS="check_data_mount open_data wipe_data make_workspace shell_aliases firewall
move_env_thopters move_post_checkout uv_env log_dirs start_observer chown_data run_terminal"

say() {
    printf '%s [THOPTER-INIT] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" | tee -a "$LOG"
}

# Runs a helper program with each line of its output stamped and tagged, to the console
# and the log.
tagged() {
    local tag=$1
    shift
    "$@" 2>&1 | while IFS= read -r line; do
        printf '%s [%s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$tag" "$line" | tee -a "$LOG"
    done
}

check_data_mount() {
    local try probe back
    for try in $(seq 1 30); do
        probe=/data/.sim-mount-probe.$$.$try
        if echo "probe $try" >"$probe" 2>/dev/null && read -r back <"$probe" &&
            [ -n "$back" ] && rm -f "$probe"; then
            say "/data is usable (try $try of 30)"
            return 0
        fi
        say "/data is not usable yet (try $try of 30)"
        sleep 2
    done
    say "ERROR: /data never became usable"
    exit 1
}

open_data() {
    chmod 755 /data
}

wipe_data() {
    rm -rf /data/*
}

make_workspace() {
    mkdir -p "$WORKSPACE"
}

shell_aliases() {
    printf '%s\n' "alias yolo-claude='claude --dangerously-skip-permissions'" \
        >"$USER_HOME/.bash_aliases"
    if ! grep -qs 'bash_aliases' "$USER_HOME/.bashrc"; then
        printf '\n%s\n' '[ -f ~/.bash_aliases ] && source ~/.bash_aliases' >>"$USER_HOME/.bashrc"
    fi
}

firewall() {
    tagged FIREWALL /usr/local/bin/firewall.sh
}

move_env_thopters() {
    [ -f /tmp/.env.thopters ] || return 0
    mv /tmp/.env.thopters "$WORKSPACE/.env.thopters"
    chown "$USER_NAME:$USER_NAME" "$WORKSPACE/.env.thopters"
    cat >>"$USER_HOME/.bashrc" <<'RC'

# the developer environment given to this thopter, exported
if [ -f ~/workspace/.env.thopters ]; then
    set -a
    source ~/workspace/.env.thopters
    set +a
fi
RC
}

move_post_checkout() {
    [ -f /tmp/post-checkout.sh ] || return 0
    mv /tmp/post-checkout.sh "$WORKSPACE/post-checkout.sh"
    chown "$USER_NAME:$USER_NAME" "$WORKSPACE/post-checkout.sh"
    chmod +x "$WORKSPACE/post-checkout.sh"
}

uv_env() {
    cat >>"$USER_HOME/.bashrc" <<'RC'

# uv
source /uv/env
export UV_BIN_DIR=/opt/uv/bin UV_CACHE_DIR=/opt/uv/cache
export UV_PYTHON_INSTALL_DIR=/opt/uv/pys UV_TOOL_DIR=/opt/uv/tools
RC
    echo 'source ~/.bashrc' >>"$USER_HOME/.bash_profile"
}

log_dirs() {
    mkdir -p "$USER_HOME/logs" "$USER_HOME/.claude/projects"
}

start_observer() {
    tagged OBSERVER /usr/local/bin/start-observer.sh
}

chown_data() {
    chown -R "$USER_NAME:$USER_NAME" /data
}

run_terminal() {
    local keep="TERM=$TERM COLORTERM=$COLORTERM LANG=$LANG LC_ALL=$LC_ALL LC_CTYPE=$LC_CTYPE"
    # shellcheck disable=SC2086 # $keep is a list of NAME=value words
    exec runuser -u "$USER_NAME" -- env $keep bash -c "cd '$WORKSPACE' &&
        tmux new-session -d -s thopter &&
        gotty --permit-write --port ${WEB_TERMINAL_PORT:-7681} --ws-origin '.*' tmux attach-session -t thopter"
}

say "starting (the image's init, simulated)"
for step in $STEPS; do
    say "step $step"
    "$step"
done
