/*
 * test_stats.c - tb_stats_parse() on hand-written librdkafka statistics documents
 * (tests/data/kafka/stats_*.json). Expected values are worked out by hand in the
 * comments from the fixture's numbers (rtt windows are in microseconds).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tb/kafka_stats.h"

static char *read_fixture(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/kafka/%s", TB_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    assert_true(len > 0);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/*
 * stats_cluster.json, broker by broker:
 *   bootstrap (configured, cnt 2)    p99  2100 us
 *   broker 1  (learned,    cnt 40)   p99  9011 us
 *   broker 2  (learned,    cnt 30)   p99 12287 us   <- worst real broker
 *   broker 3  (learned,    cnt  0)   p99 50000 us   ignored: empty window
 *   GroupCoordinator (logical, cnt 5) p99 900000 us ignored: pseudo broker
 * => p50 2047 us = 2.047 ms, p95 6143 us = 6.143 ms, p99 12287 us = 12.287 ms.
 * tx_requests = top-level "tx" = 251 (not the brokers' sum 3+120+80+5+0 = 208).
 * tx_errors = 0+1+2+4+0 = 7; rx_errors = 0+0+3+1+0 = 4.
 */
static void test_cluster(void **state)
{
    (void)state;
    char *json = read_fixture("stats_cluster.json");
    struct tb_client_stats st;
    assert_int_equal(tb_stats_parse(json, &st), 0);
    assert_true(st.available);
    assert_float_equal(st.rtt_p50_ms, 2.047, 1e-9);
    assert_float_equal(st.rtt_p95_ms, 6.143, 1e-9);
    assert_float_equal(st.rtt_p99_ms, 12.287, 1e-9);
    assert_int_equal(st.tx_requests, 251);
    assert_int_equal(st.tx_errors, 7);
    assert_int_equal(st.rx_errors, 4);
    free(json);
}

/* One bootstrap broker still connecting: no rtt sample, so not available; no
 * top-level "tx", so tx_requests is the brokers' sum (2); txerrs 2. */
static void test_no_rtt(void **state)
{
    (void)state;
    char *json = read_fixture("stats_no_rtt.json");
    struct tb_client_stats st;
    assert_int_equal(tb_stats_parse(json, &st), 0);
    assert_false(st.available);
    assert_float_equal(st.rtt_p99_ms, 0.0, 0.0);
    assert_int_equal(st.tx_requests, 2);
    assert_int_equal(st.tx_errors, 2);
    assert_int_equal(st.rx_errors, 0);
    free(json);
}

/* Only one broker, and it is the worst: values are its own. 750 us = 0.75 ms. */
static void test_single_broker_inline(void **state)
{
    (void)state;
    const char *json = "{\"tx\": 9, \"brokers\": {\"b:1/1\": {\"source\": \"learned\", \"tx\": 9,"
                       " \"txerrs\": 0, \"rxerrs\": 0, \"rtt\": {\"cnt\": 3, \"p50\": 250,"
                       " \"p95\": 700, \"p99\": 750}}}}";
    struct tb_client_stats st;
    assert_int_equal(tb_stats_parse(json, &st), 0);
    assert_true(st.available);
    assert_float_equal(st.rtt_p50_ms, 0.25, 1e-9);
    assert_float_equal(st.rtt_p95_ms, 0.7, 1e-9);
    assert_float_equal(st.rtt_p99_ms, 0.75, 1e-9);
    assert_int_equal(st.tx_requests, 9);
}

static void test_malformed(void **state)
{
    (void)state;
    struct tb_client_stats st;
    assert_int_equal(tb_stats_parse(NULL, &st), -EINVAL);
    assert_int_equal(tb_stats_parse("", &st), -EINVAL);
    assert_int_equal(tb_stats_parse("not json", &st), -EINVAL);
    assert_int_equal(tb_stats_parse("[1,2]", &st), -EINVAL);
    assert_int_equal(tb_stats_parse("{\"tx\": 5}", &st), -EINVAL);
    assert_int_equal(tb_stats_parse("{\"brokers\": []}", &st), -EINVAL);
    assert_false(st.available);
    assert_int_equal(st.tx_requests, 0);
    /* Truncated document (a partial write would look like this). */
    assert_int_equal(tb_stats_parse("{\"brokers\": {\"a\": {\"rtt\": {\"cnt\": 1", &st), -EINVAL);
    /* An empty brokers object is valid: nothing measured yet. */
    assert_int_equal(tb_stats_parse("{\"brokers\": {}}", &st), 0);
    assert_false(st.available);
    /* Wrongly typed fields count as 0 instead of crashing. */
    assert_int_equal(tb_stats_parse("{\"brokers\": {\"a\": {\"tx\": \"x\", \"rtt\": 7},"
                                    " \"b\": 3}}",
                                    &st),
                     0);
    assert_false(st.available);
    assert_int_equal(st.tx_requests, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cluster),
        cmocka_unit_test(test_no_rtt),
        cmocka_unit_test(test_single_broker_inline),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
