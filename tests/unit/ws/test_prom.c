/*
 * test_prom.c - unit tests for src/ws/prom.c: the Prometheus text exposition of
 * GET /metrics and the bridge's own counters. Every expected line is written out by
 * hand from the fixture below.
 */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb/ws_internal.h"

#define NOW_MS 1704225600000LL

/* Fixture: 3 brokers; topics "orders" (3 partitions, 1000 messages, produce 12.5/s,
 * fetch unavailable) and "payments" (1 partition, 7 messages, produce unavailable,
 * fetch 0.25/s); group `g"1\x` (awkward id, to exercise escaping) with lag on orders
 * p0 = 5, p1 = 0, p2 end unknown; group "new" whose offsets are unknown. */
struct fixture {
    struct tb_snapshot snap;
    struct tb_topic_stats topics[2];
    struct tb_partition_lag parts[3];
    struct tb_topic_lag tlags[1];
    struct tb_group_lag groups[2];
    struct tb_metrics m;
    struct tb_update u;
    struct tb_ws_stats st;
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->snap.broker_count = 3;
    f->topics[0] = (struct tb_topic_stats){.name = "orders", .partitions = 3,
                                           .total_messages = 1000,
                                           .produce_rate_available = true, .produce_rate = 12.5};
    f->topics[1] = (struct tb_topic_stats){.name = "payments", .partitions = 1,
                                           .total_messages = 7, .fetch_rate_available = true,
                                           .fetch_rate = 0.25};
    f->parts[0] = (struct tb_partition_lag){.partition = 0, .committed = 95, .end = 100, .lag = 5};
    f->parts[1] = (struct tb_partition_lag){.partition = 1, .committed = 40, .end = 40, .lag = 0};
    f->parts[2] = (struct tb_partition_lag){.partition = 2, .committed = 3, .end = -1, .lag = 0,
                                            .end_unknown = true};
    f->tlags[0] = (struct tb_topic_lag){.topic = "orders", .total_lag = 5, .partition_count = 3,
                                        .partitions = f->parts};
    f->groups[0] = (struct tb_group_lag){.group_id = "g\"1\\x", .state = "Stable", .members = 2,
                                         .total_lag = 5, .offsets_known = true, .topic_count = 1,
                                         .topics = f->tlags};
    f->groups[1] = (struct tb_group_lag){.group_id = "new", .state = "Empty", .members = 0,
                                         .offsets_known = false};
    f->m.snap = &f->snap;
    f->m.rates_available = true;
    f->m.produce_rate = 12.5;
    f->m.fetch_rate = 0.25;
    f->m.total_partitions = 4;
    f->m.topic_count = 2;
    f->m.topics = f->topics;
    f->m.group_count = 2;
    f->m.groups = f->groups;
    f->u.seq = 9;
    f->u.metrics = &f->m;
    f->u.status.last_ok = true;
    f->u.status.cycles_ok = 5;
    f->u.status.cycles_failed = 2;
    f->u.status.cycle_ms = 250;
    f->u.status.last_success_ms = NOW_MS - 1500;
    f->u.status.stale_after_ms = 10000;

    f->st.clients = 2;
    f->st.connections_total = 7;
    f->st.messages_sent[TB_WS_KIND_METRICS] = 10;
    f->st.messages_sent[TB_WS_KIND_PONG] = 3;
    f->st.bytes_sent = 12345;
    f->st.dropped_metrics = 4;
    tb_ws_stats_close(&f->st, 1000);
    tb_ws_stats_close(&f->st, 4008);
    tb_ws_stats_close(&f->st, 1000);
    tb_ws_stats_http(&f->st, TB_WS_ROUTE_HEALTHZ, 200);
    tb_ws_stats_http(&f->st, TB_WS_ROUTE_WS, 401);
    tb_ws_stats_http(&f->st, TB_WS_ROUTE_HEALTHZ, 200);
}

static void expect_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof(want), "\n%s\n", line);
    /* text starts with a line too: prepend a newline virtually */
    size_t n = strlen(line);
    if (strncmp(text, line, n) == 0 && text[n] == '\n')
        return;
    if (!strstr(text, want))
        fail_msg("missing line: %s\n--- output ---\n%s", line, text);
}

static void expect_no(const char *text, const char *fragment)
{
    if (strstr(text, fragment))
        fail_msg("unexpected: %s\n--- output ---\n%s", fragment, text);
}

/* Every line is a comment or "name{labels} value"; every sample's family has a
 * "# TYPE" line before it; label values are properly quoted and escaped. */
static void check_format(const char *text)
{
    char types[64][96];
    size_t ntypes = 0;
    const char *p = text;
    assert_true(strlen(text) > 0);
    assert_int_equal(text[strlen(text) - 1], '\n');
    while (*p) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        if (strncmp(p, "# TYPE ", 7) == 0) {
            const char *name = p + 7, *sp = strchr(name, ' ');
            assert_true(sp && sp < eol);
            assert_true(ntypes < 64);
            snprintf(types[ntypes++], sizeof(types[0]), "%.*s", (int)(sp - name), name);
            assert_true(strncmp(sp + 1, "gauge\n", 6) == 0 || strncmp(sp + 1, "counter\n", 8) == 0);
        } else if (strncmp(p, "# HELP ", 7) != 0) {
            const char *q = p;
            assert_true(isalpha((unsigned char)*q) || *q == '_');
            while (isalnum((unsigned char)*q) || *q == '_' || *q == ':')
                q++;
            bool declared = false;
            for (size_t i = 0; i < ntypes; i++)
                if (strlen(types[i]) == (size_t)(q - p) && strncmp(types[i], p, (size_t)(q - p)) == 0)
                    declared = true;
            if (!declared)
                fail_msg("sample without # TYPE: %.*s", (int)(eol - p), p);
            if (*q == '{') {
                q++;
                for (;;) {
                    while (isalnum((unsigned char)*q) || *q == '_')
                        q++;
                    assert_int_equal(*q++, '=');
                    assert_int_equal(*q++, '"');
                    while (*q != '"') {
                        assert_true(q < eol);
                        if (*q == '\\') {
                            q++;
                            assert_true(*q == '\\' || *q == '"' || *q == 'n');
                        }
                        q++;
                    }
                    q++;
                    if (*q == ',') {
                        q++;
                        continue;
                    }
                    assert_int_equal(*q++, '}');
                    break;
                }
            }
            assert_int_equal(*q++, ' ');
            char *end = NULL;
            strtod(q, &end);
            if (end != eol)
                fail_msg("bad value: %.*s", (int)(eol - p), p);
        }
        p = eol + 1;
    }
}

static void test_full_exposition(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    struct tb_ws_text t = {0};
    tb_ws_prom_render(&f.u, &f.st, NOW_MS, &t);
    assert_false(t.oom);
    check_format(t.mem);

    /* lag: escaped group id; p2 (end unknown) and group "new" (offsets unknown) omitted */
    expect_line(t.mem, "# TYPE takhin_consumer_group_lag gauge");
    expect_line(t.mem, "takhin_consumer_group_lag{group=\"g\\\"1\\\\x\",topic=\"orders\","
                       "partition=\"0\"} 5");
    expect_line(t.mem, "takhin_consumer_group_lag{group=\"g\\\"1\\\\x\",topic=\"orders\","
                       "partition=\"1\"} 0");
    expect_no(t.mem, "partition=\"2\"");
    expect_line(t.mem, "takhin_consumer_group_topic_lag{group=\"g\\\"1\\\\x\",topic=\"orders\"} 5");
    expect_line(t.mem, "takhin_consumer_group_lag_total{group=\"g\\\"1\\\\x\"} 5");
    expect_no(t.mem, "takhin_consumer_group_lag_total{group=\"new\"}");
    expect_line(t.mem, "takhin_consumer_group_members{group=\"new\"} 0");
    expect_line(t.mem, "takhin_consumer_group_members{group=\"g\\\"1\\\\x\"} 2");

    /* topics: unavailable rates omitted */
    expect_line(t.mem, "takhin_topic_partitions{topic=\"orders\"} 3");
    expect_line(t.mem, "takhin_topic_partitions{topic=\"payments\"} 1");
    expect_line(t.mem, "takhin_topic_messages{topic=\"orders\"} 1000");
    expect_line(t.mem, "takhin_topic_messages{topic=\"payments\"} 7");
    expect_line(t.mem, "takhin_topic_produce_rate{topic=\"orders\"} 12.5");
    expect_no(t.mem, "takhin_topic_produce_rate{topic=\"payments\"}");
    expect_line(t.mem, "takhin_topic_fetch_rate{topic=\"payments\"} 0.25");
    expect_no(t.mem, "takhin_topic_fetch_rate{topic=\"orders\"}");

    /* cluster */
    expect_line(t.mem, "takhin_cluster_brokers 3");
    expect_line(t.mem, "takhin_cluster_topics 2");
    expect_line(t.mem, "takhin_cluster_partitions 4");
    expect_line(t.mem, "takhin_cluster_consumer_groups 2");
    expect_line(t.mem, "takhin_cluster_produce_rate 12.5");
    expect_line(t.mem, "takhin_cluster_fetch_rate 0.25");

    /* collector */
    expect_line(t.mem, "takhin_collector_up 1");
    expect_line(t.mem, "# TYPE takhin_collector_cycles_total counter");
    expect_line(t.mem, "takhin_collector_cycles_total{result=\"ok\"} 5");
    expect_line(t.mem, "takhin_collector_cycles_total{result=\"failed\"} 2");
    expect_line(t.mem, "takhin_collector_cycle_seconds 0.25");
    expect_line(t.mem, "takhin_collector_data_age_seconds 1.5");
    expect_line(t.mem, "takhin_collector_last_success_timestamp_seconds 1704225598.5");

    /* bridge */
    expect_line(t.mem, "takhin_ws_clients 2");
    expect_line(t.mem, "takhin_ws_connections_total 7");
    expect_line(t.mem, "takhin_ws_messages_sent_total{type=\"metrics\"} 10");
    expect_line(t.mem, "takhin_ws_messages_sent_total{type=\"pong\"} 3");
    expect_line(t.mem, "takhin_ws_messages_sent_total{type=\"topic_created\"} 0");
    expect_line(t.mem, "takhin_ws_messages_sent_total{type=\"error\"} 0");
    expect_line(t.mem, "takhin_ws_bytes_sent_total 12345");
    expect_line(t.mem, "takhin_ws_dropped_metrics_total 4");
    expect_line(t.mem, "takhin_ws_events_dropped_total 0");
    expect_line(t.mem, "takhin_ws_closes_total{code=\"1000\"} 2");
    expect_line(t.mem, "takhin_ws_closes_total{code=\"4008\"} 1");
    expect_line(t.mem, "takhin_http_requests_total{path=\"/healthz\",status=\"200\"} 2");
    expect_line(t.mem, "takhin_http_requests_total{path=\"/api/monitoring/ws\",status=\"401\"} 1");
    tb_ws_text_release(&t);
}

/* Issue 6 sources: canary latencies, log-directory bytes, pod connections and process.
 * Measured values appear; unavailable ones have no sample (never a 0). */
static void test_canary_bytes_and_pod(void **state)
{
    (void)state;
    struct fixture f;
    fixture_init(&f);
    f.snap.sizes_known = true;
    f.snap.disk_bytes = 1048576;
    f.topics[0].bytes_available = true;
    f.topics[0].total_bytes = 4096;
    f.topics[0].produce_bytes_available = true;
    f.topics[0].produce_bytes_rate = 512.5;
    f.topics[1].bytes_available = true;
    f.topics[1].total_bytes = 0; /* measured: no replica hosted here */
    f.m.bytes_rate_available = true;
    f.m.produce_bytes_rate = 512.5;
    struct tb_canary_stats *c = &f.u.status.canary;
    c->enabled = true;
    c->produce_available = true;
    c->produce_p50_ms = 2.5;
    c->produce_p95_ms = 4;
    c->produce_p99_ms = 12;
    c->fetch_available = false; /* e.g. the consumer has not received yet */
    c->sent = 30;
    c->acked = 29;
    c->received = 0;
    c->lost = 1;
    c->produce_errors = 1;
    snprintf(c->state, sizeof(c->state), "ok");
    struct tb_pod_stats *pod = &f.u.status.pod;
    pod->connections_available = true;
    pod->connections = 7;
    pod->process_available = true;
    pod->process_is_broker = true;
    pod->pid = 42;
    pod->memory_bytes = 123456789;
    pod->threads = 96;

    struct tb_ws_text t = {0};
    tb_ws_prom_render(&f.u, &f.st, NOW_MS, &t);
    assert_false(t.oom);
    check_format(t.mem);
    expect_line(t.mem, "takhin_topic_bytes{topic=\"orders\"} 4096");
    expect_line(t.mem, "takhin_topic_bytes{topic=\"payments\"} 0");
    expect_line(t.mem, "takhin_topic_produce_bytes_rate{topic=\"orders\"} 512.5");
    expect_no(t.mem, "takhin_topic_produce_bytes_rate{topic=\"payments\"}");
    expect_line(t.mem, "takhin_cluster_produce_bytes_rate 512.5");
    expect_line(t.mem, "takhin_log_dirs_disk_bytes 1048576");
    expect_line(t.mem, "takhin_canary_up 1");
    expect_line(t.mem, "takhin_canary_latency_seconds{side=\"produce\",quantile=\"0.5\"} 0.0025");
    expect_line(t.mem, "takhin_canary_latency_seconds{side=\"produce\",quantile=\"0.95\"} 0.004");
    expect_line(t.mem, "takhin_canary_latency_seconds{side=\"produce\",quantile=\"0.99\"} 0.012");
    expect_no(t.mem, "side=\"fetch\"");
    expect_line(t.mem, "# TYPE takhin_canary_probes_total counter");
    expect_line(t.mem, "takhin_canary_probes_total{result=\"sent\"} 30");
    expect_line(t.mem, "takhin_canary_probes_total{result=\"acked\"} 29");
    expect_line(t.mem, "takhin_canary_probes_total{result=\"received\"} 0");
    expect_line(t.mem, "takhin_canary_probes_total{result=\"lost\"} 1");
    expect_line(t.mem, "takhin_canary_probes_total{result=\"produce_error\"} 1");
    expect_line(t.mem, "takhin_broker_connections 7");
    expect_line(t.mem, "takhin_process_resident_memory_bytes{source=\"broker\"} 123456789");
    expect_line(t.mem, "takhin_process_threads{source=\"broker\"} 96");
    tb_ws_text_release(&t);

    /* a failing canary: up 0, counters stay, no latency; nothing from the pod */
    c->produce_available = false;
    snprintf(c->state, sizeof(c->state), "failing");
    memset(pod, 0, sizeof(*pod));
    f.snap.sizes_known = false;
    f.snap.disk_bytes = -1;
    f.topics[0].bytes_available = f.topics[1].bytes_available = false;
    f.topics[0].produce_bytes_available = false;
    f.m.bytes_rate_available = false;
    tb_ws_prom_render(&f.u, &f.st, NOW_MS, &t);
    check_format(t.mem);
    expect_line(t.mem, "takhin_canary_up 0");
    expect_line(t.mem, "takhin_canary_probes_total{result=\"lost\"} 1");
    expect_no(t.mem, "\ntakhin_canary_latency_seconds{");
    expect_no(t.mem, "\ntakhin_topic_bytes{");
    expect_no(t.mem, "\ntakhin_topic_produce_bytes_rate{");
    expect_no(t.mem, "\ntakhin_cluster_produce_bytes_rate ");
    expect_no(t.mem, "\ntakhin_log_dirs_disk_bytes ");
    expect_no(t.mem, "\ntakhin_broker_connections ");
    expect_no(t.mem, "\ntakhin_process_");
    tb_ws_text_release(&t);

    /* canary disabled: no canary family at all; the bridge's own process is labelled */
    memset(c, 0, sizeof(*c));
    pod->process_available = true;
    pod->process_is_broker = false;
    pod->memory_bytes = 1000;
    pod->threads = 5;
    tb_ws_prom_render(&f.u, &f.st, NOW_MS, &t);
    check_format(t.mem);
    expect_no(t.mem, "takhin_canary_");
    expect_line(t.mem, "takhin_process_resident_memory_bytes{source=\"bridge\"} 1000");
    expect_line(t.mem, "takhin_process_threads{source=\"bridge\"} 5");
    tb_ws_text_release(&t);
}

static void test_no_cycle_yet(void **state)
{
    (void)state;
    struct tb_ws_stats st;
    memset(&st, 0, sizeof(st));
    struct tb_ws_text t = {0};
    tb_ws_prom_render(NULL, &st, NOW_MS, &t);
    assert_false(t.oom);
    check_format(t.mem);
    expect_no(t.mem, "takhin_cluster_");
    expect_no(t.mem, "takhin_topic_");
    expect_no(t.mem, "takhin_consumer_group");
    expect_line(t.mem, "takhin_collector_up 0");
    expect_line(t.mem, "takhin_collector_cycles_total{result=\"ok\"} 0");
    expect_line(t.mem, "takhin_collector_cycles_total{result=\"failed\"} 0");
    expect_no(t.mem, "\ntakhin_collector_data_age_seconds ");
    expect_no(t.mem, "\ntakhin_collector_cycle_seconds ");
    expect_line(t.mem, "takhin_ws_clients 0");
    tb_ws_text_release(&t);
}

static void test_failed_cycles_without_data(void **state)
{
    (void)state;
    struct tb_update u;
    memset(&u, 0, sizeof(u));
    u.status.cycles_failed = 3;
    u.status.cycle_ms = 3001;
    struct tb_ws_stats st;
    memset(&st, 0, sizeof(st));
    struct tb_ws_text t = {0};
    tb_ws_prom_render(&u, &st, NOW_MS, &t);
    check_format(t.mem);
    expect_line(t.mem, "takhin_collector_up 0");
    expect_line(t.mem, "takhin_collector_cycles_total{result=\"failed\"} 3");
    expect_line(t.mem, "takhin_collector_cycle_seconds 3.001");
    expect_no(t.mem, "\ntakhin_collector_data_age_seconds ");
    expect_no(t.mem, "takhin_cluster_brokers");
    tb_ws_text_release(&t);
}

static void test_escape(void **state)
{
    (void)state;
    struct tb_ws_text t = {0};
    tb_ws_prom_escape(&t, "a\\b\"c\nd");
    assert_string_equal(t.mem, "a\\\\b\\\"c\\nd");
    tb_ws_text_release(&t);
    tb_ws_prom_escape(&t, "plain");
    assert_string_equal(t.mem, "plain");
    tb_ws_text_release(&t);
}

static void test_close_and_http_tables(void **state)
{
    (void)state;
    struct tb_ws_stats st;
    memset(&st, 0, sizeof(st));
    tb_ws_stats_close(&st, 0);
    assert_int_equal(st.closes[0].code, 1006); /* no close frame */
    /* more distinct codes than slots: the overflow folds into code 0 */
    for (int c = 0; c < TB_WS_MAX_CLOSE_CODES + 5; c++)
        tb_ws_stats_close(&st, 4100 + c);
    assert_int_equal(st.close_count, TB_WS_MAX_CLOSE_CODES);
    assert_int_equal(st.closes[TB_WS_MAX_CLOSE_CODES - 1].code, 0);
    /* slots 0..30 hold 1006 and 4100..4129; 4130..4136 (7 codes) went to "other" */
    assert_int_equal(st.closes[TB_WS_MAX_CLOSE_CODES - 1].count, 7);
    assert_int_equal(tb_ws_route_of("/healthz"), TB_WS_ROUTE_HEALTHZ);
    assert_int_equal(tb_ws_route_of("/readyz"), TB_WS_ROUTE_READYZ);
    assert_int_equal(tb_ws_route_of("/metrics"), TB_WS_ROUTE_PROMETHEUS);
    assert_int_equal(tb_ws_route_of("/api/monitoring/metrics"), TB_WS_ROUTE_METRICS_API);
    assert_int_equal(tb_ws_route_of("/api/monitoring/ws"), TB_WS_ROUTE_WS);
    assert_int_equal(tb_ws_route_of("/metrics/"), TB_WS_ROUTE_OTHER);
    assert_int_equal(tb_ws_route_of("/"), TB_WS_ROUTE_OTHER);
    assert_string_equal(tb_ws_route_label(TB_WS_ROUTE_OTHER), "other");
}

static void test_text_printf_large(void **state)
{
    (void)state;
    struct tb_ws_text t = {0};
    char big[1000];
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    tb_ws_text_printf(&t, "<%s>", big); /* longer than the internal small buffer */
    assert_int_equal(t.len, 1001);
    assert_int_equal(t.mem[0], '<');
    assert_int_equal(t.mem[1000], '>');
    assert_int_equal(t.mem[1001], '\0');
    tb_ws_text_printf(&t, "%d", 42);
    assert_string_equal(t.mem + 1001, "42");
    tb_ws_text_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_exposition),
        cmocka_unit_test(test_canary_bytes_and_pod),
        cmocka_unit_test(test_no_cycle_yet),
        cmocka_unit_test(test_failed_cycles_without_data),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_close_and_http_tables),
        cmocka_unit_test(test_text_printf_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
