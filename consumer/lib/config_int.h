/* config_int.h - what config.c and config_table.c share; not for anyone
 * else (the public contract is config.h).
 *
 *   config_table.c  the table of every setting, flag names, --help
 *   config.c        loading (environment, argv, files) and validation; the
 *                   only getenv()
 *
 * Calls go one way: config.c -> config_table.c (tests/unit/test_lib_layers.py
 * checks it).
 */
#ifndef THOPTER_CONFIG_INT_H
#define THOPTER_CONFIG_INT_H

#include "config.h"

#include <stddef.h>

/* The names below are those config.c had while it held the table alone;
 * kept, since only these two files see them, so the code reads as before. */

/* S_SECS, S_MSEC: durations kept in seconds / milliseconds (duration.h). */
enum stype { S_STR, S_INT, S_BOOL, S_SECS, S_MSEC };

#define NEED_PROVISION 1
#define NEED_DESTROY   2

struct setting {
        const char *env;
        enum stype type;
        size_t off;
        const char *def;
        long min, max;
        int need; /* roles that require it */
        int secret;
        const char *help;
};

#define BOTH (NEED_PROVISION | NEED_DESTROY)

/* Every setting, config_table_len of them (--help lists them by group).
 * Read-only data: any thread. */
extern const struct setting config_table[];
extern const size_t config_table_len;

#endif
