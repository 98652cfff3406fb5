/*
 * prom.c - GET /metrics: the Prometheus text exposition (format 0.0.4), the bridge's
 * own counters, and a growable text buffer. PURE (libc). See include/tb/ws_internal.h.
 *
 * Honest numbers: a value that was not measured is OMITTED (no sample) rather than
 * written as 0: partitions whose end offset is unknown, groups whose committed offsets
 * could not be fetched, unavailable rates, and the data age before the first complete
 * cycle. Kafka-derived families are absent until the first complete cycle; collector
 * and bridge families are always present; canary families only when canary.enabled,
 * log-directory and pod families only when those sources measured something. Label
 * values are escaped per the format (\\, \", \n). Families are emitted in a fixed
 * order, samples in snapshot order (sorted by name), so the output is deterministic.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/ws_internal.h"

/* ---- text buffer --------------------------------------------------------------------- */

static bool text_reserve(struct tb_ws_text *t, size_t extra)
{
    if (t->oom)
        return false;
    if (t->len + extra + 1 <= t->cap)
        return true;
    size_t ncap = t->cap ? t->cap : 256;
    while (ncap < t->len + extra + 1)
        ncap *= 2;
    char *n = realloc(t->mem, ncap);
    if (!n) {
        t->oom = true;
        return false;
    }
    t->mem = n;
    t->cap = ncap;
    return true;
}

void tb_ws_text_append(struct tb_ws_text *t, const char *s, size_t n)
{
    if (!text_reserve(t, n))
        return;
    memcpy(t->mem + t->len, s, n);
    t->len += n;
    t->mem[t->len] = '\0';
}

void tb_ws_text_printf(struct tb_ws_text *t, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        t->oom = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        tb_ws_text_append(t, small, (size_t)n);
        return;
    }
    if (!text_reserve(t, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(t->mem + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

void tb_ws_text_release(struct tb_ws_text *t)
{
    free(t->mem);
    memset(t, 0, sizeof(*t));
}

/* ---- counters ------------------------------------------------------------------------ */

static const char *const route_labels[TB_WS_ROUTE_COUNT] = {
    [TB_WS_ROUTE_WS] = "/api/monitoring/ws",
    [TB_WS_ROUTE_METRICS_API] = "/api/monitoring/metrics",
    [TB_WS_ROUTE_HEALTHZ] = "/healthz",
    [TB_WS_ROUTE_READYZ] = "/readyz",
    [TB_WS_ROUTE_PROMETHEUS] = "/metrics",
    [TB_WS_ROUTE_OTHER] = "other",
};

const char *tb_ws_route_label(enum tb_ws_route r)
{
    return (unsigned)r < TB_WS_ROUTE_COUNT ? route_labels[r] : "other";
}

enum tb_ws_route tb_ws_route_of(const char *path)
{
    if (!path)
        return TB_WS_ROUTE_OTHER;
    for (int r = 0; r < TB_WS_ROUTE_OTHER; r++)
        if (strcmp(path, route_labels[r]) == 0)
            return (enum tb_ws_route)r;
    return TB_WS_ROUTE_OTHER;
}

void tb_ws_stats_close(struct tb_ws_stats *s, int code)
{
    if (code == 0)
        code = 1006; /* RFC 6455: closed without a close frame */
    for (size_t i = 0; i < s->close_count; i++) {
        if (s->closes[i].code == code) {
            s->closes[i].count++;
            return;
        }
    }
    if (s->close_count < TB_WS_MAX_CLOSE_CODES - 1) {
        s->closes[s->close_count].code = code;
        s->closes[s->close_count].count = 1;
        s->close_count++;
        return;
    }
    /* Table full: the last slot is "other" (code 0). */
    s->closes[TB_WS_MAX_CLOSE_CODES - 1].code = 0;
    s->closes[TB_WS_MAX_CLOSE_CODES - 1].count++;
    s->close_count = TB_WS_MAX_CLOSE_CODES;
}

void tb_ws_stats_http(struct tb_ws_stats *s, enum tb_ws_route route, int status)
{
    for (size_t i = 0; i < s->http_count; i++) {
        if (s->http[i].route == route && s->http[i].status == status) {
            s->http[i].count++;
            return;
        }
    }
    if (s->http_count < TB_WS_MAX_HTTP_SERIES) {
        s->http[s->http_count].route = route;
        s->http[s->http_count].status = status;
        s->http[s->http_count].count = 1;
        s->http_count++;
    }
    /* else: dropped (only 6 routes x a handful of statuses are ever produced) */
}

/* ---- exposition ---------------------------------------------------------------------- */

void tb_ws_prom_escape(struct tb_ws_text *out, const char *s)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '"')
            rep = "\\\"";
        else if (*s == '\n')
            rep = "\\n";
        if (!rep)
            continue;
        tb_ws_text_append(out, run, (size_t)(s - run));
        tb_ws_text_append(out, rep, 2);
        run = s + 1;
    }
    tb_ws_text_append(out, run, (size_t)(s - run));
}

static void family(struct tb_ws_text *out, const char *name, const char *type, const char *help)
{
    tb_ws_text_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void value_double(struct tb_ws_text *out, double v)
{
    if (isnan(v))
        tb_ws_text_append(out, "NaN", 3);
    else if (isinf(v))
        tb_ws_text_printf(out, "%cInf", v > 0 ? '+' : '-');
    else
        tb_ws_text_printf(out, "%.15g", v);
    tb_ws_text_append(out, "\n", 1);
}

/* name{k1="v1"[,k2="v2"[,k3="v3"]]} : up to three labels; a NULL key ends the list. */
static void sample_start(struct tb_ws_text *out, const char *name, const char *k1, const char *v1,
                         const char *k2, const char *v2, const char *k3, const char *v3)
{
    tb_ws_text_append(out, name, strlen(name));
    const char *keys[3] = {k1, k2, k3};
    const char *vals[3] = {v1, v2, v3};
    for (int i = 0; i < 3 && keys[i]; i++) {
        tb_ws_text_printf(out, "%s%s=\"", i == 0 ? "{" : ",", keys[i]);
        tb_ws_prom_escape(out, vals[i] ? vals[i] : "");
        tb_ws_text_append(out, "\"", 1);
    }
    if (k1)
        tb_ws_text_append(out, "}", 1);
    tb_ws_text_append(out, " ", 1);
}

static void sample_i64(struct tb_ws_text *out, const char *name, const char *k1, const char *v1,
                       const char *k2, const char *v2, const char *k3, const char *v3, int64_t v)
{
    sample_start(out, name, k1, v1, k2, v2, k3, v3);
    tb_ws_text_printf(out, "%" PRId64 "\n", v);
}

static void sample_u64(struct tb_ws_text *out, const char *name, const char *k1, const char *v1,
                       uint64_t v)
{
    sample_start(out, name, k1, v1, NULL, NULL, NULL, NULL);
    tb_ws_text_printf(out, "%" PRIu64 "\n", v);
}

static void sample_f(struct tb_ws_text *out, const char *name, const char *k1, const char *v1,
                     double v)
{
    sample_start(out, name, k1, v1, NULL, NULL, NULL, NULL);
    value_double(out, v);
}

static void render_lag(struct tb_ws_text *out, const struct tb_metrics *m)
{
    char part[16];
    family(out, "takhin_consumer_group_lag", "gauge",
           "Messages not yet committed by the group, per partition.");
    for (size_t g = 0; g < m->group_count; g++) {
        const struct tb_group_lag *gl = &m->groups[g];
        if (!gl->offsets_known)
            continue;
        for (size_t t = 0; t < gl->topic_count; t++) {
            const struct tb_topic_lag *tl = &gl->topics[t];
            for (size_t p = 0; p < tl->partition_count; p++) {
                const struct tb_partition_lag *pl = &tl->partitions[p];
                if (pl->end_unknown)
                    continue;
                snprintf(part, sizeof(part), "%" PRId32, pl->partition);
                sample_i64(out, "takhin_consumer_group_lag", "group", gl->group_id, "topic",
                           tl->topic, "partition", part, pl->lag);
            }
        }
    }
    family(out, "takhin_consumer_group_topic_lag", "gauge",
           "Messages not yet committed by the group, per topic.");
    for (size_t g = 0; g < m->group_count; g++) {
        const struct tb_group_lag *gl = &m->groups[g];
        if (!gl->offsets_known)
            continue;
        for (size_t t = 0; t < gl->topic_count; t++)
            sample_i64(out, "takhin_consumer_group_topic_lag", "group", gl->group_id, "topic",
                       gl->topics[t].topic, NULL, NULL, gl->topics[t].total_lag);
    }
    family(out, "takhin_consumer_group_lag_total", "gauge",
           "Messages not yet committed by the group, all topics.");
    for (size_t g = 0; g < m->group_count; g++) {
        const struct tb_group_lag *gl = &m->groups[g];
        if (gl->offsets_known)
            sample_i64(out, "takhin_consumer_group_lag_total", "group", gl->group_id, NULL, NULL,
                       NULL, NULL, gl->total_lag);
    }
    family(out, "takhin_consumer_group_members", "gauge", "Members of the consumer group.");
    for (size_t g = 0; g < m->group_count; g++)
        sample_i64(out, "takhin_consumer_group_members", "group", m->groups[g].group_id, NULL,
                   NULL, NULL, NULL, m->groups[g].members);
}

static void render_topics(struct tb_ws_text *out, const struct tb_metrics *m)
{
    family(out, "takhin_topic_partitions", "gauge", "Partitions of the topic.");
    for (size_t i = 0; i < m->topic_count; i++)
        sample_i64(out, "takhin_topic_partitions", "topic", m->topics[i].name, NULL, NULL, NULL,
                   NULL, m->topics[i].partitions);
    family(out, "takhin_topic_messages", "gauge",
           "Sum of the high watermarks of the topic's partitions.");
    for (size_t i = 0; i < m->topic_count; i++)
        sample_i64(out, "takhin_topic_messages", "topic", m->topics[i].name, NULL, NULL, NULL,
                   NULL, m->topics[i].total_messages);
    family(out, "takhin_topic_produce_rate", "gauge",
           "Messages per second appended to the topic over the last collector interval.");
    for (size_t i = 0; i < m->topic_count; i++)
        if (m->topics[i].produce_rate_available)
            sample_f(out, "takhin_topic_produce_rate", "topic", m->topics[i].name,
                     m->topics[i].produce_rate);
    family(out, "takhin_topic_bytes", "gauge",
           "Bytes of the topic's log segments in the pod's log directories (pod.log_dirs).");
    for (size_t i = 0; i < m->topic_count; i++)
        if (m->topics[i].bytes_available)
            sample_i64(out, "takhin_topic_bytes", "topic", m->topics[i].name, NULL, NULL, NULL,
                       NULL, m->topics[i].total_bytes);
    family(out, "takhin_topic_produce_bytes_rate", "gauge",
           "Bytes per second appended to the topic's logs in the pod's log directories.");
    for (size_t i = 0; i < m->topic_count; i++)
        if (m->topics[i].produce_bytes_available)
            sample_f(out, "takhin_topic_produce_bytes_rate", "topic", m->topics[i].name,
                     m->topics[i].produce_bytes_rate);
    family(out, "takhin_topic_fetch_rate", "gauge",
           "Messages per second committed on the topic by all groups over the last interval.");
    for (size_t i = 0; i < m->topic_count; i++)
        if (m->topics[i].fetch_rate_available)
            sample_f(out, "takhin_topic_fetch_rate", "topic", m->topics[i].name,
                     m->topics[i].fetch_rate);
}

static void render_cluster(struct tb_ws_text *out, const struct tb_metrics *m)
{
    family(out, "takhin_cluster_brokers", "gauge", "Brokers in the cluster metadata.");
    sample_i64(out, "takhin_cluster_brokers", NULL, NULL, NULL, NULL, NULL, NULL,
               m->snap ? m->snap->broker_count : 0);
    family(out, "takhin_cluster_topics", "gauge", "Topics observed (after filters).");
    sample_i64(out, "takhin_cluster_topics", NULL, NULL, NULL, NULL, NULL, NULL,
               (int64_t)m->topic_count);
    family(out, "takhin_cluster_partitions", "gauge", "Partitions of the observed topics.");
    sample_i64(out, "takhin_cluster_partitions", NULL, NULL, NULL, NULL, NULL, NULL,
               m->total_partitions);
    family(out, "takhin_cluster_consumer_groups", "gauge", "Consumer groups observed.");
    sample_i64(out, "takhin_cluster_consumer_groups", NULL, NULL, NULL, NULL, NULL, NULL,
               (int64_t)m->group_count);
    if (m->rates_available) {
        family(out, "takhin_cluster_produce_rate", "gauge",
               "Messages per second appended to all observed topics.");
        sample_f(out, "takhin_cluster_produce_rate", NULL, NULL, m->produce_rate);
        family(out, "takhin_cluster_fetch_rate", "gauge",
               "Messages per second committed by all groups on all observed topics.");
        sample_f(out, "takhin_cluster_fetch_rate", NULL, NULL, m->fetch_rate);
    }
    if (m->bytes_rate_available) {
        family(out, "takhin_cluster_produce_bytes_rate", "gauge",
               "Bytes per second appended to the observed topics' logs in the pod's log "
               "directories.");
        sample_f(out, "takhin_cluster_produce_bytes_rate", NULL, NULL, m->produce_bytes_rate);
    }
    if (m->snap && m->snap->sizes_known && m->snap->disk_bytes >= 0) {
        family(out, "takhin_log_dirs_disk_bytes", "gauge",
               "Bytes allocated under the pod's log directories (all files).");
        sample_i64(out, "takhin_log_dirs_disk_bytes", NULL, NULL, NULL, NULL, NULL, NULL,
                   m->snap->disk_bytes);
    }
}

/* The latency canary (families only when canary.enabled; latencies only when measured). */
static void render_canary(struct tb_ws_text *out, const struct tb_canary_stats *c)
{
    if (!c->enabled)
        return;
    family(out, "takhin_canary_up", "gauge",
           "1 if the latency canary is probing successfully (state \"ok\").");
    sample_i64(out, "takhin_canary_up", NULL, NULL, NULL, NULL, NULL, NULL,
               strcmp(c->state, "ok") == 0 ? 1 : 0);
    family(out, "takhin_canary_latency_seconds", "gauge",
           "Canary latency percentiles over canary.window_s: produce = send to broker "
           "acknowledgement, fetch = send to consumed back.");
    static const char *const q[3] = {"0.5", "0.95", "0.99"};
    if (c->produce_available) {
        const double v[3] = {c->produce_p50_ms, c->produce_p95_ms, c->produce_p99_ms};
        for (int i = 0; i < 3; i++) {
            sample_start(out, "takhin_canary_latency_seconds", "side", "produce", "quantile",
                         q[i], NULL, NULL);
            value_double(out, v[i] / 1000.0);
        }
    }
    if (c->fetch_available) {
        const double v[3] = {c->fetch_p50_ms, c->fetch_p95_ms, c->fetch_p99_ms};
        for (int i = 0; i < 3; i++) {
            sample_start(out, "takhin_canary_latency_seconds", "side", "fetch", "quantile", q[i],
                         NULL, NULL);
            value_double(out, v[i] / 1000.0);
        }
    }
    family(out, "takhin_canary_probes_total", "counter", "Canary probes, by outcome.");
    sample_u64(out, "takhin_canary_probes_total", "result", "sent", c->sent);
    sample_u64(out, "takhin_canary_probes_total", "result", "acked", c->acked);
    sample_u64(out, "takhin_canary_probes_total", "result", "received", c->received);
    sample_u64(out, "takhin_canary_probes_total", "result", "lost", c->lost);
    sample_u64(out, "takhin_canary_probes_total", "result", "produce_error", c->produce_errors);
}

/* Pod-local signals (families only when measured). */
static void render_pod(struct tb_ws_text *out, const struct tb_pod_stats *p)
{
    if (p->connections_available) {
        family(out, "takhin_broker_connections", "gauge",
               "Established TCP connections to the broker's listener port (pod.broker_port).");
        sample_i64(out, "takhin_broker_connections", NULL, NULL, NULL, NULL, NULL, NULL,
                   p->connections);
    }
    if (p->process_available) {
        const char *src = p->process_is_broker ? "broker" : "bridge";
        family(out, "takhin_process_resident_memory_bytes", "gauge",
               "Resident memory (VmRSS) of the broker process, or of the bridge's own.");
        sample_i64(out, "takhin_process_resident_memory_bytes", "source", src, NULL, NULL, NULL,
                   NULL, p->memory_bytes);
        family(out, "takhin_process_threads", "gauge",
               "Threads of the broker process, or of the bridge's own.");
        sample_i64(out, "takhin_process_threads", "source", src, NULL, NULL, NULL, NULL,
                   p->threads);
    }
}

static void render_collector(struct tb_ws_text *out, const struct tb_update *u, int64_t now_ms)
{
    const struct tb_status *st = u ? &u->status : NULL;
    family(out, "takhin_collector_up", "gauge", "1 if the latest collector cycle succeeded.");
    sample_i64(out, "takhin_collector_up", NULL, NULL, NULL, NULL, NULL, NULL,
               st && st->last_ok ? 1 : 0);
    family(out, "takhin_collector_cycles_total", "counter", "Collector cycles by outcome.");
    sample_u64(out, "takhin_collector_cycles_total", "result", "ok", st ? st->cycles_ok : 0);
    sample_u64(out, "takhin_collector_cycles_total", "result", "failed",
               st ? st->cycles_failed : 0);
    family(out, "takhin_collector_cycle_seconds", "gauge", "Duration of the latest cycle.");
    if (st)
        sample_f(out, "takhin_collector_cycle_seconds", NULL, NULL, (double)st->cycle_ms / 1000.0);
    family(out, "takhin_collector_data_age_seconds", "gauge",
           "Age of the data served (since the start of the last complete cycle).");
    int64_t age = st ? tb_status_age_ms(st, now_ms) : -1;
    if (age >= 0)
        sample_f(out, "takhin_collector_data_age_seconds", NULL, NULL, (double)age / 1000.0);
    family(out, "takhin_collector_last_success_timestamp_seconds", "gauge",
           "Unix time of the last complete cycle.");
    if (st && st->last_success_ms > 0)
        sample_f(out, "takhin_collector_last_success_timestamp_seconds", NULL, NULL,
                 (double)st->last_success_ms / 1000.0);
}

static void render_bridge(struct tb_ws_text *out, const struct tb_ws_stats *s)
{
    char code[16], status[16];
    family(out, "takhin_ws_clients", "gauge", "Connected WebSocket clients.");
    sample_u64(out, "takhin_ws_clients", NULL, NULL, s->clients);
    family(out, "takhin_ws_connections_total", "counter", "WebSocket connections accepted.");
    sample_u64(out, "takhin_ws_connections_total", NULL, NULL, s->connections_total);
    family(out, "takhin_ws_messages_sent_total", "counter", "WebSocket messages sent, by type.");
    for (int k = 0; k < TB_WS_KIND_COUNT; k++)
        sample_u64(out, "takhin_ws_messages_sent_total", "type",
                   tb_ws_kind_name((enum tb_ws_kind)k), s->messages_sent[k]);
    family(out, "takhin_ws_bytes_sent_total", "counter", "WebSocket payload bytes sent.");
    sample_u64(out, "takhin_ws_bytes_sent_total", NULL, NULL, s->bytes_sent);
    family(out, "takhin_ws_dropped_metrics_total", "counter",
           "Metrics messages superseded by newer ones before a slow client could take them.");
    sample_u64(out, "takhin_ws_dropped_metrics_total", NULL, NULL, s->dropped_metrics);
    family(out, "takhin_ws_events_dropped_total", "counter",
           "Events dropped by the collector mailbox because the service thread fell behind.");
    sample_u64(out, "takhin_ws_events_dropped_total", NULL, NULL, s->events_dropped);
    family(out, "takhin_ws_closes_total", "counter",
           "WebSocket connections ended, by close code (1006: no close frame; 0: other).");
    for (size_t i = 0; i < s->close_count; i++) {
        snprintf(code, sizeof(code), "%d", s->closes[i].code);
        sample_u64(out, "takhin_ws_closes_total", "code", code, s->closes[i].count);
    }
    family(out, "takhin_http_requests_total", "counter",
           "HTTP requests (including WebSocket upgrades), by route and status.");
    for (size_t i = 0; i < s->http_count; i++) {
        snprintf(status, sizeof(status), "%d", s->http[i].status);
        sample_start(out, "takhin_http_requests_total", "path", tb_ws_route_label(s->http[i].route),
                     "status", status, NULL, NULL);
        tb_ws_text_printf(out, "%" PRIu64 "\n", s->http[i].count);
    }
}

void tb_ws_prom_render(const struct tb_update *u, const struct tb_ws_stats *st, int64_t now_ms,
                       struct tb_ws_text *out)
{
    const struct tb_metrics *m = u ? u->metrics : NULL;
    if (m) {
        render_lag(out, m);
        render_topics(out, m);
        render_cluster(out, m);
    }
    render_collector(out, u, now_ms);
    if (u) {
        render_canary(out, &u->status.canary);
        render_pod(out, &u->status.pod);
    }
    render_bridge(out, st);
}
