/* metrics.h - a small process-wide registry of Prometheus metrics.
 *
 * Counters, gauges and histograms are identified by name plus a label string
 * written in Prometheus syntax (`topic="thopter.destroy",class="ssh"`, or ""
 * for none). Names are declared once with metrics_describe() so that HELP and
 * TYPE lines come out right; an undescribed name is rendered as untyped.
 *
 * @locality any thread (one mutex; nothing here is on a hot path that
 * matters next to a network call).
 */
#ifndef THOPTER_METRICS_H
#define THOPTER_METRICS_H

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

void metrics_describe(const char *name,
                      enum metrics_type type,
                      const char *help);
void metrics_inc(const char *name, const char *labels, double v);
void metrics_set(const char *name, const char *labels, double v);
/** @brief Record one observation (seconds) in a histogram. */
void metrics_observe(const char *name, const char *labels, double v);
/** @brief Current value of a counter or gauge (0 when unknown). */
double metrics_get(const char *name, const char *labels);
/** @brief The Prometheus text exposition; malloc'd. */
char *metrics_render(void);
/** @brief Drop everything (tests). */
void metrics_reset(void);

#endif
