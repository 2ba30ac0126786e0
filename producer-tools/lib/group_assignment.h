/* group_assignment.h - which partitions a consumer group member owns, read
 * from the assignment a DescribeGroups answer carries (Kafka's consumer
 * protocol: int16 version, then [topic: int16-length string, partitions:
 * int32 array], then user data; big-endian). Pure: no I/O.
 *
 * The bytes come from the broker: every length is checked against the
 * buffer, and a malformed assignment is reported, never read past.
 *
 * Callers: thopter-status.
 */
#ifndef THOPTER_GROUP_ASSIGNMENT_H
#define THOPTER_GROUP_ASSIGNMENT_H

#include <stddef.h>
#include <stdint.h>

/**
 * @brief Does the assignment @p buf of @p len bytes give the member
 * partition @p partition of @p topic?
 * @returns 1 yes, 0 no, -1 malformed.
 */
int group_assignment_owns(const void *buf,
                          size_t len,
                          const char *topic,
                          int32_t partition);

#endif
