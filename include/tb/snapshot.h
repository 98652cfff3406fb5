/*
 * snapshot.h - one complete, immutable picture of the cluster, taken by one collector
 * cycle. PURE data: no librdkafka, no threads (the refcount is atomic so that a
 * snapshot can be shared across threads once published).
 *
 * Lifecycle
 *   tb_snapshot_new() -> add brokers/topics/partitions/groups/offsets (collector thread,
 *   single owner) -> tb_snapshot_finalize() (sorts everything; after this the snapshot
 *   is IMMUTABLE and may be shared) -> tb_snapshot_ref()/tb_snapshot_unref().
 *
 * Ordering after finalize (lookups use binary search):
 *   topics by name (strcmp), partitions of a topic by id, groups by id (strcmp),
 *   offsets of a group by (topic, partition).
 *
 * Offsets use Kafka's conventions: -1 means "unknown / none".
 */
#ifndef TB_SNAPSHOT_H
#define TB_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_partition {
    int32_t id;
    int32_t leader;      /* broker id; -1 if leaderless */
    int64_t log_start;   /* log start offset (low watermark); -1 unknown */
    int64_t high_watermark; /* end offset (read_uncommitted); -1 unknown */
    int64_t log_bytes;   /* bytes of its *.log segments in the pod's log directories
                            (logdirs.h); -1 = not hosted there, or sizes not measured */
};

struct tb_topic {
    char *name;
    size_t partition_count;
    struct tb_partition *partitions;
};

struct tb_group_offset {
    char *topic;
    int32_t partition;
    int64_t committed; /* >= 0; partitions with no committed offset are not stored */
};

struct tb_group {
    char *id;
    char *state;          /* "Stable", "PreparingRebalance", "CompletingRebalance",
                             "Empty", "Dead" or whatever the broker reported */
    int32_t members;
    bool offsets_known;   /* committed offsets were fetched (this cycle or carried) */
    bool offsets_carried; /* this cycle's fetch failed; offsets are from an earlier one */
    int64_t offsets_taken_ms; /* wall clock of the fetch the offsets come from */
    size_t offset_count;
    struct tb_group_offset *offsets;
    size_t offset_cap;    /* builder capacity (private) */
};

struct tb_snapshot {
    atomic_int refs;
    int64_t taken_ms;     /* wall clock (CLOCK_REALTIME) at the start of the cycle, ms */
    int64_t mono_ms;      /* CLOCK_MONOTONIC at the moment end offsets were read, ms:
                             the time base for rates */
    int32_t broker_count;
    int32_t controller_id; /* -1 unknown */
    size_t topic_count;
    struct tb_topic *topics;
    size_t group_count;
    struct tb_group *groups;
    /* log directory scan of the pod (pod.log_dirs), taken right after the end offsets */
    bool sizes_known;     /* the scan succeeded: partitions' log_bytes are measured */
    int64_t sizes_mono_ms; /* CLOCK_MONOTONIC when the scan ended: time base of byte rates */
    int64_t disk_bytes;   /* allocated bytes under the log directories; -1 unknown */
    /* builder capacity (private) */
    size_t topic_cap, group_cap;
};

struct tb_snapshot *tb_snapshot_new(int64_t taken_ms);

/* Builders (before finalize). Strings are copied. Return NULL/-ENOMEM on OOM.
 *
 * Decisions (core, implementation notes):
 *   - tb_snapshot_add_topic() pre-fills partitions[i] with id = i, leader = -1,
 *     log_start = -1, high_watermark = -1, log_bytes = -1; the caller overwrites what
 *     it knows. tb_snapshot_new() starts with sizes_known = false, disk_bytes = -1. The
 *     returned pointer (and that of add_group) is valid only until the next
 *     add_topic (resp. add_group) call on the same snapshot: the array may move.
 *   - tb_snapshot_add_group() starts with offsets_known = offsets_carried = false,
 *     offsets_taken_ms = 0, no offsets. A NULL state is stored as "".
 *   - tb_group_add_offset() with committed < 0 ("no committed offset", -1/-1001)
 *     stores nothing and returns 0.
 *   - tb_group_copy_offsets() REPLACES @to's offsets (flags are left to the caller).
 *   - tb_snapshot_finalize() also de-duplicates: a topic or group added twice under the
 *     same name/id (ListGroups can repeat a group while its coordinator moves), a
 *     partition id listed twice, or a (topic, partition) offset stored twice keeps the
 *     FIRST one added; the others are freed. */
struct tb_topic *tb_snapshot_add_topic(struct tb_snapshot *s, const char *name,
                                       size_t partition_count);
struct tb_group *tb_snapshot_add_group(struct tb_snapshot *s, const char *id,
                                       const char *state, int32_t members);
int tb_group_add_offset(struct tb_group *g, const char *topic, int32_t partition,
                        int64_t committed);
/* Deep-copies the offsets of @from into @to (used to carry a group's last good offsets
 * over a failed fetch). */
int tb_group_copy_offsets(struct tb_group *to, const struct tb_group *from);

/* Sorts topics, partitions, groups and offsets. Call once, before sharing. */
void tb_snapshot_finalize(struct tb_snapshot *s);

/* Lookups on a finalized snapshot (binary search); NULL if absent. */
const struct tb_topic *tb_snapshot_find_topic(const struct tb_snapshot *s, const char *name);
const struct tb_group *tb_snapshot_find_group(const struct tb_snapshot *s, const char *id);
const struct tb_partition *tb_topic_find_partition(const struct tb_topic *t, int32_t id);

size_t tb_snapshot_total_partitions(const struct tb_snapshot *s);

struct tb_snapshot *tb_snapshot_ref(struct tb_snapshot *s);
void tb_snapshot_unref(struct tb_snapshot *s); /* NULL is a no-op; frees at zero */

#endif
