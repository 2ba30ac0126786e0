#!/bin/sh
# Stands in for git, tmux or su in tests/unit/test_provision_context.c:
#   sh fake-tool.sh NAME ARGS...
# appends "CALL NAME", each argument, and "TOKEN=$GITHUB_REPO_PAT", each
# NUL-terminated, to $FAKE_LOG. As git, a clone creates its target (with a
# .git directory) so the command's next step finds it.
name=$1
shift
{
        printf '%s\0' "CALL $name"
        for a in "$@"; do
                printf '%s\0' "$a"
        done
        printf 'TOKEN=%s\0' "${GITHUB_REPO_PAT-}"
} >>"$FAKE_LOG"
if [ "$name" = git ]; then
        clone=0
        for a in "$@"; do
                [ "$a" = clone ] && clone=1
                last=$a
        done
        [ "$clone" = 1 ] && mkdir -p "$last/.git"
fi
exit 0
