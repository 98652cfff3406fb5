/*
 * metrics.h - lag and rates computed from snapshots, and the collector's status.
 * PURE: no I/O. Encoding to JSON lives in encode.h.
 *
 * Lag (per group, topic, partition), for every committed offset the group has:
 *   end   = the partition's high watermark in the same snapshot
 *   lag   = max(0, end - max(committed, log_start))
 *           i.e. when retention deleted data past the committed offset
 *           (committed < log_start) only messages that still exist are counted, and
 *           the partition is flagged `expired`.
 *   A partition with no committed offset is not listed and adds nothing (the group
 *   has no position there). A committed offset on a partition/topic that is not in
 *   the snapshot's metadata (topic deleted, or filtered out) is not listed either.
 *   If the high watermark is unknown (-1) the partition is listed with lag 0 and
 *   flagged unavailable.
 *   topic lag = sum over its listed partitions; group lag = sum over its topics.
 *
 * Rates (messages per second), from the previous complete snapshot @prev and @cur:
 *   dt = (cur->mono_ms - prev->mono_ms) / 1000.0
 *   produce rate of a topic = sum over partitions present in both snapshots of
 *     (hwm_cur - hwm_prev) / dt. If any partition's hwm went DOWN, or the topic is new,
 *     or dt <= 0, the topic's produce rate is UNAVAILABLE this cycle (never negative).
 *   fetch (consume) rate of a topic = sum over (group, partition) pairs present in both
 *     snapshots with committed_cur >= committed_prev of the difference / dt. A
 *     committed offset that went backwards (reset/rewind) contributes nothing.
 *     Unavailable when the topic is new or there is no @prev.
 *   cluster produce/fetch rate = sum over topics whose rate is available; unavailable
 *     when there is no @prev.
 *
 * Decisions (core, implementation notes):
 *   - Produce rate: a partition whose high watermark is unknown (-1) in either snapshot
 *     is skipped (adds nothing, does not make the topic unavailable).
 *   - Fetch rate: only groups whose offsets are FRESH (offsets_known and not
 *     offsets_carried) in both snapshots contribute; carried offsets would read as a
 *     stall and then as a spike. Committed offsets on partitions absent from @cur's
 *     metadata contribute nothing. dt <= 0 makes every rate unavailable.
 *   - Lag with an unknown log start (-1): committed is used as is, never `expired`.
 *   - Stale: tb_status_is_stale() is true when there never was a complete cycle or the
 *     age is strictly greater than stale_after_ms (stale_after_ms <= 0: never stale
 *     once there is data).
 */
#ifndef TB_METRICS_H
#define TB_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/snapshot.h"

struct tb_partition_lag {
    int32_t partition;
    int64_t committed;      /* currentOffset */
    int64_t end;            /* logEndOffset (high watermark), -1 unknown */
    int64_t log_start;      /* -1 unknown */
    int64_t lag;
    bool expired;           /* committed < log_start */
    bool end_unknown;       /* high watermark unavailable: lag is not a measurement */
};

struct tb_topic_lag {
    const char *topic;      /* borrowed from the snapshot */
    int64_t total_lag;
    size_t partition_count;
    struct tb_partition_lag *partitions;
};

struct tb_group_lag {
    const char *group_id;   /* borrowed from the snapshot */
    const char *state;
    int32_t members;
    int64_t total_lag;
    bool offsets_known;     /* false: committed offsets could not be fetched yet */
    bool offsets_carried;   /* offsets are from an earlier cycle */
    size_t topic_count;
    struct tb_topic_lag *topics;
};

struct tb_topic_stats {
    const char *name;       /* borrowed from the snapshot */
    int32_t partitions;
    int64_t total_messages; /* sum of high watermarks (known ones) */
    bool produce_rate_available;
    double produce_rate;    /* messages/s */
    bool fetch_rate_available;
    double fetch_rate;      /* messages/s committed by all groups */
};

struct tb_metrics {
    atomic_int refs;
    struct tb_snapshot *snap;     /* owned reference */
    bool rates_available;
    double produce_rate;          /* messages/s, cluster-wide */
    double fetch_rate;            /* messages/s, cluster-wide */
    double rate_window_s;         /* dt used for the rates */
    int64_t total_partitions;
    size_t topic_count;
    struct tb_topic_stats *topics; /* same order as snap->topics */
    size_t group_count;
    struct tb_group_lag *groups;   /* same order as snap->groups */
};

/*
 * Compute lag and rates. @prev may be NULL (no rates). Takes a new reference on @cur
 * (the caller keeps its own); borrows @prev. Returns NULL on OOM.
 */
struct tb_metrics *tb_metrics_compute(const struct tb_snapshot *prev, struct tb_snapshot *cur);
struct tb_metrics *tb_metrics_ref(struct tb_metrics *m);
void tb_metrics_unref(struct tb_metrics *m); /* NULL is a no-op */

/* The bridge's own librdkafka client statistics (statistics callback), NOT produce or
 * fetch latency of the cluster. */
struct tb_client_stats {
    bool available;
    double rtt_p50_ms, rtt_p95_ms, rtt_p99_ms; /* worst broker's window percentiles */
    uint64_t tx_requests;   /* cumulative requests sent by the bridge's clients */
    uint64_t tx_errors;
    uint64_t rx_errors;
};

/* The collector's health, published with every cycle (successful or not). */
struct tb_status {
    int64_t published_ms;     /* wall clock when published */
    int64_t last_success_ms;  /* wall clock of the last complete cycle; 0 = never */
    int64_t cycle_ms;         /* duration of the latest cycle */
    uint64_t cycles_ok;
    uint64_t cycles_failed;
    bool last_ok;
    char last_error[256];     /* "" when the latest cycle succeeded */
    int64_t stale_after_ms;   /* from config: data older than this is stale */
    struct tb_client_stats client;
};

/* Age of the data in ms at @now_ms; -1 if there never was a complete cycle. */
int64_t tb_status_age_ms(const struct tb_status *st, int64_t now_ms);
/* true when there is no data yet, or it is older than stale_after_ms. */
bool tb_status_is_stale(const struct tb_status *st, int64_t now_ms);

#endif
