/*
 * encode.h - JSON encoding of every server -> client message. PURE (json-c).
 *
 * Envelope: {"type": T, "timestamp": <integer Unix seconds>, "data": ...}, one JSON
 * document per WebSocket text frame, field names exactly as in the Takhin Console
 * spec (../shared/spec/websocket-api.md); extra fields are additive and documented in
 * docs/protocol.md.
 *
 * Honest numbers: a value that cannot be measured is written as 0 AND its path is
 * listed in the "unavailable" array of the object that holds it ("unavailable" on
 * data lists dotted paths relative to data, e.g. "latency.produceP50"; on a
 * topicStats entry it lists that entry's fields, e.g. "produceRate").
 *
 * Output buffers carry TB_ENCODE_HEADROOM writable bytes BEFORE the payload, so the
 * WebSocket layer can write the frame without copying (LWS_PRE is 16 on 64-bit lws
 * 4.1; TB_ENCODE_HEADROOM must be >= LWS_PRE: the server checks it at build time).
 */
#ifndef TB_ENCODE_H
#define TB_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "tb/events.h"
#include "tb/metrics.h"
#include "tb/subs.h"

/*
 * The metrics "data" object (decisions, core; docs/protocol.md documents them for users):
 *   throughput   {produceRate, fetchRate (messages/s, 3 decimals), produceBytes
 *                 (integer bytes/s from the log directories, m->bytes_rate_available),
 *                 fetchBytes (always 0 + unavailable: not observable)}
 *   latency      {produceP50..fetchP99: the canary's percentiles in ms (3 decimals);
 *                 produce* unavailable unless st->canary.enabled && produce_available,
 *                 fetch* likewise with fetch_available}
 *   topicStats   [{name, partitions, totalMessages, totalBytes (bytes_available),
 *                  produceRate, fetchRate, produceBytes (additive, integer bytes/s),
 *                  unavailable:[those of "totalBytes", "produceRate", "fetchRate",
 *                  "produceBytes" that are unknown, in that order]}]
 *                by name; narrowed by tb_subs_match_topic(filter)
 *   consumerLags [{groupId, state, members, totalLag, topicLags:[{topic, totalLag,
 *                  partitionLags:[{partition, currentOffset, logEndOffset, lag,
 *                  logStartOffset, expired}]}]}] by groupId, topic, partition; narrowed
 *                by tb_subs_match_group(filter). Offsets not known: topicLags [], totalLag 0,
 *                "unavailable":["totalLag"]; carried offsets: "offsetsStale": true.
 *                Partition with unknown end: logEndOffset 0, lag 0,
 *                "unavailable":["logEndOffset","lag"]; unknown log start: logStartOffset 0
 *                and "logStartOffset" in that list.
 *   clusterHealth {activeConnections (st->pod), totalTopics, totalPartitions,
 *                 totalConsumers (= consumer groups), diskUsageBytes (m->snap->disk_bytes
 *                 when sizes_known), memoryUsageBytes, goroutineCount (st->pod: VmRSS and
 *                 thread count), brokers, processSource ("broker"|"bridge"|null) and
 *                 processPid (int|null), additive}; cluster-wide, never narrowed.
 *   unavailable  dotted paths, in the order the fields appear above
 *   collector    {stale, ageMs|null, lastSuccess (Unix s)|null, cycleMs, cyclesOk,
 *                 cyclesFailed, error|null}
 *   bridge       {brokerRttP50Ms, brokerRttP95Ms, brokerRttP99Ms, requests,
 *                 requestErrors (= tx_errors + rx_errors)}: the bridge's own client RTT.
 *   canary       (additive) {state ("disabled"|"starting"|"ok"|"failing"), windowSeconds,
 *                 partitions, probesSent, probesAcked, probesReceived, probesLost,
 *                 produceErrors, produceSamples, fetchSamples, error (string|null)}
 * Doubles are written with at most 3 decimals (e.g. 100.0, 1500.5, 0.333). @st may be
 * NULL (treated as "never succeeded": stale, client stats unavailable).
 */
#define TB_ENCODE_HEADROOM 32

struct tb_buf {
    unsigned char *mem; /* malloc'd: TB_ENCODE_HEADROOM bytes, then len bytes, then NUL */
    size_t len;         /* payload length */
};

static inline char *tb_buf_payload(const struct tb_buf *b)
{
    return (char *)b->mem + TB_ENCODE_HEADROOM;
}
void tb_buf_release(struct tb_buf *b); /* frees mem, zeroes b */

/*
 * The "metrics" message. @m may be NULL (no complete cycle yet: every section is
 * present with zeros, empty lists, and everything listed as unavailable). @filter
 * narrows topicStats and consumerLags (NULL/empty = all); cluster-wide sections stay
 * whole. @now_ms is the envelope time (wall clock, ms). Returns 0 or -ENOMEM.
 */
int tb_encode_metrics(const struct tb_metrics *m, const struct tb_status *st,
                      const struct tb_subs *filter, int64_t now_ms, struct tb_buf *out);

/* The "data" object of the metrics message alone, for GET /api/monitoring/metrics. */
int tb_encode_metrics_data(const struct tb_metrics *m, const struct tb_status *st,
                           const struct tb_subs *filter, int64_t now_ms, struct tb_buf *out);

/* topic_created / topic_deleted / group_updated. */
int tb_encode_event(const struct tb_event *ev, struct tb_buf *out);

/* {"type":"pong","timestamp":now_s} */
int tb_encode_pong(int64_t now_ms, struct tb_buf *out);

/* Additive replies documented in docs/protocol.md:
 *   {"type":"subscribed"|"unsubscribed","timestamp":..,"data":"topic:x"}
 *   {"type":"error","timestamp":..,"data":{"code":"...","message":"..."}}           */
int tb_encode_ack(const char *type, const char *item, int64_t now_ms, struct tb_buf *out);
int tb_encode_error(const char *code, const char *message, int64_t now_ms, struct tb_buf *out);

#endif
