/*
 * collector.h - the librdkafka adapter. Owns the collector thread and its clients.
 *
 * Every kafka.poll_interval_ms (measured start to start; a cycle that overruns is
 * followed immediately by the next), one cycle:
 *   1. metadata for ALL topics (never by name: no auto-creation), brokers, leaders;
 *   2. groups: rd_kafka_list_groups() (ListGroups+DescribeGroups; never
 *      DescribeConsumerGroups, which deadlocks 2.0.2 on errors), de-duplicated;
 *   3. committed offsets of every (filtered) group: ListConsumerGroupOffsets, one group
 *      per request, at most kafka.max_in_flight in flight, tagged by opaque;
 *   4. THEN end offsets (high watermarks, read_uncommitted) and log start offsets with
 *      rd_kafka_offsets_for_times() per chunk of kafka.list_offsets_chunk partitions,
 *      retried once per failed chunk;
 *   4b. topic sizes and disk usage from the pod's log directories (pod.log_dirs);
 *      never fails the cycle;
 *   5. snapshot -> tracker (events) -> metrics -> tb_mailbox_publish(), the status
 *      carrying the canary's measures and the pod's connections, memory and threads.
 * A cycle where 1, 2 (including a _PARTIAL group list) or 4 fails publishes a FAILED
 * status with the last good metrics and no events. A group whose offsets fail keeps
 * its previous offsets, flagged carried.
 *
 * Threads: tb_collector_start() spawns the collector thread; everything else in this
 * module runs on it. tb_collector_stop() may be called from any one thread, once.
 */
#ifndef TB_COLLECTOR_H
#define TB_COLLECTOR_H

#include <stddef.h>

#include "tb/config.h"
#include "tb/mailbox.h"

struct tb_collector;

/* Creates the librdkafka clients (validating the configuration again) and starts the
 * thread, and the latency canary when canary.enabled (include/tb/canary.h). Borrows
 * @cfg and @mb, which must outlive the collector. */
int tb_collector_start(const struct tb_config *cfg, struct tb_mailbox *mb,
                       struct tb_collector **out, char *err, size_t errlen);

/* Signals the thread, interrupts a cycle in progress at its next step (bounded by
 * kafka.request_timeout_ms), joins it and frees everything. NULL is a no-op. */
void tb_collector_stop(struct tb_collector *c);

/* Synchronous probe for the foundation's plain run and for --check-kafka: fetch
 * metadata once; report broker and topic counts. Returns 0 or -errno with @err. */
int tb_collector_probe(const struct tb_config *cfg, int *brokers, int *topics,
                       char *err, size_t errlen);

#endif
