/* metrics.h - the process-wide registry of Prometheus metrics.
 *
 * Every metric is declared once in metrics_table.h and named here by its id
 * (M_IN_FLIGHT, ...), so a typo is a compile error and /metrics always
 * carries HELP and TYPE for each family, also before its first sample. A
 * series is the id plus a label string in Prometheus syntax
 * (`topic="thopter.destroy",class="ssh"`, or "" for none).
 *
 * @locality any thread (one mutex; nothing here is on a hot path that
 * matters next to a network call).
 *
 * Callers: everyone that counts; health_server.c renders it.
 */
#ifndef THOPTER_METRICS_H
#define THOPTER_METRICS_H

#include "metrics_table.h"

void metrics_inc(enum metrics_id id, const char *labels, double v);
void metrics_set(enum metrics_id id, const char *labels, double v);
/** @brief Record one observation (seconds) in a histogram. */
void metrics_observe(enum metrics_id id, const char *labels, double v);
/** @brief Current value of a counter or gauge; a histogram's count (0 when
 * the series does not exist). */
double metrics_get(enum metrics_id id, const char *labels);
/** @brief The Prometheus text exposition; malloc'd (NULL on OOM). */
char *metrics_render(void);
/** @brief Drop every series (tests). */
void metrics_reset(void);

#endif
