/* shell_quote.h - the one function that makes a value safe for a remote shell.
 *
 * Every value that reaches a shell on a thopter (contract section 5.11) goes
 * through shell_quote(): the result is a single POSIX shell word that stands
 * for exactly the input bytes, whatever they are ($(…), backticks, quotes,
 * newlines, backslashes, UTF-8). Names that end up in paths are checked with
 * shell_name_is_safe() first, so that quoting is not the only line of defence.
 *
 * No I/O here.
 *
 * @locality any thread.
 *
 * Callers: every module that builds a remote command (provision_context.c,
 * provision_remote.c, remote_sftp.c) and config.c (name checks).
 */
#ifndef THOPTER_SHELL_QUOTE_H
#define THOPTER_SHELL_QUOTE_H

#include <stddef.h>

/**
 * @brief Quote @p s as one POSIX shell word: '…', with each ' written as '\''.
 *
 * The empty string becomes ''. The word expands to @p s byte for byte in sh,
 * dash and bash wherever the shell reads it as a word of a command line,
 * and nowhere else. In particular it is NOT safe inside double quotes: there
 * ' is an ordinary character while $, `, \ and " keep their meaning, so
 *     sh -c "printf %s <word>"        runs $(…) in the word (unsafe)
 *     sh -c '<quoted command line>'    does not: quote the whole inner command
 *                                      line once more for each shell that
 *                                      reads it (shell_su_command() does)
 * tests/unit/test_shell_quote.c runs both forms.
 * @returns a malloc'd string the caller frees, or NULL when out of memory.
 */
char *shell_quote(const char *s);

/**
 * @brief Build `su - USER -c '<inner_cmd quoted>'`.
 *
 * @p inner_cmd is a shell command line (its own values already quoted with
 * shell_quote()); it is quoted once more here, so the login shell of USER
 * receives it unchanged.
 * @returns a malloc'd string, or NULL when @p user fails shell_name_is_safe()
 * (errno EINVAL) or memory runs out (errno ENOMEM).
 */
char *shell_su_command(const char *user, const char *inner_cmd);

/**
 * @brief Is @p s usable as a user name or one path component as it is?
 *
 * True for 1..255 characters of [A-Za-z0-9._-], not starting with '-', and
 * not "." or "..".
 * @returns 1 if safe, 0 if not (also for NULL).
 */
int shell_name_is_safe(const char *s);

#endif
