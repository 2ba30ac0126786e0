/* ssh_client.h - the old names of remote.h, until the callers are renamed.
 *
 * Temporary: ssh_client.c is the remote_*.c files now, and its names were
 * libssh's own (ssh_connect, ssh_run, ...). This header lets the callers
 * build unchanged until issue 23's rename script (rename-remote.sh) renames
 * them and deletes it. Do not include it in new code.
 */
#ifndef THOPTER_SSH_CLIENT_H
#define THOPTER_SSH_CLIENT_H

#include "remote.h"

#define SSH_CONNECT_TIMEOUT_DEFAULT_MS REMOTE_CONNECT_TIMEOUT_DEFAULT_MS
#define SSH_OP_TIMEOUT_DEFAULT_MS      REMOTE_OP_TIMEOUT_DEFAULT_MS
#define SSH_OUTPUT_CAP                 REMOTE_OUTPUT_CAP
#define ssh_conn                       remote_conn
#define ssh_opts                       remote_opts
#define ssh_result                     remote_result
#define ssh_connect                    remote_connect
#define ssh_close                      remote_close
#define ssh_result_free                remote_result_free
#define ssh_result_tail                remote_result_tail
#define ssh_run                        remote_run
#define ssh_upload                     remote_upload
#define ssh_pipe                       remote_pipe
#define ssh_connect_until              remote_connect_until

#endif
