/*
 * mock.h - librdkafka's mock cluster for the kafka unit tests (header-only, included by
 * the tests that use it). mock_up() starts a cluster of @brokers brokers owned by a
 * producer handle that never connects anywhere; m->bootstraps is its address list.
 * mock_down() destroys both.
 *
 * SKIP_UNDER_TSAN(): Debian's librdkafka starts its threads with C11 thrd_create(),
 * which ThreadSanitizer does not intercept; a test that starts real librdkafka clients
 * skips itself in a TSan build (see scripts/test).
 */
#ifndef TB_TEST_KAFKA_MOCK_H
#define TB_TEST_KAFKA_MOCK_H

#include <stdio.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#if defined(__SANITIZE_THREAD__)
#define SKIP_UNDER_TSAN() skip()
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SKIP_UNDER_TSAN() skip()
#endif
#endif
#ifndef SKIP_UNDER_TSAN
#define SKIP_UNDER_TSAN() ((void)0)
#endif

struct mock {
    rd_kafka_t *owner; /* producer handle that owns the mock cluster */
    rd_kafka_mock_cluster_t *mc;
    char bootstraps[256];
};

static inline void mock_up(struct mock *m, int brokers)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* The owner never connects anywhere; silence its "no bootstrap.servers" notice. */
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)), RD_KAFKA_CONF_OK);
    m->owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(m->owner);
    m->mc = rd_kafka_mock_cluster_new(m->owner, brokers);
    assert_non_null(m->mc);
    snprintf(m->bootstraps, sizeof(m->bootstraps), "%s", rd_kafka_mock_cluster_bootstraps(m->mc));
}

static inline void mock_down(struct mock *m)
{
    rd_kafka_mock_cluster_destroy(m->mc);
    rd_kafka_destroy(m->owner);
}

#endif
