/*
 * canary.h - the end-to-end latency probe (canary.* options; docs/metrics-sources.md).
 *
 * What it does
 *   Every canary.interval_ms it produces one probe message to EVERY partition of
 *   canary.topic (acks=all, linger.ms=0, no idempotence) and consumes them back with
 *   its own consumer, which is assigned all partitions directly (no consumer group, no
 *   commits) from their end offsets. A probe's value carries a run id (random, per
 *   process: probes of other bridges sharing the topic are ignored), a sequence number,
 *   the send time on this process's monotonic clock and the wall-clock creation time:
 *     "takhin-canary/1 <run id, 16 hex> <seq> <send monotonic us> <creation Unix ms>"
 *   Measures (sliding window of canary.window_s, histogram.h: 1 us resolution below
 *   128 us, <= 0.8 % above):
 *     produce latency = produce() call -> broker acknowledgement (librdkafka's own
 *       per-message latency, read in the delivery report on a thread that does nothing
 *       else, so it includes no polling delay);
 *     fetch latency = produce() call -> the message returned by the consumer (end to
 *       end, one clock: no skew between hosts).
 *   A probe not consumed back within canary.lost_after_ms is counted lost (a probe
 *   arriving later is ignored); the producer's message.timeout.ms is lost_after_ms too,
 *   so no probe outlives its deadline in the producer's queue: memory stays bounded
 *   while brokers are down.
 *
 * The topic
 *   Looked up in all-topics metadata (never by name: no auto-creation) when the canary
 *   starts and every 30 s; a failed lookup is retried after 1 s, or after 10 s once
 *   partitions are known, which keep being probed meanwhile (an outage shows as lost
 *   probes, round after round). When missing and canary.create_topic, it is created with
 *   canary.partitions (0 = one per broker) and canary.replication_factor (0 = broker
 *   default), retention.ms = 1 hour. The bridge warns when some broker leads none of
 *   its partitions (that broker's latency is then not probed). Partitions added later
 *   are picked up at the next refresh.
 *
 * Threads: the canary thread (metadata, topic creation, sends, consumer polls, loss
 * accounting) and a delivery-report thread (rd_kafka_poll on the producer). The shared
 * measurements are guarded by one mutex; tb_canary_read() may run on any thread.
 */
#ifndef TB_CANARY_H
#define TB_CANARY_H

#include <stddef.h>

#include "tb/config.h"
#include "tb/metrics.h"

struct tb_canary;

/* Creates the clients and starts the threads. Borrows @cfg (must outlive the canary).
 * Returns 0 or -errno with @err. Topic problems are not errors here: they show as the
 * canary's state ("failing") at run time. */
int tb_canary_start(const struct tb_config *cfg, struct tb_canary **out, char *err,
                    size_t errlen);

/* Stops the threads (bounded by kafka.request_timeout_ms when a metadata or offsets
 * request is in progress) and frees everything. NULL is a no-op. */
void tb_canary_stop(struct tb_canary *c);

/* The current measures; @c NULL fills a disabled canary. Logs state changes. */
void tb_canary_read(struct tb_canary *c, struct tb_canary_stats *out);

#endif
