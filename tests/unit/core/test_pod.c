/*
 * test_pod.c - src/core/pod.c: which process is reported, what is unavailable when a
 * source is missing, and that nothing fails hard. Fixture proc roots are described in
 * tests/data/procfs/README.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <unistd.h>

#include "tb/pod.h"

#define ROOT TB_TEST_DATA "/procfs/"

static void test_broker_found(void **state)
{
    (void)state;
    struct tb_pod_options o = {.proc_root = ROOT "basic", .broker_port = 9092,
                               .process_match = "kafka.Kafka"};
    struct tb_pod *p = tb_pod_new(&o);
    assert_non_null(p);
    assert_false(tb_pod_has_log_dirs(p));
    struct tb_pod_stats s;
    for (int round = 0; round < 2; round++) { /* the second uses the cached pid */
        tb_pod_sample(p, &s);
        assert_true(s.connections_available);
        assert_int_equal(s.connections, 5);
        assert_true(s.process_available);
        assert_true(s.process_is_broker);
        assert_int_equal(s.pid, 4200200); /* the JVM, not the wrapper (4200100) */
        assert_int_equal(s.memory_bytes, 1048576LL * 1024);
        assert_int_equal(s.threads, 87);
    }
    struct tb_logdir_scan scan;
    assert_int_equal(tb_pod_scan_logs(p, &scan), -ENOENT); /* none configured */
    assert_int_equal(scan.count, 0);
    tb_pod_free(p);
}

static void test_fallback_to_bridge(void **state)
{
    (void)state;
    /* nothing matches: the bridge's own process (fixture self: 2048 kB, 3 threads) */
    struct tb_pod_options o = {.proc_root = ROOT "basic", .process_match = "redpanda"};
    struct tb_pod *p = tb_pod_new(&o);
    struct tb_pod_stats s;
    tb_pod_sample(p, &s);
    assert_false(s.connections_available); /* port 0: not measured */
    assert_true(s.process_available);
    assert_false(s.process_is_broker);
    assert_int_equal(s.pid, (int32_t)getpid());
    assert_int_equal(s.memory_bytes, 2048 * 1024);
    assert_int_equal(s.threads, 3);
    tb_pod_free(p);

    /* no match configured: the bridge too */
    o.process_match = "";
    p = tb_pod_new(&o);
    tb_pod_sample(p, &s);
    assert_true(s.process_available);
    assert_false(s.process_is_broker);
    assert_int_equal(s.threads, 3);
    tb_pod_free(p);
}

static void test_everything_missing(void **state)
{
    (void)state;
    const char *dirs[] = {"/nonexistent/kafka-data"};
    struct tb_pod_options o = {.proc_root = ROOT "no-such-root", .broker_port = 9092,
                               .process_match = "kafka.Kafka", .log_dirs = dirs,
                               .log_dir_count = 1};
    struct tb_pod *p = tb_pod_new(&o);
    assert_true(tb_pod_has_log_dirs(p));
    struct tb_pod_stats s;
    for (int round = 0; round < 2; round++) { /* warned once, then quiet */
        tb_pod_sample(p, &s);
        assert_false(s.connections_available);
        assert_int_equal(s.connections, 0);
        assert_false(s.process_available);
        assert_int_equal(s.memory_bytes, 0);
        assert_int_equal(s.threads, 0);
        struct tb_logdir_scan scan;
        assert_int_equal(tb_pod_scan_logs(p, &scan), -ENOENT);
        assert_int_equal(scan.count, 0);
        assert_null(scan.parts);
    }
    tb_pod_free(p);
    tb_pod_free(NULL);
    tb_pod_sample(NULL, &s);
    assert_false(s.process_available);
}

/* The real /proc: with no match, the bridge's own (this test's) process. */
static void test_real_self(void **state)
{
    (void)state;
    struct tb_pod_options o = {0};
    struct tb_pod *p = tb_pod_new(&o);
    struct tb_pod_stats s;
    tb_pod_sample(p, &s);
    assert_true(s.process_available);
    assert_false(s.process_is_broker);
    assert_int_equal(s.pid, (int32_t)getpid());
    assert_true(s.memory_bytes > 0);
    assert_true(s.threads >= 1); /* TSan adds a background thread of its own */
    tb_pod_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_found),
        cmocka_unit_test(test_fallback_to_bridge),
        cmocka_unit_test(test_everything_missing),
        cmocka_unit_test(test_real_self),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
