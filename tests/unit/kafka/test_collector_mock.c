/*
 * test_collector_mock.c - the collector against librdkafka's built-in mock cluster.
 *
 * The mock serves Metadata, ListOffsets, OffsetFetch... but NOT ListGroups, so every
 * collector cycle on it fails at step 2 ("list groups"). That makes it the place to
 * test the FAILURE paths: a failed cycle publishes a status with last_ok = false, no
 * metrics and no events; counters move; broker outages fail at the metadata step;
 * tb_collector_stop() returns while a cycle is blocked or while sleeping. Successful
 * cycles are tested against a real broker (tests/integration).
 *
 * All waits are bounded (WAIT_S) and no test asserts on durations.
 *
 * Under ThreadSanitizer every test is skipped: Debian's librdkafka 2.0.2 starts its
 * threads with C11 thrd_create(), which TSan does not intercept, so the first
 * allocation on a librdkafka thread crashes inside TSan's allocator.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "mock.h"
#include "tb/collector.h"
#include "tb/config.h"
#include "tb/log.h"
#include "tb/mailbox.h"

#define WAIT_S 60

/* Produces @count one-byte messages to @topic [@partition] through the mock's
 * bootstrap servers and waits for their delivery. */
static void produce(const struct mock *m, const char *topic, int32_t partition, int count)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", m->bootstraps, err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(p);
    for (int i = 0; i < count; i++)
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                                           RD_KAFKA_V_VALUE((void *)"x", 1), RD_KAFKA_V_END),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(p, WAIT_S * 1000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(p);
}

/* --- configuration built by hand (fields as tb_config_load() would set them) ------- */

static void base_config(struct tb_config *cfg, const char *bootstrap)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->source_path = (char *)"mock.cfg";
    cfg->bootstrap_servers = (char *)bootstrap;
    cfg->poll_interval_ms = 100;
    cfg->request_timeout_ms = 2000;
    cfg->max_in_flight = 4;
    cfg->list_offsets_chunk = 1000;
    cfg->statistics_interval_ms = 0;
    cfg->topic_delete_confirm_cycles = 2;
    cfg->group_delete_confirm_cycles = 2;
    cfg->stale_after_ms = 10000;
}

/* --- mailbox reader ---------------------------------------------------------------- */

struct reader {
    struct tb_mailbox mb;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned long wakes; /* guarded by lock */
    uint64_t seen_seq;
    size_t events_seen;  /* all events ever taken */
};

static void reader_wake(void *arg)
{
    struct reader *r = arg;
    pthread_mutex_lock(&r->lock);
    r->wakes++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void reader_init(struct reader *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(tb_mailbox_init(&r->mb), 0);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    tb_mailbox_set_wake(&r->mb, reader_wake, r);
}

static void reader_release(struct reader *r)
{
    tb_mailbox_release(&r->mb);
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
}

/* The next update newer than the last one taken (bounded wait; fails the test after
 * WAIT_S). Counts the events that came with it. */
static struct tb_update *next_update(struct reader *r)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_S;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        unsigned long wakes = r->wakes;
        pthread_mutex_unlock(&r->lock);

        struct tb_update *u = NULL;
        struct tb_event_list events;
        tb_event_list_init(&events);
        tb_mailbox_take(&r->mb, r->seen_seq, &u, &events);
        r->events_seen += events.count;
        tb_event_list_clear(&events);
        if (u) {
            r->seen_seq = u->seq;
            return u;
        }
        pthread_mutex_lock(&r->lock);
        int rc = 0;
        while (r->wakes == wakes && rc == 0)
            rc = pthread_cond_timedwait(&r->cond, &r->lock, &deadline);
        pthread_mutex_unlock(&r->lock);
        if (rc == ETIMEDOUT)
            fail_msg("no update from the collector within %d s", WAIT_S);
    }
}

/* Asserts what every update published by a failed cycle must look like. */
static void assert_failed_update(const struct tb_update *u, const char *error_prefix,
                                 const struct tb_config *cfg)
{
    assert_false(u->status.last_ok);
    assert_null(u->metrics);
    assert_int_equal(u->status.cycles_ok, 0);
    /* Every cycle publishes exactly once, so the n-th update reports n failures. */
    assert_int_equal(u->status.cycles_failed, u->seq);
    assert_int_equal(u->status.last_success_ms, 0);
    assert_int_equal(u->status.stale_after_ms, cfg->stale_after_ms);
    assert_true(u->status.published_ms > 0);
    assert_true(u->status.last_error[0] != '\0');
    if (strncmp(u->status.last_error, error_prefix, strlen(error_prefix)) != 0)
        fail_msg("last_error \"%s\" does not start with \"%s\"", u->status.last_error,
                 error_prefix);
}

/* --- tests --------------------------------------------------------------------------- */

/* The mock cannot list groups: each cycle fails at step 2 and publishes a failed
 * status, no metrics, no events. */
static void test_list_groups_unsupported_fails_cycle(void **state)
{
    (void)state;
    SKIP_UNDER_TSAN();
    struct mock m;
    mock_up(&m, 3);
    assert_int_equal(rd_kafka_mock_topic_create(m.mc, "orders", 2, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    produce(&m, "orders", 0, 10);
    produce(&m, "orders", 1, 5);

    struct tb_config cfg;
    base_config(&cfg, m.bootstraps);
    /* A managed property in kafka.properties is ignored (with a warning), not fatal. */
    struct tb_kafka_property props[] = {{(char *)"isolation.level", (char *)"read_committed", 12}};
    cfg.properties = props;
    cfg.property_count = 1;

    struct reader r;
    reader_init(&r);
    struct tb_collector *c = NULL;
    char err[512] = "";
    assert_int_equal(tb_collector_start(&cfg, &r.mb, &c, err, sizeof(err)), 0);
    assert_non_null(c);

    for (int i = 0; i < 3; i++) {
        struct tb_update *u = next_update(&r);
        assert_failed_update(u, "list groups: ", &cfg);
        tb_update_unref(u);
    }
    tb_collector_stop(c);
    assert_int_equal(r.events_seen, 0);
    reader_release(&r);
    mock_down(&m);
}

/* The statistics callback is served between steps: client stats reach the status of
 * failed cycles too. */
static void test_client_stats_in_status(void **state)
{
    (void)state;
    SKIP_UNDER_TSAN();
    struct mock m;
    mock_up(&m, 1);
    assert_int_equal(rd_kafka_mock_topic_create(m.mc, "orders", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);

    struct tb_config cfg;
    base_config(&cfg, m.bootstraps);
    cfg.poll_interval_ms = 50;
    cfg.statistics_interval_ms = 100;

    struct reader r;
    reader_init(&r);
    struct tb_collector *c = NULL;
    char err[512] = "";
    assert_int_equal(tb_collector_start(&cfg, &r.mb, &c, err, sizeof(err)), 0);

    bool seen = false;
    for (int i = 0; i < 400 && !seen; i++) {
        struct tb_update *u = next_update(&r);
        assert_failed_update(u, "list groups: ", &cfg);
        if (u->status.client.available) {
            seen = true;
            /* At least the metadata requests of the cycles so far were sent. */
            assert_true(u->status.client.tx_requests >= 1);
            assert_true(u->status.client.rtt_p50_ms >= 0.0);
            assert_true(u->status.client.rtt_p95_ms >= u->status.client.rtt_p50_ms);
            assert_true(u->status.client.rtt_p99_ms >= u->status.client.rtt_p95_ms);
            assert_int_equal(u->status.client.tx_errors, 0);
        }
        tb_update_unref(u);
    }
    assert_true(seen);
    tb_collector_stop(c);
    assert_int_equal(r.events_seen, 0);
    reader_release(&r);
    mock_down(&m);
}

/* Brokers go down: cycles fail at the metadata step, with no events and no crash;
 * when they come back the cycles get past metadata again. */
static void test_broker_down_and_back(void **state)
{
    (void)state;
    SKIP_UNDER_TSAN();
    struct mock m;
    mock_up(&m, 2);
    assert_int_equal(rd_kafka_mock_topic_create(m.mc, "orders", 2, 2), RD_KAFKA_RESP_ERR_NO_ERROR);

    struct tb_config cfg;
    base_config(&cfg, m.bootstraps);
    cfg.request_timeout_ms = 500;

    struct reader r;
    reader_init(&r);
    struct tb_collector *c = NULL;
    char err[512] = "";
    assert_int_equal(tb_collector_start(&cfg, &r.mb, &c, err, sizeof(err)), 0);

    struct tb_update *u = next_update(&r);
    assert_failed_update(u, "list groups: ", &cfg);
    tb_update_unref(u);

    assert_int_equal(rd_kafka_mock_broker_set_down(m.mc, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    bool metadata_failed = false;
    for (int i = 0; i < 100 && !metadata_failed; i++) {
        u = next_update(&r);
        /* Before the outage is noticed a cycle may still fail at list groups. */
        if (strncmp(u->status.last_error, "metadata: ", 10) == 0) {
            assert_failed_update(u, "metadata: ", &cfg);
            metadata_failed = true;
        } else {
            assert_failed_update(u, "list groups: ", &cfg);
        }
        tb_update_unref(u);
    }
    assert_true(metadata_failed);
    /* Two more cycles in the outage, still failed at metadata. */
    for (int i = 0; i < 2; i++) {
        u = next_update(&r);
        assert_failed_update(u, "metadata: ", &cfg);
        tb_update_unref(u);
    }

    assert_int_equal(rd_kafka_mock_broker_set_up(m.mc, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    bool recovered = false;
    for (int i = 0; i < 200 && !recovered; i++) {
        u = next_update(&r);
        recovered = strncmp(u->status.last_error, "list groups: ", 13) == 0;
        assert_failed_update(u, recovered ? "list groups: " : "metadata: ", &cfg);
        tb_update_unref(u);
    }
    assert_true(recovered);

    tb_collector_stop(c);
    assert_int_equal(r.events_seen, 0);
    reader_release(&r);
    mock_down(&m);
}

/* tb_collector_stop() wakes the thread out of its sleep between cycles (poll interval
 * of one hour) and out of a cycle blocked on unreachable brokers. */
static void test_stop_while_sleeping_and_blocked(void **state)
{
    (void)state;
    SKIP_UNDER_TSAN();
    struct mock m;
    mock_up(&m, 1);
    assert_int_equal(rd_kafka_mock_broker_set_down(m.mc, -1), RD_KAFKA_RESP_ERR_NO_ERROR);

    struct tb_config cfg;
    base_config(&cfg, m.bootstraps);
    cfg.poll_interval_ms = 3600000;
    cfg.request_timeout_ms = 1000;

    /* Sleeping: wait for the first (failed) cycle, then stop. */
    struct reader r;
    reader_init(&r);
    struct tb_collector *c = NULL;
    char err[512] = "";
    assert_int_equal(tb_collector_start(&cfg, &r.mb, &c, err, sizeof(err)), 0);
    struct tb_update *u = next_update(&r);
    assert_failed_update(u, "metadata: ", &cfg);
    assert_int_equal(u->seq, 1);
    tb_update_unref(u);
    tb_collector_stop(c);
    /* Stopped while sleeping: no further update was published. */
    u = tb_mailbox_peek(&r.mb);
    assert_non_null(u);
    assert_int_equal(u->seq, 1);
    tb_update_unref(u);
    reader_release(&r);

    /* Blocked: stop right away, while the first metadata request is waiting for the
     * unreachable broker. A cycle interrupted by stop publishes nothing, or it finished
     * first and published its failure. */
    reader_init(&r);
    assert_int_equal(tb_collector_start(&cfg, &r.mb, &c, err, sizeof(err)), 0);
    tb_collector_stop(c);
    u = tb_mailbox_peek(&r.mb);
    if (u) {
        assert_int_equal(u->seq, 1);
        assert_failed_update(u, "metadata: ", &cfg);
    }
    tb_update_unref(u);
    reader_release(&r);
    mock_down(&m);
}

/* The probe counts brokers and the topics the collector would report: internal
 * ("__*") topics only with include_internal_topics, then include/exclude filters. */
static void test_probe_counts(void **state)
{
    (void)state;
    SKIP_UNDER_TSAN();
    struct mock m;
    mock_up(&m, 3);
    assert_int_equal(rd_kafka_mock_topic_create(m.mc, "orders", 2, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(m.mc, "payments", 1, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_mock_topic_create(m.mc, "__consumer_offsets", 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);

    struct tb_config cfg;
    base_config(&cfg, m.bootstraps);
    char err[512] = "";
    int brokers = -1, topics = -1;

    /* orders + payments; __consumer_offsets dropped. */
    assert_int_equal(tb_collector_probe(&cfg, &brokers, &topics, err, sizeof(err)), 0);
    assert_int_equal(brokers, 3);
    assert_int_equal(topics, 2);

    /* + __consumer_offsets. */
    cfg.include_internal_topics = true;
    assert_int_equal(tb_collector_probe(&cfg, &brokers, &topics, err, sizeof(err)), 0);
    assert_int_equal(topics, 3);

    /* include "orders" and "__*", internal off: only orders survives. */
    char *inc[] = {(char *)"orders", (char *)"__*"};
    cfg.include_internal_topics = false;
    cfg.topics_include.count = 2;
    cfg.topics_include.items = inc;
    assert_int_equal(tb_collector_probe(&cfg, &brokers, &topics, err, sizeof(err)), 0);
    assert_int_equal(topics, 1);

    /* no include list; exclude "pay*": orders only. */
    char *exc[] = {(char *)"pay*"};
    cfg.topics_include.count = 0;
    cfg.topics_include.items = NULL;
    cfg.topics_exclude.count = 1;
    cfg.topics_exclude.items = exc;
    assert_int_equal(tb_collector_probe(&cfg, &brokers, &topics, err, sizeof(err)), 0);
    assert_int_equal(brokers, 3);
    assert_int_equal(topics, 1);

    mock_down(&m);
}

/* Brokers unreachable: the probe fails with a message, it does not hang. */
static void test_probe_unreachable(void **state)
{
    (void)state;
    SKIP_UNDER_TSAN();
    struct mock m;
    mock_up(&m, 1);
    assert_int_equal(rd_kafka_mock_broker_set_down(m.mc, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
    struct tb_config cfg;
    base_config(&cfg, m.bootstraps);
    cfg.request_timeout_ms = 500;
    char err[512] = "";
    int brokers = -1, topics = -1;
    int rc = tb_collector_probe(&cfg, &brokers, &topics, err, sizeof(err));
    assert_true(rc < 0);
    assert_int_equal(brokers, 0);
    assert_int_equal(topics, 0);
    assert_non_null(strstr(err, "cannot fetch metadata from "));
    assert_non_null(strstr(err, m.bootstraps));
    mock_down(&m);
}

/* A client property librdkafka refuses is reported as FILE:LINE, by start and probe. */
static void test_bad_property(void **state)
{
    (void)state; /* no librdkafka thread is started: runs under TSan too */
    struct tb_config cfg;
    base_config(&cfg, "127.0.0.1:9");
    struct tb_kafka_property props[] = {
        {(char *)"socket.keepalive.enable", (char *)"true", 5},
        {(char *)"no.such.property", (char *)"1", 7},
    };
    cfg.properties = props;
    cfg.property_count = 2;

    struct tb_mailbox mb;
    assert_int_equal(tb_mailbox_init(&mb), 0);
    struct tb_collector *c = (struct tb_collector *)&mb; /* must be reset to NULL */
    char err[512] = "";
    assert_int_equal(tb_collector_start(&cfg, &mb, &c, err, sizeof(err)), -EINVAL);
    assert_null(c);
    if (strncmp(err, "mock.cfg:7: ", 12) != 0)
        fail_msg("unexpected error \"%s\"", err);
    assert_non_null(strstr(err, "no.such.property"));

    int brokers = -1, topics = -1;
    err[0] = '\0';
    assert_int_equal(tb_collector_probe(&cfg, &brokers, &topics, err, sizeof(err)), -EINVAL);
    if (strncmp(err, "mock.cfg:7: ", 12) != 0)
        fail_msg("unexpected error \"%s\"", err);

    /* Secret values are never echoed. */
    struct tb_kafka_property secret[] = {{(char *)"sasl.password.typo", (char *)"hunter2", 9}};
    cfg.properties = secret;
    cfg.property_count = 1;
    assert_int_equal(tb_collector_start(&cfg, &mb, &c, err, sizeof(err)), -EINVAL);
    if (strncmp(err, "mock.cfg:9: ", 12) != 0)
        fail_msg("unexpected error \"%s\"", err);
    assert_null(strstr(err, "hunter2"));
    tb_mailbox_release(&mb);

    tb_collector_stop(NULL); /* no-op */
}

int main(void)
{
    tb_log_set_level(TB_LOG_ERROR); /* the failures below are expected */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_groups_unsupported_fails_cycle),
        cmocka_unit_test(test_client_stats_in_status),
        cmocka_unit_test(test_broker_down_and_back),
        cmocka_unit_test(test_stop_while_sleeping_and_blocked),
        cmocka_unit_test(test_probe_counts),
        cmocka_unit_test(test_probe_unreachable),
        cmocka_unit_test(test_bad_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
