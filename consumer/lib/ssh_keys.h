/* ssh_keys.h - the old names of host_keys.h, until the callers are renamed.
 *
 * Temporary: the module is host_keys.[ch] now (ssh_ is libssh's prefix).
 * This header lets the callers build unchanged until issue 23's rename
 * script (rename-remote.sh) renames them and deletes it. Do not include it
 * in new code.
 */
#ifndef THOPTER_SSH_KEYS_H
#define THOPTER_SSH_KEYS_H

#include "host_keys.h"

#define ssh_host_key                host_key
#define SSH_KEYS_BLOB_MAX           HOST_KEYS_BLOB_MAX
#define ssh_keys_derive_host_key    host_keys_derive_host_key
#define ssh_keys_private_openssh    host_keys_private_openssh
#define ssh_keys_public_blob        host_keys_public_blob
#define ssh_keys_public_line        host_keys_public_line
#define ssh_keys_wipe               host_keys_wipe
#define ssh_keys_client_public_line host_keys_client_public_line
#define ssh_keys_read_file          host_keys_read_file

#endif
