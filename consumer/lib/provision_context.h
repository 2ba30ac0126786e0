/* provision_context.h - the text provisioning puts on a thopter: the issue
 * as markdown and JSON, the rendered prompt, and the shell commands of the
 * remote steps. Pure functions (no I/O), so each is unit-tested.
 *
 * Every value that reaches a shell goes through shell_quote() here (contract
 * 5.11); a function that cannot build its command (a name that is not safe,
 * out of memory) returns NULL.
 *
 * Callers: provision.c and provision_remote.c; unit tests.
 */
#ifndef THOPTER_PROVISION_CONTEXT_H
#define THOPTER_PROVISION_CONTEXT_H

#include "request.h"

#include <stdint.h>

/** @brief issue.md: title, repository, number, URL, author, body, comments. */
char *provision_issue_markdown(const struct provision_request *req);

/** @brief issue.json: {source, repository, workBranch, github} (the observer
 * reads it). */
char *provision_issue_json(const struct provision_request *req,
                           const char *work_branch);

/** @brief prompt.md: @p tpl with {{repository}} {{repoName}}
 * {{issueNumber}} {{machineId}} {{workBranch}} replaced. */
char *provision_prompt(const char *tpl,
                       const struct provision_request *req,
                       const char *work_branch,
                       const char *machine_id);

/** @brief "thopter/<issueNumber>--<machineId>" into @p out. */
void provision_work_branch(const struct provision_request *req,
                           const char *machine_id,
                           char *out,
                           size_t cap);

/**
 * @brief A shell command that appends "YYYY-MM-DD HH:MM:SS [PROVISIONER]
 * <msg>" to @p log_path (creating its directory), as the original did.
 */
char *
provision_log_command(const char *log_path, const char *msg, int64_t wall_ms);

/**
 * @brief `runuser -u USER -- env -i HOME=... PATH=... /bin/sh -c '<inner>'`:
 * @p inner as @p user with a clean environment and no login shell, so no
 * dotfile of the user (which the agent controls) runs, least of all while a
 * secret is on stdin. NULL when @p user is not a safe name.
 */
char *provision_as_user(const char *user, const char *home, const char *inner);

/**
 * @brief On the Golden Claude, as its user: a gzip'd tar on stdout of only
 * what a Claude home needs (PROVISION_GC_ITEMS that exist, without
 * .claude/projects), never a dotfile that runs code (.bash_profile,
 * .gitconfig, .ssh, ...).
 */
char *provision_gc_pack_command(const char *user, const char *home);

/**
 * @brief On the thopter, as its user: that tar from stdin into @p home,
 * owned by the user, with the user's umask.
 */
char *provision_gc_unpack_command(const char *user, const char *home);

/**
 * @brief As @p user: stdin into @p dir/@p name through a temporary file and
 * `mv -f -T` (the name is replaced, never followed), mode 0644.
 */
char *provision_write_file_command(const char *user,
                                   const char *home,
                                   const char *dir,
                                   const char *name);


/**
 * @brief The git step, run as the thopter user: set the commit identity,
 * install a credential helper for @p url's host that answers with the token
 * in $GITHUB_REPO_PAT (and only that helper: a system "store" helper would
 * write the token to disk), and clone @p url into WORKSPACE/REPO (skipped
 * when it is there). The command reads the token from its stdin (one line)
 * for the clone; the agent's own pushes later find it in the machine's
 * environment (GITHUB_REPO_PAT, set at create). The token is never on a
 * command line, in .git/config or in any file.
 */
char *provision_git_command(const char *user_name,
                            const char *user_email,
                            const char *workspace,
                            const char *url,
                            const char *repo_name);

/** @brief "scheme://host[:port]" of an http(s) URL into @p out; 0, or -1
 * (and "") for any other URL (file://, ssh). */
int provision_credential_base(const char *url, char *out, size_t cap);

/**
 * @brief What the launch step types into tmux session @p session: run
 * ../post-checkout.sh in the clone when there is one (its output appended to
 * @p remote_log), then @p agent_command in @p workspace. As one shell
 * command for the thopter user (`tmux send-keys -l` then Enter).
 */
char *provision_launch_command(const char *workspace,
                               const char *repo_name,
                               const char *remote_log,
                               const char *agent_command,
                               const char *session);

#endif
