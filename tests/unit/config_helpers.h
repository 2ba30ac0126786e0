/* config_helpers.h - what tests/unit/test_config*.c share: a controlled
 * environment for config_load() and calls of it with an argv. Criterion runs
 * each test in its own process, so setenv() touches no other test.
 * GITHUB_INTEGRATION_JSON shapes are files in tests/data/config.
 */
#ifndef THOPTER_CONFIG_HELPERS_H
#define THOPTER_CONFIG_HELPERS_H

#include "config.h"
#include "err.h"

/** @brief Unsets every setting and forgets the registered secrets (the
 * suites' init). */
void clean_env(void);

/** @brief GITHUB_INTEGRATION_JSON from tests/data/config/@p file. */
void set_github(const char *file);

/** @brief Sets what the destroy role needs. */
void destroy_env(void);

/** @brief Sets what the provision role needs (destroy_env() included). */
void provision_env(void);

/** @brief config_load() with argv = {"thopter-consumer", args..., NULL};
 * @p args is NULL-terminated (NULL: none). Expects a one-line message. */
int load_argv(struct config *cfg, struct err *err, const char *const *args);

/** @brief load_argv() with the arguments after @p err (NULL-terminated). */
int load(struct config *cfg, struct err *err, ...);

/** @brief Loads with the arguments after @p want (NULL-terminated),
 * expecting a permanent error with the one-line message @p want. */
void expect_refused(const char *what, const char *want, ...);

#endif
