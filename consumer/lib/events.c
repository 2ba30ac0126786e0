/* events.c - see events.h. */
#include "events.h"
#include "clock.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* A non-negative integer as a raw JSON number. cJSON 1.7.15 prints every
 * number with "%1.15g" and reads it back with sscanf to check it (~2,500
 * instructions); these are whole numbers, so their digits are written
 * directly. */
static void add_count(cJSON *o, const char *name, int64_t v) {
        char buf[24], *p = buf + sizeof(buf);

        if (v < 0)
                v = 0;
        *--p = '\0';
        do {
                *--p = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        cJSON_AddRawToObject(o, name, p);
}

char *events_json(const struct job *job,
                  const char *state,
                  const char *step,
                  const struct err *failure,
                  int64_t now_wall_ms,
                  int64_t now_mono_ms) {
        char at[32], msg[ERR_MSG_LEN];
        cJSON *o = cJSON_CreateObject();
        char *out = NULL;

        if (!o)
                return NULL;
        clock_iso8601(now_wall_ms, at, sizeof(at));
        cJSON_AddStringToObject(o, "requestId", job->request_id);
        cJSON_AddStringToObject(o, "kind", job->rec.kind ? job->rec.kind : "");
        cJSON_AddStringToObject(o, "state", state);
        if (step)
                cJSON_AddStringToObject(o, "step", step);
        if (job->thopter_id[0])
                cJSON_AddStringToObject(o, "thopterId", job->thopter_id);
        if (job->machine_name[0])
                cJSON_AddStringToObject(o, "machineName", job->machine_name);
        if (job->region[0])
                cJSON_AddStringToObject(o, "region", job->region);
        add_count(o, "attempt", job->attempt < 1 ? 1 : job->attempt);
        if (failure && failure->kind != ERR_NONE) {
                cJSON *e = cJSON_AddObjectToObject(o, "error");
                log_redact_copy(msg, sizeof(msg), failure->msg, LOG_KEEP_HEAD);
                cJSON_AddStringToObject(e, "class",
                                        err_class_name(failure->cls
                                                           ? failure->cls
                                                           : ERRC_INTERNAL));
                cJSON_AddStringToObject(e, "message", msg);
        }
        if (job->warning_code[0] && strcmp(state, "completed") == 0) {
                cJSON *w = cJSON_AddObjectToObject(o, "warning");
                log_redact_copy(msg, sizeof(msg), job->warning, LOG_KEEP_HEAD);
                cJSON_AddStringToObject(w, "code", job->warning_code);
                cJSON_AddStringToObject(w, "message", msg);
        }
        cJSON_AddStringToObject(o, "at", at);
        int64_t elapsed = now_mono_ms - job->rec.received_mono_ms;
        add_count(o, "elapsedMs", elapsed);
        out = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        return out;
}

void events_emit(struct kafka_producer *p,
                 const char *topic,
                 const struct job *job,
                 const char *state,
                 const char *step,
                 const struct err *failure) {
        struct err err = {0};
        char *json = events_json(job, state, step, failure, clock_wall_ms(),
                                 clock_mono_ms());

        if (!json)
                return;
        if (kafka_producer_send(p, topic, job->request_id,
                                strlen(job->request_id), json, strlen(json),
                                NULL, NULL, NULL, &err) == -1)
                log_write(LOG_WARN, "events", job->request_id,
                          "event %s not sent: %s", state, err.msg);
        free(json);
}
