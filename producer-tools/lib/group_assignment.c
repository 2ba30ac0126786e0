/* group_assignment.c - see group_assignment.h. */
#include "group_assignment.h"

#include <string.h>

struct reader {
        const unsigned char *p;
        size_t left;
};

static int take(struct reader *r, size_t n, const unsigned char **out) {
        if (r->left < n)
                return -1;
        *out = r->p;
        r->p += n;
        r->left -= n;
        return 0;
}

static int i16(struct reader *r, int32_t *v) {
        const unsigned char *b;
        if (take(r, 2, &b) == -1)
                return -1;
        *v = (int16_t)((b[0] << 8) | b[1]);
        return 0;
}

static int i32(struct reader *r, int32_t *v) {
        const unsigned char *b;
        if (take(r, 4, &b) == -1)
                return -1;
        *v = (int32_t)(((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) |
                       ((uint32_t)b[2] << 8) | b[3]);
        return 0;
}

int group_assignment_owns(const void *buf,
                          size_t len,
                          const char *topic,
                          int32_t partition) {
        struct reader r = {buf, buf ? len : 0};
        int32_t version, ntopics;
        int owns = 0;

        if (!buf || len == 0)
                return 0; /* a member with nothing assigned */
        if (i16(&r, &version) == -1 || i32(&r, &ntopics) == -1 || ntopics < 0)
                return -1;
        for (int32_t t = 0; t < ntopics; t++) {
                int32_t nlen, nparts;
                const unsigned char *name;
                if (i16(&r, &nlen) == -1 || nlen < 0 ||
                    take(&r, (size_t)nlen, &name) == -1 ||
                    i32(&r, &nparts) == -1 || nparts < 0)
                        return -1;
                int same = strlen(topic) == (size_t)nlen &&
                           memcmp(name, topic, (size_t)nlen) == 0;
                for (int32_t k = 0; k < nparts; k++) {
                        int32_t p;
                        if (i32(&r, &p) == -1)
                                return -1;
                        if (same && p == partition)
                                owns = 1;
                }
        }
        return owns;
}
