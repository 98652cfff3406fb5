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
 * Bytes (docs/metrics-sources.md), only when the snapshots carry a log directory scan
 * (snap->sizes_known, from pod.log_dirs):
 *   total bytes of a topic = sum of its partitions' log_bytes that are >= 0 (replicas
 *     hosted in the scanned directories; a topic with none there has 0 bytes there).
 *     Unavailable when !cur->sizes_known.
 *   produce bytes rate of a topic = sum over partitions of
 *     (log_bytes_cur - log_bytes_prev) / dtb, dtb = (cur->sizes_mono_ms -
 *     prev->sizes_mono_ms) / 1000. UNAVAILABLE this cycle (never negative) when: there
 *     is no @prev, either snapshot has no scan, dtb <= 0, the topic is new, or any
 *     partition SHRANK (retention or compaction deleted a segment, the topic was
 *     deleted and recreated: the bytes appended in that interval are unknown) or
 *     APPEARED or DISAPPEARED in the directories (a replica moved in or out). Partitions
 *     not hosted in either snapshot add nothing.
 *   cluster produce bytes rate = sum over topics whose rate is available; unavailable
 *     when there is no @prev or either snapshot has no scan (like the message rates, it
 *     covers the reported topics only, and in a cycle where some topic's rate is
 *     unavailable it is a lower bound).
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
    bool bytes_available;   /* total_bytes is measured (log directory scan) */
    int64_t total_bytes;    /* bytes of its *.log segments in the scanned directories */
    bool produce_bytes_available;
    double produce_bytes_rate; /* bytes/s appended to its logs */
};

struct tb_metrics {
    atomic_int refs;
    struct tb_snapshot *snap;     /* owned reference */
    bool rates_available;
    double produce_rate;          /* messages/s, cluster-wide */
    double fetch_rate;            /* messages/s, cluster-wide */
    double rate_window_s;         /* dt used for the rates */
    bool bytes_rate_available;
    double produce_bytes_rate;    /* bytes/s, sum over topics whose rate is available */
    double bytes_window_s;        /* dtb used for the byte rates */
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

/*
 * The latency canary (src/kafka/canary.c), read by the collector at the end of each
 * cycle. Latencies are milliseconds over the sliding window (window_ms); a side is
 * available only when it has samples in the window AND succeeded recently (a probe
 * acknowledged, resp. received, within lost_after_ms + interval_ms): a failing canary
 * never shows old percentiles as current. Counters are cumulative since start.
 */
struct tb_canary_stats {
    bool enabled;                 /* canary.enabled */
    bool produce_available, fetch_available;
    double produce_p50_ms, produce_p95_ms, produce_p99_ms; /* send -> broker ack */
    double fetch_p50_ms, fetch_p95_ms, fetch_p99_ms;       /* send -> consumed back */
    uint64_t produce_samples, fetch_samples;               /* in the window */
    uint64_t sent, acked, received, lost, produce_errors;
    int32_t partitions;           /* partitions probed each round; 0 = not probing yet */
    int64_t window_ms;
    char state[16];               /* "disabled" | "starting" | "ok" | "failing" */
    char error[192];              /* why it is failing; "" otherwise */
};

/* Signals of the pod shared with the broker (src/core/pod.c), sampled every cycle. */
struct tb_pod_stats {
    bool connections_available;
    int64_t connections;          /* ESTABLISHED to pod.broker_port */
    bool process_available;
    bool process_is_broker;       /* false: the bridge's own process */
    int32_t pid;
    int64_t memory_bytes;         /* VmRSS */
    int64_t threads;
};

/* The collector's health, published with every cycle (successful or not). */
struct tb_status {
    int64_t published_ms;     /* wall clock when published */
    int64_t last_success_ms;  /* wall clock of the last complete cycle; 0 = never */
    int64_t cycle_ms;         /* duration of the latest cycle */
    uint32_t requests_last_cycle; /* Kafka requests the latest cycle sent (the
                                     collector's estimate, see collector.c) */
    uint64_t cycles_ok;
    uint64_t cycles_failed;
    bool last_ok;
    char last_error[256];     /* "" when the latest cycle succeeded */
    int64_t stale_after_ms;   /* from config: data older than this is stale */
    struct tb_client_stats client;
    struct tb_canary_stats canary; /* zeroed: disabled */
    struct tb_pod_stats pod;       /* zeroed: nothing measured */
};

/* Age of the data in ms at @now_ms; -1 if there never was a complete cycle. */
int64_t tb_status_age_ms(const struct tb_status *st, int64_t now_ms);
/* true when there is no data yet, or it is older than stale_after_ms. */
bool tb_status_is_stale(const struct tb_status *st, int64_t now_ms);

#endif
