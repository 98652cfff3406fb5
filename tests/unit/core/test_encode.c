/*
 * test_encode.c - unit tests for src/core/encode.c (include/tb/encode.h). Every message
 * is parsed back with json-c and checked field by field against hand-computed values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "tb/encode.h"

#define EPS 1e-9
#define NOW_MS 1704225601500 /* envelope timestamp 1704225601 */

/* ---- helpers ---------------------------------------------------------------- */

/* Checks the buffer invariants and returns the parsed payload (caller puts it). */
static struct json_object *parse_buf(const struct tb_buf *b)
{
    assert_non_null(b->mem);
    assert_ptr_equal(tb_buf_payload(b), (char *)b->mem + TB_ENCODE_HEADROOM);
    assert_int_equal(tb_buf_payload(b)[b->len], '\0');
    assert_int_equal(strlen(tb_buf_payload(b)), b->len);
    assert_true(b->len > 0);
    assert_int_equal(tb_buf_payload(b)[0], '{');
    struct json_object *o = json_tokener_parse(tb_buf_payload(b));
    assert_non_null(o);
    return o;
}

/* "a.b.0.c": object members and array indexes. Fails the test if absent. */
static struct json_object *jp(struct json_object *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
        struct json_object *next = NULL;
        if (json_object_is_type(o, json_type_array)) {
            size_t i = (size_t)strtoul(tok, NULL, 10);
            if (i >= json_object_array_length(o))
                fail_msg("%s: index %zu out of range", path, i);
            next = json_object_array_get_idx(o, i);
        } else if (!json_object_object_get_ex(o, tok, &next)) {
            fail_msg("%s: no member %s", path, tok);
        }
        o = next;
    }
    return o;
}

static bool jhas(struct json_object *o, const char *member)
{
    return json_object_object_get_ex(o, member, NULL);
}

static void assert_int_at(struct json_object *o, const char *path, int64_t v)
{
    struct json_object *x = jp(o, path);
    if (!json_object_is_type(x, json_type_int))
        fail_msg("%s is not an integer", path);
    assert_int_equal(json_object_get_int64(x), v);
}

static void assert_double_at(struct json_object *o, const char *path, double v)
{
    struct json_object *x = jp(o, path);
    if (!json_object_is_type(x, json_type_double))
        fail_msg("%s is not a double", path);
    assert_float_equal(json_object_get_double(x), v, EPS);
}

static void assert_str_at(struct json_object *o, const char *path, const char *v)
{
    struct json_object *x = jp(o, path);
    if (!json_object_is_type(x, json_type_string))
        fail_msg("%s is not a string", path);
    assert_string_equal(json_object_get_string(x), v);
}

static void assert_bool_at(struct json_object *o, const char *path, bool v)
{
    struct json_object *x = jp(o, path);
    if (!json_object_is_type(x, json_type_boolean))
        fail_msg("%s is not a boolean", path);
    assert_int_equal(json_object_get_boolean(x), v);
}

static void assert_null_at(struct json_object *o, const char *path)
{
    assert_true(json_object_is_type(jp(o, path), json_type_null));
}

static size_t len_at(struct json_object *o, const char *path)
{
    struct json_object *x = jp(o, path);
    assert_true(json_object_is_type(x, json_type_array));
    return json_object_array_length(x);
}

/* Asserts that the array at @path holds exactly the NULL-terminated strings @v. */
static void assert_strs_at(struct json_object *o, const char *path, const char *const *v)
{
    size_t n = 0;
    while (v[n])
        n++;
    struct json_object *a = jp(o, path);
    assert_true(json_object_is_type(a, json_type_array));
    if (json_object_array_length(a) != n)
        fail_msg("%s: %zu entries, expected %zu (%s)", path, json_object_array_length(a),
                 n, json_object_to_json_string(a));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_object_get_string(json_object_array_get_idx(a, i)), v[i]);
}

#define STRS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- fixtures ----------------------------------------------------------------- */

static void topic(struct tb_snapshot *s, const char *name, size_t n, const int64_t *hwm,
                  const int64_t *ls)
{
    struct tb_topic *t = tb_snapshot_add_topic(s, name, n);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        t->partitions[i].high_watermark = hwm[i];
        t->partitions[i].log_start = ls ? ls[i] : 0;
    }
}

/*
 * prev (mono 1000): a {100,200,300}, b {10};  g1: a/0 80, a/1 180, a/2 10, b/0 3
 * cur  (mono 3000): a {150,250,400} ls {0,0,50}, b {-1} (end unknown), c {5} (new)
 *   g1 Stable/2:  a/0 90, a/1 200, a/2 10, b/0 3
 *      lags: a/0 60, a/1 50, a/2 400-50 = 350 (expired) -> a 460; b/0 unknown end -> 0
 *   g2 Empty/0:   offsets not known
 *   g3 Stable/1:  carried; a/0 150 -> lag 0
 * rates (dt 2 s): produce a (50+50+100)/2 = 100.0; b: p0 unknown now, skipped -> 0.0;
 *   c unavailable. fetch a: g1 (10+20+0)/2 = 15.0 (g3 carried: nothing); b 0.0.
 *   cluster produce 100.0, fetch 15.0.
 */
static struct tb_metrics *fixture_metrics(void)
{
    struct tb_snapshot *p = tb_snapshot_new(1704225598000);
    p->mono_ms = 1000;
    p->broker_count = 3;
    topic(p, "a", 3, (int64_t[]){100, 200, 300}, NULL);
    topic(p, "b", 1, (int64_t[]){10}, NULL);
    struct tb_group *g = tb_snapshot_add_group(p, "g1", "Stable", 2);
    g->offsets_known = true;
    tb_group_add_offset(g, "a", 0, 80);
    tb_group_add_offset(g, "a", 1, 180);
    tb_group_add_offset(g, "a", 2, 10);
    tb_group_add_offset(g, "b", 0, 3);
    g = tb_snapshot_add_group(p, "g3", "Stable", 1);
    g->offsets_known = true;
    tb_group_add_offset(g, "a", 0, 100);
    tb_snapshot_finalize(p);

    struct tb_snapshot *c = tb_snapshot_new(1704225600000);
    c->mono_ms = 3000;
    c->broker_count = 3;
    c->controller_id = 1;
    topic(c, "c", 1, (int64_t[]){5}, NULL);
    topic(c, "a", 3, (int64_t[]){150, 250, 400}, (int64_t[]){0, 0, 50});
    topic(c, "b", 1, (int64_t[]){-1}, NULL);
    g = tb_snapshot_add_group(c, "g3", "Stable", 1);
    g->offsets_known = true;
    g->offsets_carried = true;
    tb_group_add_offset(g, "a", 0, 150);
    g = tb_snapshot_add_group(c, "g2", "Empty", 0);
    g->offsets_known = false;
    g = tb_snapshot_add_group(c, "g1", "Stable", 2);
    g->offsets_known = true;
    tb_group_add_offset(g, "a", 0, 90);
    tb_group_add_offset(g, "a", 1, 200);
    tb_group_add_offset(g, "a", 2, 10);
    tb_group_add_offset(g, "b", 0, 3);
    tb_snapshot_finalize(c);

    struct tb_metrics *m = tb_metrics_compute(p, c);
    assert_non_null(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
    return m;
}

static struct tb_status fixture_status(void)
{
    struct tb_status st;
    memset(&st, 0, sizeof(st));
    st.published_ms = 1704225600100;
    st.last_success_ms = 1704225600000;
    st.cycle_ms = 42;
    st.requests_last_cycle = 1023;
    st.cycles_ok = 7;
    st.cycles_failed = 1;
    st.last_ok = true;
    st.stale_after_ms = 10000;
    st.client.available = true;
    st.client.rtt_p50_ms = 1.5;
    st.client.rtt_p95_ms = 2.25;
    st.client.rtt_p99_ms = 3.125;
    st.client.tx_requests = 100;
    st.client.tx_errors = 2;
    st.client.rx_errors = 3;
    return st;
}

static const char *const always_unavailable[] = {
    "throughput.produceBytes", "throughput.fetchBytes", "latency.produceP50",
    "latency.produceP95", "latency.produceP99", "latency.fetchP50", "latency.fetchP95",
    "latency.fetchP99", "clusterHealth.activeConnections", "clusterHealth.diskUsageBytes",
    "clusterHealth.memoryUsageBytes", "clusterHealth.goroutineCount", NULL,
};

/* ---- small messages ----------------------------------------------------------- */

static void test_pong(void **state)
{
    (void)state;
    struct tb_buf b = {0};
    assert_int_equal(tb_encode_pong(1704225600999, &b), 0);
    struct json_object *o = parse_buf(&b);
    assert_string_equal(tb_buf_payload(&b), "{\"type\":\"pong\",\"timestamp\":1704225600}");
    assert_int_equal(b.len, strlen("{\"type\":\"pong\",\"timestamp\":1704225600}"));
    assert_false(jhas(o, "data"));
    json_object_put(o);
    tb_buf_release(&b);
    assert_null(b.mem);
    assert_int_equal(b.len, 0);
    tb_buf_release(&b); /* released twice: harmless */
}

static void test_ack_and_error(void **state)
{
    (void)state;
    struct tb_buf b = {0};
    assert_int_equal(tb_encode_ack("subscribed", "topic:a/b", 5000, &b), 0);
    assert_string_equal(tb_buf_payload(&b),
                        "{\"type\":\"subscribed\",\"timestamp\":5,\"data\":\"topic:a/b\"}");
    struct json_object *o = parse_buf(&b);
    assert_str_at(o, "data", "topic:a/b");
    json_object_put(o);
    tb_buf_release(&b);

    assert_int_equal(tb_encode_ack("unsubscribed", "group:g*", 6999, &b), 0);
    o = parse_buf(&b);
    assert_str_at(o, "type", "unsubscribed");
    assert_int_at(o, "timestamp", 6);
    assert_str_at(o, "data", "group:g*");
    json_object_put(o);
    tb_buf_release(&b);

    assert_int_equal(tb_encode_error("bad_request", "a \"quoted\"\nthing", 7000, &b), 0);
    assert_string_equal(tb_buf_payload(&b),
                        "{\"type\":\"error\",\"timestamp\":7,\"data\":{\"code\":\"bad_request\","
                        "\"message\":\"a \\\"quoted\\\"\\nthing\"}}");
    o = parse_buf(&b);
    assert_str_at(o, "data.code", "bad_request");
    assert_str_at(o, "data.message", "a \"quoted\"\nthing");
    json_object_put(o);
    tb_buf_release(&b);
}

static void test_events(void **state)
{
    (void)state;
    struct tb_buf b = {0};
    struct tb_event ev = {.type = TB_EVENT_TOPIC_CREATED, .name = (char *)"new-topic",
                          .partitions = 5, .time_s = 1704225600};
    assert_int_equal(tb_encode_event(&ev, &b), 0);
    assert_string_equal(tb_buf_payload(&b),
                        "{\"type\":\"topic_created\",\"timestamp\":1704225600,"
                        "\"data\":{\"name\":\"new-topic\",\"partitions\":5}}");
    struct json_object *o = parse_buf(&b);
    json_object_put(o);
    tb_buf_release(&b);

    ev = (struct tb_event){.type = TB_EVENT_TOPIC_DELETED, .name = (char *)"old-topic",
                           .time_s = 1704225601};
    assert_int_equal(tb_encode_event(&ev, &b), 0);
    assert_string_equal(tb_buf_payload(&b),
                        "{\"type\":\"topic_deleted\",\"timestamp\":1704225601,"
                        "\"data\":{\"name\":\"old-topic\"}}");
    tb_buf_release(&b);

    ev = (struct tb_event){.type = TB_EVENT_GROUP_UPDATED, .name = (char *)"consumer-group-1",
                           .state = (char *)"Stable", .members = 3, .time_s = 1704225602};
    assert_int_equal(tb_encode_event(&ev, &b), 0);
    assert_string_equal(tb_buf_payload(&b),
                        "{\"type\":\"group_updated\",\"timestamp\":1704225602,"
                        "\"data\":{\"groupId\":\"consumer-group-1\",\"state\":\"Stable\","
                        "\"members\":3}}");
    o = parse_buf(&b);
    assert_int_at(o, "data.members", 3);
    json_object_put(o);
    tb_buf_release(&b);
}

/* ---- metrics ------------------------------------------------------------------- */

static void test_metrics_full(void **state)
{
    (void)state;
    struct tb_metrics *m = fixture_metrics();
    struct tb_status st = fixture_status();
    struct tb_buf b = {0};
    assert_int_equal(tb_encode_metrics(m, &st, NULL, NOW_MS, &b), 0);
    struct json_object *o = parse_buf(&b);
    assert_str_at(o, "type", "metrics");
    assert_int_at(o, "timestamp", 1704225601);
    struct json_object *d = jp(o, "data");

    /* throughput */
    assert_double_at(d, "throughput.produceRate", 100.0);
    assert_double_at(d, "throughput.fetchRate", 15.0);
    assert_int_at(d, "throughput.produceBytes", 0);
    assert_int_at(d, "throughput.fetchBytes", 0);
    /* latency: not measurable */
    assert_double_at(d, "latency.produceP50", 0);
    assert_double_at(d, "latency.produceP95", 0);
    assert_double_at(d, "latency.produceP99", 0);
    assert_double_at(d, "latency.fetchP50", 0);
    assert_double_at(d, "latency.fetchP95", 0);
    assert_double_at(d, "latency.fetchP99", 0);

    /* topicStats by name: a, b, c */
    assert_int_equal(len_at(d, "topicStats"), 3);
    assert_str_at(d, "topicStats.0.name", "a");
    assert_int_at(d, "topicStats.0.partitions", 3);
    assert_int_at(d, "topicStats.0.totalMessages", 800);
    assert_int_at(d, "topicStats.0.totalBytes", 0);
    assert_double_at(d, "topicStats.0.produceRate", 100.0);
    assert_double_at(d, "topicStats.0.fetchRate", 15.0);
    assert_strs_at(d, "topicStats.0.unavailable", STRS("totalBytes", "produceBytes"));
    assert_str_at(d, "topicStats.1.name", "b");
    assert_int_at(d, "topicStats.1.totalMessages", 0);
    assert_double_at(d, "topicStats.1.produceRate", 0.0);
    assert_double_at(d, "topicStats.1.fetchRate", 0.0);
    assert_strs_at(d, "topicStats.1.unavailable", STRS("totalBytes", "produceBytes"));
    assert_str_at(d, "topicStats.2.name", "c");
    assert_int_at(d, "topicStats.2.partitions", 1);
    assert_int_at(d, "topicStats.2.totalMessages", 5);
    assert_double_at(d, "topicStats.2.produceRate", 0.0);
    assert_double_at(d, "topicStats.2.fetchRate", 0.0);
    assert_strs_at(d, "topicStats.2.unavailable",
                   STRS("totalBytes", "produceRate", "fetchRate", "produceBytes"));

    /* consumerLags by groupId: g1, g2, g3 */
    assert_int_equal(len_at(d, "consumerLags"), 3);
    struct json_object *g1 = jp(d, "consumerLags.0");
    assert_str_at(g1, "groupId", "g1");
    assert_str_at(g1, "state", "Stable");
    assert_int_at(g1, "members", 2);
    assert_int_at(g1, "totalLag", 460);
    assert_false(jhas(g1, "unavailable"));
    assert_false(jhas(g1, "offsetsStale"));
    assert_int_equal(len_at(g1, "topicLags"), 2);
    assert_str_at(g1, "topicLags.0.topic", "a");
    assert_int_at(g1, "topicLags.0.totalLag", 460);
    assert_int_equal(len_at(g1, "topicLags.0.partitionLags"), 3);
    struct json_object *pl = jp(g1, "topicLags.0.partitionLags.0");
    assert_int_at(pl, "partition", 0);
    assert_int_at(pl, "currentOffset", 90);
    assert_int_at(pl, "logEndOffset", 150);
    assert_int_at(pl, "lag", 60);
    assert_int_at(pl, "logStartOffset", 0);
    assert_bool_at(pl, "expired", false);
    assert_false(jhas(pl, "unavailable"));
    assert_int_at(g1, "topicLags.0.partitionLags.1.lag", 50);
    pl = jp(g1, "topicLags.0.partitionLags.2");
    assert_int_at(pl, "partition", 2);
    assert_int_at(pl, "currentOffset", 10);
    assert_int_at(pl, "logEndOffset", 400);
    assert_int_at(pl, "logStartOffset", 50);
    assert_int_at(pl, "lag", 350);
    assert_bool_at(pl, "expired", true);
    assert_str_at(g1, "topicLags.1.topic", "b");
    assert_int_at(g1, "topicLags.1.totalLag", 0);
    pl = jp(g1, "topicLags.1.partitionLags.0");
    assert_int_at(pl, "partition", 0);
    assert_int_at(pl, "currentOffset", 3);
    assert_int_at(pl, "logEndOffset", 0);
    assert_int_at(pl, "lag", 0);
    assert_strs_at(pl, "unavailable", STRS("logEndOffset", "lag"));

    struct json_object *g2 = jp(d, "consumerLags.1");
    assert_str_at(g2, "groupId", "g2");
    assert_str_at(g2, "state", "Empty");
    assert_int_at(g2, "members", 0);
    assert_int_at(g2, "totalLag", 0);
    assert_int_equal(len_at(g2, "topicLags"), 0);
    assert_strs_at(g2, "unavailable", STRS("totalLag"));
    assert_false(jhas(g2, "offsetsStale"));

    struct json_object *g3 = jp(d, "consumerLags.2");
    assert_str_at(g3, "groupId", "g3");
    assert_int_at(g3, "totalLag", 0);
    assert_bool_at(g3, "offsetsStale", true);
    assert_false(jhas(g3, "unavailable"));
    assert_int_at(g3, "topicLags.0.partitionLags.0.currentOffset", 150);

    /* clusterHealth: cluster-wide */
    assert_int_at(d, "clusterHealth.activeConnections", 0);
    assert_int_at(d, "clusterHealth.totalTopics", 3);
    assert_int_at(d, "clusterHealth.totalPartitions", 5);
    assert_int_at(d, "clusterHealth.totalConsumers", 3);
    assert_int_at(d, "clusterHealth.diskUsageBytes", 0);
    assert_int_at(d, "clusterHealth.memoryUsageBytes", 0);
    assert_int_at(d, "clusterHealth.goroutineCount", 0);
    assert_int_at(d, "clusterHealth.brokers", 3);
    assert_null_at(d, "clusterHealth.processSource");
    assert_null_at(d, "clusterHealth.processPid");

    assert_strs_at(d, "unavailable", always_unavailable);

    /* canary: not enabled */
    assert_str_at(d, "canary.state", "disabled");
    assert_int_at(d, "canary.probesSent", 0);
    assert_int_at(d, "canary.probesLost", 0);
    assert_null_at(d, "canary.error");

    /* collector */
    assert_bool_at(d, "collector.stale", false);
    assert_int_at(d, "collector.ageMs", 1500);
    assert_int_at(d, "collector.lastSuccess", 1704225600);
    assert_int_at(d, "collector.cycleMs", 42);
    assert_int_at(d, "collector.requests", 1023);
    assert_int_at(d, "collector.cyclesOk", 7);
    assert_int_at(d, "collector.cyclesFailed", 1);
    assert_null_at(d, "collector.error");

    /* bridge */
    assert_double_at(d, "bridge.brokerRttP50Ms", 1.5);
    assert_double_at(d, "bridge.brokerRttP95Ms", 2.25);
    assert_double_at(d, "bridge.brokerRttP99Ms", 3.125);
    assert_int_at(d, "bridge.requests", 100);
    assert_int_at(d, "bridge.requestErrors", 5);

    /* field names exactly as the spec's example */
    const char *payload = tb_buf_payload(&b);
    assert_non_null(strstr(payload, "\"produceRate\":100.0,"));
    json_object_put(o);
    tb_buf_release(&b);
    tb_metrics_unref(m);
}

static void test_metrics_data_only(void **state)
{
    (void)state;
    struct tb_metrics *m = fixture_metrics();
    struct tb_status st = fixture_status();
    struct tb_buf b = {0};
    struct tb_buf full = {0};
    assert_int_equal(tb_encode_metrics_data(m, &st, NULL, NOW_MS, &b), 0);
    struct json_object *d = parse_buf(&b);
    assert_false(jhas(d, "type"));
    assert_false(jhas(d, "timestamp"));
    assert_double_at(d, "throughput.produceRate", 100.0);
    assert_int_at(d, "clusterHealth.totalTopics", 3);
    /* byte-identical to the envelope's data */
    assert_int_equal(tb_encode_metrics(m, &st, NULL, NOW_MS, &full), 0);
    assert_non_null(strstr(tb_buf_payload(&full), tb_buf_payload(&b)));
    json_object_put(d);
    tb_buf_release(&b);
    tb_buf_release(&full);
    tb_metrics_unref(m);
}

static void test_metrics_filter(void **state)
{
    (void)state;
    struct tb_metrics *m = fixture_metrics();
    struct tb_status st = fixture_status();
    struct tb_subs *f = tb_subs_new();
    const char *why;
    assert_int_equal(tb_subs_add(f, "topic:a", &why), 0);
    struct tb_buf b = {0};
    assert_int_equal(tb_encode_metrics(m, &st, f, NOW_MS, &b), 0);
    struct json_object *o = parse_buf(&b);
    struct json_object *d = jp(o, "data");
    assert_int_equal(len_at(d, "topicStats"), 1);
    assert_str_at(d, "topicStats.0.name", "a");
    assert_int_equal(len_at(d, "consumerLags"), 0); /* topic-only set: no groups */
    /* cluster-wide sections stay whole */
    assert_int_at(d, "clusterHealth.totalTopics", 3);
    assert_int_at(d, "clusterHealth.totalPartitions", 5);
    assert_int_at(d, "clusterHealth.totalConsumers", 3);
    assert_double_at(d, "throughput.produceRate", 100.0);
    json_object_put(o);
    tb_buf_release(&b);

    assert_int_equal(tb_subs_remove(f, "topic:a", &why), 0);
    assert_int_equal(tb_subs_add(f, "topic:b", &why), 0);
    assert_int_equal(tb_subs_add(f, "group:g[13]", &why), 0);
    assert_int_equal(tb_encode_metrics(m, &st, f, NOW_MS, &b), 0);
    o = parse_buf(&b);
    d = jp(o, "data");
    assert_int_equal(len_at(d, "topicStats"), 1);
    assert_str_at(d, "topicStats.0.name", "b");
    assert_int_equal(len_at(d, "consumerLags"), 2);
    assert_str_at(d, "consumerLags.0.groupId", "g1");
    assert_str_at(d, "consumerLags.1.groupId", "g3");
    /* a group's topicLags are not narrowed by topic items */
    assert_int_equal(len_at(d, "consumerLags.0.topicLags"), 2);
    json_object_put(o);
    tb_buf_release(&b);

    /* nothing matches: empty arrays, never null */
    tb_subs_free(f);
    f = tb_subs_new();
    assert_int_equal(tb_subs_add(f, "topic:nope", &why), 0);
    assert_int_equal(tb_encode_metrics(m, &st, f, NOW_MS, &b), 0);
    o = parse_buf(&b);
    assert_int_equal(len_at(o, "data.topicStats"), 0);
    assert_int_equal(len_at(o, "data.consumerLags"), 0);
    json_object_put(o);
    tb_buf_release(&b);

    /* an empty set is no filter */
    tb_subs_free(f);
    f = tb_subs_new();
    assert_int_equal(tb_encode_metrics(m, &st, f, NOW_MS, &b), 0);
    o = parse_buf(&b);
    assert_int_equal(len_at(o, "data.topicStats"), 3);
    assert_int_equal(len_at(o, "data.consumerLags"), 3);
    json_object_put(o);
    tb_buf_release(&b);
    tb_subs_free(f);
    tb_metrics_unref(m);
}

static void test_metrics_null(void **state)
{
    (void)state;
    struct tb_status st;
    memset(&st, 0, sizeof(st));
    st.stale_after_ms = 10000;
    st.cycles_failed = 2;
    st.cycle_ms = 5000;
    snprintf(st.last_error, sizeof(st.last_error), "metadata: timed out");
    struct tb_buf b = {0};
    assert_int_equal(tb_encode_metrics(NULL, &st, NULL, NOW_MS, &b), 0);
    struct json_object *o = parse_buf(&b);
    assert_str_at(o, "type", "metrics");
    assert_int_at(o, "timestamp", 1704225601);
    struct json_object *d = jp(o, "data");
    assert_double_at(d, "throughput.produceRate", 0);
    assert_double_at(d, "throughput.fetchRate", 0);
    assert_int_at(d, "throughput.produceBytes", 0);
    assert_double_at(d, "latency.fetchP99", 0);
    assert_int_equal(len_at(d, "topicStats"), 0);
    assert_int_equal(len_at(d, "consumerLags"), 0);
    assert_int_at(d, "clusterHealth.totalTopics", 0);
    assert_int_at(d, "clusterHealth.totalPartitions", 0);
    assert_int_at(d, "clusterHealth.totalConsumers", 0);
    assert_int_at(d, "clusterHealth.brokers", 0);
    assert_strs_at(d, "unavailable",
                   STRS("throughput.produceRate", "throughput.fetchRate",
                        "throughput.produceBytes", "throughput.fetchBytes",
                        "latency.produceP50", "latency.produceP95", "latency.produceP99",
                        "latency.fetchP50", "latency.fetchP95", "latency.fetchP99",
                        "clusterHealth.activeConnections", "clusterHealth.totalTopics",
                        "clusterHealth.totalPartitions", "clusterHealth.totalConsumers",
                        "clusterHealth.diskUsageBytes", "clusterHealth.memoryUsageBytes",
                        "clusterHealth.goroutineCount", "clusterHealth.brokers",
                        "bridge.brokerRttP50Ms", "bridge.brokerRttP95Ms",
                        "bridge.brokerRttP99Ms"));
    assert_bool_at(d, "collector.stale", true);
    assert_null_at(d, "collector.ageMs");
    assert_null_at(d, "collector.lastSuccess");
    assert_int_at(d, "collector.cycleMs", 5000);
    assert_int_at(d, "collector.requests", 0);
    assert_int_at(d, "collector.cyclesOk", 0);
    assert_int_at(d, "collector.cyclesFailed", 2);
    assert_str_at(d, "collector.error", "metadata: timed out");
    assert_double_at(d, "bridge.brokerRttP50Ms", 0);
    assert_int_at(d, "bridge.requests", 0);
    json_object_put(o);
    tb_buf_release(&b);

    /* st == NULL too */
    assert_int_equal(tb_encode_metrics(NULL, NULL, NULL, NOW_MS, &b), 0);
    o = parse_buf(&b);
    assert_bool_at(o, "data.collector.stale", true);
    assert_null_at(o, "data.collector.ageMs");
    assert_null_at(o, "data.collector.error");
    assert_int_equal(len_at(o, "data.unavailable"), 21);
    json_object_put(o);
    tb_buf_release(&b);
}

/* No prev snapshot: rates unavailable everywhere; stale data; client stats missing. */
static void test_metrics_no_rates_stale(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(1704225590000);
    s->broker_count = 1;
    topic(s, "t", 2, (int64_t[]){7, 8}, NULL);
    tb_snapshot_finalize(s);
    struct tb_metrics *m = tb_metrics_compute(NULL, s);
    tb_snapshot_unref(s);
    struct tb_status st = fixture_status();
    st.last_success_ms = 1704225590000; /* 11.5 s before NOW_MS, stale after 10 s */
    st.client.available = false;
    st.last_ok = false;
    snprintf(st.last_error, sizeof(st.last_error), "boom");
    struct tb_buf b = {0};
    assert_int_equal(tb_encode_metrics(m, &st, NULL, NOW_MS, &b), 0);
    struct json_object *o = parse_buf(&b);
    struct json_object *d = jp(o, "data");
    assert_double_at(d, "throughput.produceRate", 0);
    assert_strs_at(d, "topicStats.0.unavailable",
                   STRS("totalBytes", "produceRate", "fetchRate", "produceBytes"));
    assert_int_at(d, "topicStats.0.totalMessages", 15);
    assert_strs_at(d, "unavailable",
                   STRS("throughput.produceRate", "throughput.fetchRate",
                        "throughput.produceBytes", "throughput.fetchBytes",
                        "latency.produceP50", "latency.produceP95", "latency.produceP99",
                        "latency.fetchP50", "latency.fetchP95", "latency.fetchP99",
                        "clusterHealth.activeConnections", "clusterHealth.diskUsageBytes",
                        "clusterHealth.memoryUsageBytes", "clusterHealth.goroutineCount",
                        "bridge.brokerRttP50Ms", "bridge.brokerRttP95Ms",
                        "bridge.brokerRttP99Ms"));
    assert_bool_at(d, "collector.stale", true);
    assert_int_at(d, "collector.ageMs", 11500);
    assert_int_at(d, "collector.lastSuccess", 1704225590);
    assert_str_at(d, "collector.error", "boom");
    assert_double_at(d, "bridge.brokerRttP50Ms", 0);
    assert_int_at(d, "bridge.requests", 100); /* counters are still real */
    assert_int_at(d, "clusterHealth.brokers", 1);
    json_object_put(o);
    tb_buf_release(&b);
    tb_metrics_unref(m);
}

/*
 * Everything measured: log directory sizes in both snapshots, pod signals, a canary
 * whose produce side works and fetch side fails.
 *   prev (mono 1000, scan 1000): a hwm {10,20} bytes {1000,-1}; b hwm {5} bytes {300}
 *   cur  (mono 3000, scan 3500): a hwm {20,40} bytes {3500,-1}; b hwm {5} bytes {100}
 *   a: 30 msgs / 2 s = 15.0/s; 2500 B / 2.5 s = 1000 B/s; totalBytes 3500
 *   b: 0.0/s; shrank (retention) -> produceBytes unavailable; totalBytes 100
 *   cluster produceBytes = 1000
 */
static void test_metrics_measured(void **state)
{
    (void)state;
    struct tb_snapshot *p = tb_snapshot_new(1704225598000);
    p->mono_ms = 1000;
    p->sizes_known = true;
    p->sizes_mono_ms = 1000;
    p->disk_bytes = 555;
    p->broker_count = 1;
    struct tb_topic *t = tb_snapshot_add_topic(p, "a", 2);
    t->partitions[0].high_watermark = 10;
    t->partitions[1].high_watermark = 20;
    t->partitions[0].log_bytes = 1000;
    t = tb_snapshot_add_topic(p, "b", 1);
    t->partitions[0].high_watermark = 5;
    t->partitions[0].log_bytes = 300;
    tb_snapshot_finalize(p);
    struct tb_snapshot *c = tb_snapshot_new(1704225600000);
    c->mono_ms = 3000;
    c->sizes_known = true;
    c->sizes_mono_ms = 3500;
    c->disk_bytes = 987654;
    c->broker_count = 1;
    t = tb_snapshot_add_topic(c, "a", 2);
    t->partitions[0].high_watermark = 20;
    t->partitions[1].high_watermark = 40;
    t->partitions[0].log_bytes = 3500;
    t = tb_snapshot_add_topic(c, "b", 1);
    t->partitions[0].high_watermark = 5;
    t->partitions[0].log_bytes = 100;
    tb_snapshot_finalize(c);
    struct tb_metrics *m = tb_metrics_compute(p, c);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);

    struct tb_status st = fixture_status();
    st.pod.connections_available = true;
    st.pod.connections = 7;
    st.pod.process_available = true;
    st.pod.process_is_broker = true;
    st.pod.pid = 4242;
    st.pod.memory_bytes = 1073741824;
    st.pod.threads = 87;
    st.canary.enabled = true;
    st.canary.produce_available = true;
    st.canary.produce_p50_ms = 1.234;
    st.canary.produce_p95_ms = 2.5;
    st.canary.produce_p99_ms = 10.0;
    st.canary.fetch_available = false;
    st.canary.fetch_p50_ms = 99.0; /* not shown: unavailable */
    st.canary.sent = 100;
    st.canary.acked = 99;
    st.canary.received = 95;
    st.canary.lost = 5;
    st.canary.produce_errors = 1;
    st.canary.produce_samples = 99;
    st.canary.partitions = 3;
    st.canary.window_ms = 60000;
    snprintf(st.canary.state, sizeof(st.canary.state), "failing");
    snprintf(st.canary.error, sizeof(st.canary.error), "5 probe(s) not received within 5000 ms");

    struct tb_buf b = {0};
    assert_int_equal(tb_encode_metrics(m, &st, NULL, NOW_MS, &b), 0);
    struct json_object *o = parse_buf(&b);
    struct json_object *d = jp(o, "data");
    assert_double_at(d, "throughput.produceRate", 15.0);
    assert_int_at(d, "throughput.produceBytes", 1000);
    assert_int_at(d, "throughput.fetchBytes", 0);
    assert_double_at(d, "latency.produceP50", 1.234);
    assert_double_at(d, "latency.produceP95", 2.5);
    assert_double_at(d, "latency.produceP99", 10.0);
    assert_double_at(d, "latency.fetchP50", 0);
    assert_double_at(d, "latency.fetchP99", 0);
    assert_str_at(d, "topicStats.0.name", "a");
    assert_int_at(d, "topicStats.0.totalBytes", 3500);
    assert_double_at(d, "topicStats.0.produceRate", 15.0);
    assert_int_at(d, "topicStats.0.produceBytes", 1000);
    assert_int_equal(len_at(d, "topicStats.0.unavailable"), 0);
    assert_str_at(d, "topicStats.1.name", "b");
    assert_int_at(d, "topicStats.1.totalBytes", 100);
    assert_int_at(d, "topicStats.1.produceBytes", 0);
    assert_strs_at(d, "topicStats.1.unavailable", STRS("produceBytes"));
    assert_int_at(d, "clusterHealth.activeConnections", 7);
    assert_int_at(d, "clusterHealth.diskUsageBytes", 987654);
    assert_int_at(d, "clusterHealth.memoryUsageBytes", 1073741824);
    assert_int_at(d, "clusterHealth.goroutineCount", 87);
    assert_str_at(d, "clusterHealth.processSource", "broker");
    assert_int_at(d, "clusterHealth.processPid", 4242);
    assert_strs_at(d, "unavailable",
                   STRS("throughput.fetchBytes", "latency.fetchP50", "latency.fetchP95",
                        "latency.fetchP99"));
    assert_str_at(d, "canary.state", "failing");
    assert_int_at(d, "canary.windowSeconds", 60);
    assert_int_at(d, "canary.partitions", 3);
    assert_int_at(d, "canary.probesSent", 100);
    assert_int_at(d, "canary.probesAcked", 99);
    assert_int_at(d, "canary.probesReceived", 95);
    assert_int_at(d, "canary.probesLost", 5);
    assert_int_at(d, "canary.produceErrors", 1);
    assert_int_at(d, "canary.produceSamples", 99);
    assert_int_at(d, "canary.fetchSamples", 0);
    assert_str_at(d, "canary.error", "5 probe(s) not received within 5000 ms");
    json_object_put(o);
    tb_buf_release(&b);

    /* the bridge's own process; a healthy canary (no error shown) */
    st.pod.process_is_broker = false;
    st.canary.fetch_available = true;
    st.canary.fetch_p50_ms = 3.0;
    st.canary.fetch_p95_ms = 4.0;
    st.canary.fetch_p99_ms = 5.0;
    snprintf(st.canary.state, sizeof(st.canary.state), "ok");
    st.canary.error[0] = '\0';
    assert_int_equal(tb_encode_metrics(m, &st, NULL, NOW_MS, &b), 0);
    o = parse_buf(&b);
    d = jp(o, "data");
    assert_str_at(d, "clusterHealth.processSource", "bridge");
    assert_double_at(d, "latency.fetchP50", 3.0);
    assert_double_at(d, "latency.fetchP99", 5.0);
    assert_strs_at(d, "unavailable", STRS("throughput.fetchBytes"));
    assert_str_at(d, "canary.state", "ok");
    assert_null_at(d, "canary.error");
    json_object_put(o);
    tb_buf_release(&b);

    /* a disabled canary never shows latencies, whatever its numbers say */
    st.canary.enabled = false;
    assert_int_equal(tb_encode_metrics(m, &st, NULL, NOW_MS, &b), 0);
    o = parse_buf(&b);
    d = jp(o, "data");
    assert_double_at(d, "latency.produceP50", 0);
    assert_str_at(d, "canary.state", "disabled");
    assert_int_at(d, "canary.windowSeconds", 0);
    assert_strs_at(d, "unavailable",
                   STRS("throughput.fetchBytes", "latency.produceP50", "latency.produceP95",
                        "latency.produceP99", "latency.fetchP50", "latency.fetchP95",
                        "latency.fetchP99"));
    json_object_put(o);
    tb_buf_release(&b);
    tb_metrics_unref(m);
}

/* Rates are written with 3 decimals: 1/3 -> 0.333, 2/3 -> 0.667, 1500.5 stays. */
static void test_double_rounding(void **state)
{
    (void)state;
    struct tb_snapshot *p = tb_snapshot_new(0);
    p->mono_ms = 0;
    topic(p, "a", 1, (int64_t[]){0}, NULL);
    topic(p, "b", 1, (int64_t[]){0}, NULL);
    topic(p, "c", 1, (int64_t[]){0}, NULL);
    tb_snapshot_finalize(p);
    struct tb_snapshot *c = tb_snapshot_new(3000);
    c->mono_ms = 3000;
    topic(c, "a", 1, (int64_t[]){1}, NULL);    /* 0.3333.. */
    topic(c, "b", 1, (int64_t[]){2}, NULL);    /* 0.6666.. */
    topic(c, "c", 1, (int64_t[]){4500}, NULL); /* 1500 */
    tb_snapshot_finalize(c);
    struct tb_metrics *m = tb_metrics_compute(p, c);
    struct tb_status st = fixture_status();
    struct tb_buf b = {0};
    assert_int_equal(tb_encode_metrics(m, &st, NULL, NOW_MS, &b), 0);
    const char *s = tb_buf_payload(&b);
    assert_non_null(strstr(s, "{\"name\":\"a\",\"partitions\":1,\"totalMessages\":1,"
                              "\"totalBytes\":0,\"produceRate\":0.333,\"fetchRate\":0.0,"));
    assert_non_null(strstr(s, "\"name\":\"b\",\"partitions\":1,\"totalMessages\":2,"
                              "\"totalBytes\":0,\"produceRate\":0.667,"));
    assert_non_null(strstr(s, "\"produceRate\":1500.0,"));
    /* cluster: 4503 / 3 = 1501.0 */
    assert_non_null(strstr(s, "\"throughput\":{\"produceRate\":1501.0,\"fetchRate\":0.0,"
                              "\"produceBytes\":0,\"fetchBytes\":0}"));
    struct json_object *o = parse_buf(&b);
    assert_double_at(o, "data.topicStats.0.produceRate", 0.333);
    assert_double_at(o, "data.topicStats.1.produceRate", 0.667);
    json_object_put(o);
    tb_buf_release(&b);
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
}

/* A big cluster encodes, and the output parses back with every entry. */
static void test_metrics_large(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(1704225600000);
    for (int t = 0; t < 200; t++) {
        char name[16];
        snprintf(name, sizeof(name), "topic-%03d", t);
        struct tb_topic *tp = tb_snapshot_add_topic(s, name, 50);
        for (int p = 0; p < 50; p++) {
            tp->partitions[p].high_watermark = 1000;
            tp->partitions[p].log_start = 0;
        }
    }
    for (int k = 0; k < 500; k++) {
        char id[16], name[16];
        snprintf(id, sizeof(id), "group-%03d", k);
        snprintf(name, sizeof(name), "topic-%03d", k % 200);
        struct tb_group *g = tb_snapshot_add_group(s, id, "Stable", 1);
        g->offsets_known = true;
        for (int p = 0; p < 20; p++)
            tb_group_add_offset(g, name, p, 900);
    }
    tb_snapshot_finalize(s);
    struct tb_metrics *m = tb_metrics_compute(NULL, s);
    tb_snapshot_unref(s);
    struct tb_status st = fixture_status();
    struct tb_buf b = {0};
    assert_int_equal(tb_encode_metrics(m, &st, NULL, NOW_MS, &b), 0);
    struct json_object *o = parse_buf(&b);
    assert_int_equal(len_at(o, "data.topicStats"), 200);
    assert_int_equal(len_at(o, "data.consumerLags"), 500);
    assert_int_at(o, "data.clusterHealth.totalPartitions", 10000);
    assert_str_at(o, "data.consumerLags.499.groupId", "group-499");
    assert_int_at(o, "data.consumerLags.499.totalLag", 2000); /* 20 x 100 */
    assert_int_equal(len_at(o, "data.consumerLags.499.topicLags.0.partitionLags"), 20);
    json_object_put(o);
    tb_buf_release(&b);
    tb_metrics_unref(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pong),
        cmocka_unit_test(test_ack_and_error),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_metrics_full),
        cmocka_unit_test(test_metrics_data_only),
        cmocka_unit_test(test_metrics_filter),
        cmocka_unit_test(test_metrics_null),
        cmocka_unit_test(test_metrics_measured),
        cmocka_unit_test(test_metrics_no_rates_stale),
        cmocka_unit_test(test_double_rounding),
        cmocka_unit_test(test_metrics_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
