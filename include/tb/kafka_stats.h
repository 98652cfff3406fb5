/*
 * kafka_stats.h - parser for librdkafka's statistics JSON (statistics.interval.ms),
 * used by the collector's stats callback. PURE (json-c only), so it is unit-tested on
 * fixtures without a broker.
 *
 * What is extracted (field names from librdkafka's STATISTICS.md):
 *   - per broker entry of the "brokers" object, skipping librdkafka's own pseudo
 *     brokers (source "internal" or "logical", e.g. ":0/internal", "GroupCoordinator"):
 *     the "rtt" window (microseconds; reset every statistics interval). The broker with
 *     the largest rtt.p99 among those with rtt.cnt > 0 is the "worst broker"; its p50,
 *     p95 and p99 are reported in milliseconds. available = at least one such broker.
 *   - tx_requests: the top-level cumulative "tx" (requests sent to all brokers over
 *     the client's life); when absent, the sum of the brokers' "tx".
 *   - tx_errors / rx_errors: the sum over all broker entries of "txerrs" / "rxerrs"
 *     (cumulative per broker connection object).
 */
#ifndef TB_KAFKA_STATS_H
#define TB_KAFKA_STATS_H

#include "tb/metrics.h"

/*
 * Parse @json (NUL-terminated) into @out (fully overwritten). Returns 0, or -EINVAL
 * when @json is not a JSON object with a "brokers" object (then @out is zeroed,
 * available = false).
 */
int tb_stats_parse(const char *json, struct tb_client_stats *out);

#endif
