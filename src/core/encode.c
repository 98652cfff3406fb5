/*
 * encode.c - JSON for every server -> client message (json-c). See include/tb/encode.h
 * for the message shapes and the "unavailable" convention.
 *
 * Design
 *   Each message is built as a json-c tree, serialized once with
 *   JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, and copied into a tb_buf
 *   behind TB_ENCODE_HEADROOM spare bytes (the WebSocket layer writes its frame header
 *   there, so frames are sent without another copy). json-c keeps members in insertion
 *   order, so the output is deterministic: equal inputs give byte-equal messages, which
 *   is what lets the server serialize once per subscription key.
 *   Building never stops half-way on OOM: a small builder records the first failure
 *   (struct jb) and the encoder checks it once at the end, freeing the tree.
 *   Member names are string literals, added with JSON_C_OBJECT_KEY_IS_CONSTANT |
 *   JSON_C_OBJECT_ADD_KEY_IS_NEW (no strdup, no lookup: this matters with 10,000
 *   partition entries).
 *   Doubles are printed with at most 3 decimals through json_object_new_double_s()
 *   (per-object string, no global serializer state). The process never calls
 *   setlocale(), so the decimal point is '.'.
 */
#include "tb/encode.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define JSON_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define KEY_FLAGS (JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_KEY_IS_CONSTANT)

void tb_buf_release(struct tb_buf *b)
{
    if (!b)
        return;
    free(b->mem);
    b->mem = NULL;
    b->len = 0;
}

/* ---- builder ------------------------------------------------------------------ */

struct jb {
    bool oom; /* set by the first failed allocation */
};

/* Adds @val (ownership taken, even on failure) as @key (a string literal) of @obj. */
static void put(struct jb *b, struct json_object *obj, const char *key, struct json_object *val)
{
    if (!obj || !val || json_object_object_add_ex(obj, key, val, KEY_FLAGS) != 0) {
        json_object_put(val);
        b->oom = true;
    }
}

/* JSON null (json-c represents it as a NULL value). */
static void put_null(struct jb *b, struct json_object *obj, const char *key)
{
    if (!obj || json_object_object_add_ex(obj, key, NULL, KEY_FLAGS) != 0)
        b->oom = true;
}

static void append(struct jb *b, struct json_object *arr, struct json_object *val)
{
    if (!arr || !val || json_object_array_add(arr, val) != 0) {
        json_object_put(val);
        b->oom = true;
    }
}

static struct json_object *obj_new(struct jb *b)
{
    struct json_object *o = json_object_new_object();
    if (!o)
        b->oom = true;
    return o;
}

static struct json_object *arr_new(struct jb *b)
{
    struct json_object *a = json_object_new_array();
    if (!a)
        b->oom = true;
    return a;
}

static struct json_object *jstr(const char *s)
{
    return json_object_new_string(s ? s : "");
}

static struct json_object *jint(int64_t v)
{
    return json_object_new_int64(v);
}

static struct json_object *juint(uint64_t v)
{
    return json_object_new_int64(v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v);
}

/* A double written with at most 3 decimals and at least one ("100.0", "0.333"). */
static struct json_object *jdouble(double v)
{
    char buf[400]; /* "%.3f" of DBL_MAX is 313 characters */
    if (!isfinite(v))
        v = 0.0;
    snprintf(buf, sizeof(buf), "%.3f", v);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *end = buf + strlen(buf) - 1;
        while (end > dot + 1 && *end == '0')
            *end-- = '\0';
    }
    if (strcmp(buf, "-0.0") == 0)
        memmove(buf, buf + 1, strlen(buf)); /* "-0.0" -> "0.0" */
    return json_object_new_double_s(strtod(buf, NULL), buf);
}

/* Bytes per second, written as an integer (the spec's type for produceBytes). */
static struct json_object *jbytes_rate(bool available, double v)
{
    return jint(available && isfinite(v) && v > 0 ? (int64_t)llround(v) : 0);
}

static void put_unav(struct jb *b, struct json_object *list, const char *path)
{
    append(b, list, json_object_new_string(path));
}

/* Serializes @root into @out (behind the headroom) and frees @root. */
static int finish(struct jb *b, struct json_object *root, struct tb_buf *out)
{
    out->mem = NULL;
    out->len = 0;
    if (b->oom || !root) {
        json_object_put(root);
        return -ENOMEM;
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(root, JSON_FLAGS, &len);
    if (!s) {
        json_object_put(root);
        return -ENOMEM;
    }
    unsigned char *mem = malloc(TB_ENCODE_HEADROOM + len + 1);
    if (!mem) {
        json_object_put(root);
        return -ENOMEM;
    }
    memset(mem, 0, TB_ENCODE_HEADROOM);
    memcpy(mem + TB_ENCODE_HEADROOM, s, len);
    mem[TB_ENCODE_HEADROOM + len] = '\0';
    json_object_put(root);
    out->mem = mem;
    out->len = len;
    return 0;
}

/* {"type": T, "timestamp": S} */
static struct json_object *envelope(struct jb *b, const char *type, int64_t time_s)
{
    struct json_object *o = obj_new(b);
    put(b, o, "type", jstr(type));
    put(b, o, "timestamp", jint(time_s));
    return o;
}

/* ---- metrics -------------------------------------------------------------------- */

static struct json_object *topic_stats(struct jb *b, const struct tb_metrics *m,
                                       const struct tb_subs *filter)
{
    struct json_object *arr = arr_new(b);
    for (size_t i = 0; m && i < m->topic_count; i++) {
        const struct tb_topic_stats *t = &m->topics[i];
        if (!tb_subs_match_topic(filter, t->name))
            continue;
        struct json_object *o = obj_new(b);
        struct json_object *unav = arr_new(b);
        put(b, o, "name", jstr(t->name));
        put(b, o, "partitions", jint(t->partitions));
        put(b, o, "totalMessages", jint(t->total_messages));
        put(b, o, "totalBytes", jint(t->bytes_available ? t->total_bytes : 0));
        if (!t->bytes_available)
            put_unav(b, unav, "totalBytes");
        put(b, o, "produceRate", jdouble(t->produce_rate_available ? t->produce_rate : 0));
        if (!t->produce_rate_available)
            put_unav(b, unav, "produceRate");
        put(b, o, "fetchRate", jdouble(t->fetch_rate_available ? t->fetch_rate : 0));
        if (!t->fetch_rate_available)
            put_unav(b, unav, "fetchRate");
        /* additive: bytes/s appended to the topic's logs (pod.log_dirs) */
        put(b, o, "produceBytes", jbytes_rate(t->produce_bytes_available, t->produce_bytes_rate));
        if (!t->produce_bytes_available)
            put_unav(b, unav, "produceBytes");
        put(b, o, "unavailable", unav);
        append(b, arr, o);
    }
    return arr;
}

static struct json_object *partition_lag(struct jb *b, const struct tb_partition_lag *p)
{
    struct json_object *o = obj_new(b);
    put(b, o, "partition", jint(p->partition));
    put(b, o, "currentOffset", jint(p->committed));
    put(b, o, "logEndOffset", jint(p->end_unknown || p->end < 0 ? 0 : p->end));
    put(b, o, "lag", jint(p->lag));
    put(b, o, "logStartOffset", jint(p->log_start < 0 ? 0 : p->log_start));
    put(b, o, "expired", json_object_new_boolean(p->expired));
    if (p->end_unknown || p->log_start < 0) {
        struct json_object *unav = arr_new(b);
        if (p->end_unknown) {
            put_unav(b, unav, "logEndOffset");
            put_unav(b, unav, "lag");
        }
        if (p->log_start < 0)
            put_unav(b, unav, "logStartOffset");
        put(b, o, "unavailable", unav);
    }
    return o;
}

static struct json_object *consumer_lags(struct jb *b, const struct tb_metrics *m,
                                         const struct tb_subs *filter)
{
    struct json_object *arr = arr_new(b);
    for (size_t i = 0; m && i < m->group_count; i++) {
        const struct tb_group_lag *g = &m->groups[i];
        if (!tb_subs_match_group(filter, g->group_id))
            continue;
        struct json_object *o = obj_new(b);
        put(b, o, "groupId", jstr(g->group_id));
        put(b, o, "state", jstr(g->state));
        put(b, o, "members", jint(g->members));
        put(b, o, "totalLag", jint(g->total_lag));
        struct json_object *topics = arr_new(b);
        for (size_t k = 0; k < g->topic_count; k++) {
            const struct tb_topic_lag *t = &g->topics[k];
            struct json_object *to = obj_new(b);
            put(b, to, "topic", jstr(t->topic));
            put(b, to, "totalLag", jint(t->total_lag));
            struct json_object *parts = arr_new(b);
            for (size_t p = 0; p < t->partition_count; p++)
                append(b, parts, partition_lag(b, &t->partitions[p]));
            put(b, to, "partitionLags", parts);
            append(b, topics, to);
        }
        put(b, o, "topicLags", topics);
        if (!g->offsets_known) {
            struct json_object *unav = arr_new(b);
            put_unav(b, unav, "totalLag");
            put(b, o, "unavailable", unav);
        }
        if (g->offsets_carried)
            put(b, o, "offsetsStale", json_object_new_boolean(1));
        append(b, arr, o);
    }
    return arr;
}

/* The additive "canary" object: the probe's state and counters (docs/protocol.md). */
static struct json_object *canary_object(struct jb *b, const struct tb_canary_stats *c)
{
    struct json_object *o = obj_new(b);
    const char *state = c->enabled ? (c->state[0] ? c->state : "starting") : "disabled";
    put(b, o, "state", jstr(state));
    put(b, o, "windowSeconds", jint(c->enabled ? c->window_ms / 1000 : 0));
    put(b, o, "partitions", jint(c->partitions));
    put(b, o, "probesSent", juint(c->sent));
    put(b, o, "probesAcked", juint(c->acked));
    put(b, o, "probesReceived", juint(c->received));
    put(b, o, "probesLost", juint(c->lost));
    put(b, o, "produceErrors", juint(c->produce_errors));
    put(b, o, "produceSamples", juint(c->produce_samples));
    put(b, o, "fetchSamples", juint(c->fetch_samples));
    if (c->enabled && c->error[0]) {
        char err[sizeof(c->error) + 1];
        snprintf(err, sizeof(err), "%.*s", (int)sizeof(c->error), c->error);
        put(b, o, "error", jstr(err));
    } else {
        put_null(b, o, "error");
    }
    return o;
}

static struct json_object *metrics_data(struct jb *b, const struct tb_metrics *m,
                                        const struct tb_status *st,
                                        const struct tb_subs *filter, int64_t now_ms)
{
    static const char *const latency_keys[] = {"produceP50", "produceP95", "produceP99",
                                               "fetchP50",   "fetchP95",   "fetchP99"};
    static const char *const latency_paths[] = {
        "latency.produceP50", "latency.produceP95", "latency.produceP99",
        "latency.fetchP50",   "latency.fetchP95",   "latency.fetchP99"};
    static const struct tb_status zero_status;
    struct json_object *d = obj_new(b);
    struct json_object *unav = arr_new(b);
    bool rates = m && m->rates_available;
    const struct tb_canary_stats *cs = st ? &st->canary : &zero_status.canary;
    const struct tb_pod_stats *pod = st ? &st->pod : &zero_status.pod;
    bool sizes = m && m->snap && m->snap->sizes_known && m->snap->disk_bytes >= 0;

    /* throughput */
    struct json_object *tp = obj_new(b);
    put(b, tp, "produceRate", jdouble(rates ? m->produce_rate : 0));
    put(b, tp, "fetchRate", jdouble(rates ? m->fetch_rate : 0));
    bool brates = m && m->bytes_rate_available;
    put(b, tp, "produceBytes", jbytes_rate(brates, brates ? m->produce_bytes_rate : 0));
    /* fetchBytes: bytes served to consumers are not observable from logs or /proc */
    put(b, tp, "fetchBytes", jint(0));
    if (!rates) {
        put_unav(b, unav, "throughput.produceRate");
        put_unav(b, unav, "throughput.fetchRate");
    }
    if (!brates)
        put_unav(b, unav, "throughput.produceBytes");
    put_unav(b, unav, "throughput.fetchBytes");
    put(b, d, "throughput", tp);

    /* latency: the canary's percentiles (ms), when it runs and succeeds */
    struct json_object *lat = obj_new(b);
    const double lat_values[6] = {cs->produce_p50_ms, cs->produce_p95_ms, cs->produce_p99_ms,
                                  cs->fetch_p50_ms,   cs->fetch_p95_ms,   cs->fetch_p99_ms};
    for (size_t i = 0; i < 6; i++) {
        bool ok = cs->enabled && (i < 3 ? cs->produce_available : cs->fetch_available);
        put(b, lat, latency_keys[i], jdouble(ok ? lat_values[i] : 0));
        if (!ok)
            put_unav(b, unav, latency_paths[i]);
    }
    put(b, d, "latency", lat);

    put(b, d, "topicStats", topic_stats(b, m, filter));
    put(b, d, "consumerLags", consumer_lags(b, m, filter));

    /* clusterHealth: cluster-wide, never narrowed */
    struct json_object *ch = obj_new(b);
    put(b, ch, "activeConnections", jint(pod->connections_available ? pod->connections : 0));
    if (!pod->connections_available)
        put_unav(b, unav, "clusterHealth.activeConnections");
    put(b, ch, "totalTopics", jint(m ? (int64_t)m->topic_count : 0));
    put(b, ch, "totalPartitions", jint(m ? m->total_partitions : 0));
    put(b, ch, "totalConsumers", jint(m ? (int64_t)m->group_count : 0));
    if (!m) {
        put_unav(b, unav, "clusterHealth.totalTopics");
        put_unav(b, unav, "clusterHealth.totalPartitions");
        put_unav(b, unav, "clusterHealth.totalConsumers");
    }
    put(b, ch, "diskUsageBytes", jint(sizes ? m->snap->disk_bytes : 0));
    put(b, ch, "memoryUsageBytes", jint(pod->process_available ? pod->memory_bytes : 0));
    put(b, ch, "goroutineCount", jint(pod->process_available ? pod->threads : 0));
    if (!sizes)
        put_unav(b, unav, "clusterHealth.diskUsageBytes");
    if (!pod->process_available) {
        put_unav(b, unav, "clusterHealth.memoryUsageBytes");
        put_unav(b, unav, "clusterHealth.goroutineCount");
    }
    put(b, ch, "brokers", jint(m && m->snap ? m->snap->broker_count : 0));
    if (!m)
        put_unav(b, unav, "clusterHealth.brokers");
    /* additive: whose memory and threads those are */
    if (pod->process_available) {
        put(b, ch, "processSource", jstr(pod->process_is_broker ? "broker" : "bridge"));
        put(b, ch, "processPid", jint(pod->pid));
    } else {
        put_null(b, ch, "processSource");
        put_null(b, ch, "processPid");
    }
    put(b, d, "clusterHealth", ch);

    /* the list is still appended to below (bridge); json-c holds it by reference */
    put(b, d, "unavailable", json_object_get(unav));

    /* collector */
    struct json_object *co = obj_new(b);
    int64_t age = tb_status_age_ms(st, now_ms);
    put(b, co, "stale", json_object_new_boolean(tb_status_is_stale(st, now_ms)));
    if (age >= 0)
        put(b, co, "ageMs", jint(age));
    else
        put_null(b, co, "ageMs");
    if (st && st->last_success_ms > 0)
        put(b, co, "lastSuccess", jint(st->last_success_ms / 1000));
    else
        put_null(b, co, "lastSuccess");
    put(b, co, "cycleMs", jint(st ? st->cycle_ms : 0));
    /* Wall-clock ms when the collector published this cycle: lets a client on a synced
     * clock measure publish-to-receive latency (tests/bench/ws). */
    if (st && st->published_ms > 0)
        put(b, co, "publishedMs", jint(st->published_ms));
    else
        put_null(b, co, "publishedMs");
    put(b, co, "requests", juint(st ? st->requests_last_cycle : 0));
    /* The interval the rates were measured over (monotonic ms between the two cycles'
     * end-offset reads): rate x rateWindowMs / 1000 = messages in that interval. */
    if (m && m->rates_available)
        put(b, co, "rateWindowMs", jint((int64_t)llround(m->rate_window_s * 1000.0)));
    else
        put_null(b, co, "rateWindowMs");
    put(b, co, "cyclesOk", juint(st ? st->cycles_ok : 0));
    put(b, co, "cyclesFailed", juint(st ? st->cycles_failed : 0));
    if (st && st->last_error[0]) {
        char err[sizeof(st->last_error) + 1];
        snprintf(err, sizeof(err), "%.*s", (int)sizeof(st->last_error), st->last_error);
        put(b, co, "error", jstr(err));
    } else {
        put_null(b, co, "error");
    }
    put(b, d, "collector", co);

    /* bridge: the bridge's own librdkafka client, NOT cluster produce/fetch latency */
    struct json_object *br = obj_new(b);
    bool client = st && st->client.available;
    put(b, br, "brokerRttP50Ms", jdouble(client ? st->client.rtt_p50_ms : 0));
    put(b, br, "brokerRttP95Ms", jdouble(client ? st->client.rtt_p95_ms : 0));
    put(b, br, "brokerRttP99Ms", jdouble(client ? st->client.rtt_p99_ms : 0));
    if (!client) {
        put_unav(b, unav, "bridge.brokerRttP50Ms");
        put_unav(b, unav, "bridge.brokerRttP95Ms");
        put_unav(b, unav, "bridge.brokerRttP99Ms");
    }
    put(b, br, "requests", juint(st ? st->client.tx_requests : 0));
    put(b, br, "requestErrors", juint(st ? st->client.tx_errors + st->client.rx_errors : 0));
    put(b, d, "bridge", br);

    put(b, d, "canary", canary_object(b, cs));

    json_object_put(unav); /* our extra reference */
    return d;
}

int tb_encode_metrics(const struct tb_metrics *m, const struct tb_status *st,
                      const struct tb_subs *filter, int64_t now_ms, struct tb_buf *out)
{
    struct jb b = {false};
    struct json_object *root = envelope(&b, "metrics", now_ms / 1000);
    put(&b, root, "data", metrics_data(&b, m, st, filter, now_ms));
    return finish(&b, root, out);
}

int tb_encode_metrics_data(const struct tb_metrics *m, const struct tb_status *st,
                           const struct tb_subs *filter, int64_t now_ms, struct tb_buf *out)
{
    struct jb b = {false};
    return finish(&b, metrics_data(&b, m, st, filter, now_ms), out);
}

/* ---- events and replies ------------------------------------------------------------ */

int tb_encode_event(const struct tb_event *ev, struct tb_buf *out)
{
    struct jb b = {false};
    struct json_object *root = envelope(&b, tb_event_type_name(ev->type), ev->time_s);
    struct json_object *d = obj_new(&b);
    switch (ev->type) {
    case TB_EVENT_TOPIC_CREATED:
        put(&b, d, "name", jstr(ev->name));
        put(&b, d, "partitions", jint(ev->partitions));
        break;
    case TB_EVENT_TOPIC_DELETED:
        put(&b, d, "name", jstr(ev->name));
        break;
    case TB_EVENT_GROUP_UPDATED:
        put(&b, d, "groupId", jstr(ev->name));
        put(&b, d, "state", jstr(ev->state));
        put(&b, d, "members", jint(ev->members));
        break;
    }
    put(&b, root, "data", d);
    return finish(&b, root, out);
}

int tb_encode_pong(int64_t now_ms, struct tb_buf *out)
{
    struct jb b = {false};
    return finish(&b, envelope(&b, "pong", now_ms / 1000), out);
}

int tb_encode_ack(const char *type, const char *item, int64_t now_ms, struct tb_buf *out)
{
    struct jb b = {false};
    struct json_object *root = envelope(&b, type, now_ms / 1000);
    put(&b, root, "data", jstr(item));
    return finish(&b, root, out);
}

int tb_encode_error(const char *code, const char *message, int64_t now_ms, struct tb_buf *out)
{
    struct jb b = {false};
    struct json_object *root = envelope(&b, "error", now_ms / 1000);
    struct json_object *d = obj_new(&b);
    put(&b, d, "code", jstr(code));
    put(&b, d, "message", jstr(message));
    put(&b, root, "data", d);
    return finish(&b, root, out);
}
