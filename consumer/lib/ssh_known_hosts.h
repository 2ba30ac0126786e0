/* ssh_known_hosts.h - the old names of known_hosts.h, until the callers are
 * renamed.
 *
 * Temporary: the module is known_hosts.[ch] now (libssh has its own
 * ssh_known_hosts names). This header lets the callers build unchanged until
 * issue 23's rename script (rename-remote.sh) renames them and deletes it.
 * Do not include it in new code.
 */
#ifndef THOPTER_SSH_KNOWN_HOSTS_H
#define THOPTER_SSH_KNOWN_HOSTS_H

#include "known_hosts.h"

#define ssh_known_hosts_result      known_hosts_result
#define ssh_known_hosts_check       known_hosts_check
#define ssh_known_hosts_result_name known_hosts_result_name
#define SSH_KNOWN_HOSTS_MATCH       KNOWN_HOSTS_MATCH
#define SSH_KNOWN_HOSTS_MISMATCH    KNOWN_HOSTS_MISMATCH
#define SSH_KNOWN_HOSTS_NOT_FOUND   KNOWN_HOSTS_NOT_FOUND
#define SSH_KNOWN_HOSTS_REVOKED     KNOWN_HOSTS_REVOKED

#endif
