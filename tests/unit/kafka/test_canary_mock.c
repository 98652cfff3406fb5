/*
 * test_canary_mock.c - the latency canary (src/kafka/canary.c) against librdkafka's
 * built-in mock cluster, which serves Metadata, Produce, ListOffsets and Fetch (not
 * CreateTopics: topics are created on the mock itself and canary.create_topic is off).
 *
 * Checked: probes go round and come back (counters consistent, latencies positive and
 * ordered, state "ok", nothing lost); every broker down -> probes are lost, the state
 * turns "failing" and the latencies unavailable; brokers back -> "ok" again; a missing
 * topic with create_topic off -> "failing" with the reason, never a latency.
 * All waits are bounded (WAIT_S); no assertion is on a duration.
 *
 * Under ThreadSanitizer every test is skipped (see test_collector_mock.c: Debian's
 * librdkafka starts its threads with thrd_create(), which TSan does not intercept).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "mock.h"
#include "tb/canary.h"
#include "tb/config.h"

#define WAIT_S 60

static void base_config(struct tb_config *cfg, const char *bootstrap, const char *topic)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->source_path = (char *)"mock.cfg";
    cfg->bootstrap_servers = (char *)bootstrap;
    cfg->request_timeout_ms = 2000;
    cfg->canary_enabled = true;
    cfg->canary_topic = (char *)topic;
    cfg->canary_interval_ms = 200;
    cfg->canary_lost_after_ms = 1500;
    cfg->canary_window_s = 60;
    cfg->canary_create_topic = false;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads the canary until @pred holds (bounded); returns the stats that satisfied it. */
static struct tb_canary_stats wait_for(struct tb_canary *c,
                                       bool (*pred)(const struct tb_canary_stats *),
                                       const char *what)
{
    struct tb_canary_stats s;
    for (int i = 0; i < WAIT_S * 10; i++) {
        tb_canary_read(c, &s);
        if (pred(&s))
            return s;
        sleep_ms(100);
    }
    fail_msg("timed out waiting for %s (state %s, error \"%s\", sent %llu, received %llu, "
             "lost %llu)",
             what, s.state, s.error, (unsigned long long)s.sent, (unsigned long long)s.received,
             (unsigned long long)s.lost);
    return s;
}

static bool ok_with_rounds(const struct tb_canary_stats *s)
{
    /* several rounds back, all 3 partitions probed */
    return strcmp(s->state, "ok") == 0 && s->received >= 9 && s->partitions == 3;
}

static bool failing_and_lost(const struct tb_canary_stats *s)
{
    return strcmp(s->state, "failing") == 0 && s->lost > 0 && !s->produce_available &&
           !s->fetch_available;
}

static bool ok_again(const struct tb_canary_stats *s)
{
    return strcmp(s->state, "ok") == 0;
}

static void test_probes_and_outage(void **state)
{
    (void)state;
    SKIP_UNDER_TSAN();
    struct mock m;
    mock_up(&m, 3);
    assert_int_equal(rd_kafka_mock_topic_create(m.mc, "__canary", 3, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    struct tb_config cfg;
    base_config(&cfg, m.bootstraps, "__canary");
    struct tb_canary *c = NULL;
    char err[512] = "";
    assert_int_equal(tb_canary_start(&cfg, &c, err, sizeof(err)), 0);
    assert_non_null(c);

    struct tb_canary_stats s = wait_for(c, ok_with_rounds, "probes going round");
    assert_true(s.enabled);
    assert_int_equal(s.window_ms, 60000);
    assert_true(s.produce_available);
    assert_true(s.fetch_available);
    assert_int_equal(s.lost, 0);
    assert_int_equal(s.produce_errors, 0);
    assert_string_equal(s.error, "");
    /* what came back was sent and acknowledged first (read at one instant) */
    assert_true(s.received <= s.acked + 3);
    assert_true(s.acked <= s.sent);
    assert_true(s.fetch_samples == s.received); /* all within the 60 s window */
    assert_true(s.produce_samples == s.acked);
    assert_true(s.produce_p50_ms > 0);
    assert_true(s.produce_p50_ms <= s.produce_p95_ms && s.produce_p95_ms <= s.produce_p99_ms);
    assert_true(s.fetch_p50_ms > 0);
    assert_true(s.fetch_p50_ms <= s.fetch_p95_ms && s.fetch_p95_ms <= s.fetch_p99_ms);

    /* every broker down: probes are lost, latencies withheld */
    for (int32_t b = 1; b <= 3; b++)
        assert_int_equal(rd_kafka_mock_broker_set_down(m.mc, b), RD_KAFKA_RESP_ERR_NO_ERROR);
    s = wait_for(c, failing_and_lost, "lost probes while the brokers are down");
    assert_true(s.error[0] != '\0');
    uint64_t lost = s.lost;

    for (int32_t b = 1; b <= 3; b++)
        assert_int_equal(rd_kafka_mock_broker_set_up(m.mc, b), RD_KAFKA_RESP_ERR_NO_ERROR);
    s = wait_for(c, ok_again, "probes back after the outage");
    assert_true(s.lost >= lost); /* cumulative */
    assert_string_equal(s.error, "");

    tb_canary_stop(c);
    mock_down(&m);
}

static bool failing(const struct tb_canary_stats *s)
{
    return strcmp(s->state, "failing") == 0;
}

static void test_missing_topic(void **state)
{
    (void)state;
    SKIP_UNDER_TSAN();
    struct mock m;
    mock_up(&m, 1);
    struct tb_config cfg;
    base_config(&cfg, m.bootstraps, "__no_such_canary");
    struct tb_canary *c = NULL;
    char err[512] = "";
    assert_int_equal(tb_canary_start(&cfg, &c, err, sizeof(err)), 0);
    struct tb_canary_stats s = wait_for(c, failing, "a failing state");
    assert_string_equal(s.error,
                        "topic __no_such_canary does not exist and canary.create_topic is false");
    assert_false(s.produce_available);
    assert_false(s.fetch_available);
    assert_int_equal(s.sent, 0);
    assert_int_equal(s.partitions, 0);
    tb_canary_stop(c);
    mock_down(&m);
}

static void test_disabled(void **state)
{
    (void)state;
    struct tb_canary_stats s;
    memset(&s, 0x55, sizeof(s));
    tb_canary_read(NULL, &s);
    assert_false(s.enabled);
    assert_false(s.produce_available);
    assert_string_equal(s.state, "disabled");
    assert_int_equal(s.sent, 0);
    tb_canary_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes_and_outage),
        cmocka_unit_test(test_missing_topic),
        cmocka_unit_test(test_disabled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
