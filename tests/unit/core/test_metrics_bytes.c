/*
 * test_metrics_bytes.c - the byte measures of src/core/metrics.c (topic totalBytes and
 * produce bytes/s from log directory scans), rules in include/tb/metrics.h. Every
 * expected value is computed by hand in the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tb/metrics.h"

#define EPS 1e-9

/* A topic with @n partitions whose log_bytes are @bytes (and hwm 0). */
static void topic(struct tb_snapshot *s, const char *name, size_t n, const int64_t *bytes)
{
    struct tb_topic *t = tb_snapshot_add_topic(s, name, n);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        t->partitions[i].high_watermark = 0;
        t->partitions[i].log_bytes = bytes[i];
    }
}

static struct tb_snapshot *snap(int64_t mono, bool sizes, int64_t sizes_mono)
{
    struct tb_snapshot *s = tb_snapshot_new(1704225600000 + mono);
    s->mono_ms = mono;
    s->sizes_known = sizes;
    s->sizes_mono_ms = sizes_mono;
    s->disk_bytes = sizes ? 123456 : -1;
    return s;
}

static const struct tb_topic_stats *stats(const struct tb_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->topic_count; i++)
        if (strcmp(m->topics[i].name, name) == 0)
            return &m->topics[i];
    fail_msg("no topic %s", name);
    return NULL;
}

/*
 * prev (scan at 1000 ms)            cur (scan at 3000 ms: dtb = 2 s)
 *   a: 1000, -1, 500                  a: 1600, -1, 900  -> +1000 B -> 500 B/s; total 2500
 *   b: 100                            b: 50 (retention)  -> unavailable; total 50
 *   c: 200                            c: 200, 10 (new partition hosted) -> unavailable; 210
 *   d: -1                             d: 400 (replica moved in) -> unavailable; 400
 *   e: 300                            e: -1 (moved out) -> unavailable; total 0
 *                                     f: 70 (new topic) -> unavailable; total 70
 *   g: -1                             g: -1 (never hosted here) -> 0 B/s; total 0
 * cluster: a + g = 500 B/s over a 2 s window.
 */
static void test_bytes_rules(void **state)
{
    (void)state;
    struct tb_snapshot *p = snap(900, true, 1000);
    topic(p, "a", 3, (int64_t[]){1000, -1, 500});
    topic(p, "b", 1, (int64_t[]){100});
    topic(p, "c", 1, (int64_t[]){200});
    topic(p, "d", 1, (int64_t[]){-1});
    topic(p, "e", 1, (int64_t[]){300});
    topic(p, "g", 1, (int64_t[]){-1});
    tb_snapshot_finalize(p);
    struct tb_snapshot *c = snap(2900, true, 3000);
    topic(c, "a", 3, (int64_t[]){1600, -1, 900});
    topic(c, "b", 1, (int64_t[]){50});
    topic(c, "c", 2, (int64_t[]){200, 10});
    topic(c, "d", 1, (int64_t[]){400});
    topic(c, "e", 1, (int64_t[]){-1});
    topic(c, "f", 1, (int64_t[]){70});
    topic(c, "g", 1, (int64_t[]){-1});
    tb_snapshot_finalize(c);

    struct tb_metrics *m = tb_metrics_compute(p, c);
    assert_non_null(m);
    assert_true(m->bytes_rate_available);
    assert_float_equal(m->bytes_window_s, 2.0, EPS);
    assert_float_equal(m->produce_bytes_rate, 500.0, EPS);

    const struct tb_topic_stats *t = stats(m, "a");
    assert_true(t->bytes_available);
    assert_int_equal(t->total_bytes, 2500);
    assert_true(t->produce_bytes_available);
    assert_float_equal(t->produce_bytes_rate, 500.0, EPS);
    t = stats(m, "b");
    assert_int_equal(t->total_bytes, 50);
    assert_false(t->produce_bytes_available);
    assert_float_equal(t->produce_bytes_rate, 0.0, EPS);
    t = stats(m, "c");
    assert_int_equal(t->total_bytes, 210);
    assert_false(t->produce_bytes_available);
    t = stats(m, "d");
    assert_int_equal(t->total_bytes, 400);
    assert_false(t->produce_bytes_available);
    t = stats(m, "e");
    assert_true(t->bytes_available);
    assert_int_equal(t->total_bytes, 0);
    assert_false(t->produce_bytes_available);
    t = stats(m, "f");
    assert_int_equal(t->total_bytes, 70);
    assert_false(t->produce_bytes_available);
    t = stats(m, "g");
    assert_int_equal(t->total_bytes, 0);
    assert_true(t->produce_bytes_available);
    assert_float_equal(t->produce_bytes_rate, 0.0, EPS);
    /* message rates are unaffected by sizes: hwm 0 -> 0, dt = 2 s */
    assert_true(m->rates_available);
    assert_float_equal(m->rate_window_s, 2.0, EPS);
    tb_metrics_unref(m);

    /* no previous snapshot: totals yes, rates no */
    m = tb_metrics_compute(NULL, c);
    assert_false(m->bytes_rate_available);
    assert_float_equal(m->produce_bytes_rate, 0.0, EPS);
    assert_int_equal(stats(m, "a")->total_bytes, 2500);
    assert_true(stats(m, "a")->bytes_available);
    assert_false(stats(m, "a")->produce_bytes_available);
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
}

static void test_bytes_unavailable(void **state)
{
    (void)state;
    /* the previous scan failed: no byte rates, even though both have partitions */
    struct tb_snapshot *p = snap(0, false, 0);
    topic(p, "a", 1, (int64_t[]){-1});
    tb_snapshot_finalize(p);
    struct tb_snapshot *c = snap(2000, true, 2000);
    topic(c, "a", 1, (int64_t[]){100});
    tb_snapshot_finalize(c);
    struct tb_metrics *m = tb_metrics_compute(p, c);
    assert_false(m->bytes_rate_available);
    assert_true(stats(m, "a")->bytes_available);
    assert_int_equal(stats(m, "a")->total_bytes, 100);
    assert_false(stats(m, "a")->produce_bytes_available);
    tb_metrics_unref(m);

    /* the current scan failed: no totals, no rates */
    m = tb_metrics_compute(c, p);
    assert_false(m->bytes_rate_available);
    assert_false(stats(m, "a")->bytes_available);
    assert_int_equal(stats(m, "a")->total_bytes, 0);
    assert_false(stats(m, "a")->produce_bytes_available);
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);

    /* two scans at the same instant (dtb = 0): no rates */
    p = snap(0, true, 5000);
    topic(p, "a", 1, (int64_t[]){10});
    tb_snapshot_finalize(p);
    c = snap(1000, true, 5000);
    topic(c, "a", 1, (int64_t[]){20});
    tb_snapshot_finalize(c);
    m = tb_metrics_compute(p, c);
    assert_false(m->bytes_rate_available);
    assert_false(stats(m, "a")->produce_bytes_available);
    assert_true(m->rates_available); /* the message rates have their own dt */
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
}

/* A new snapshot and a new topic start unmeasured. */
static void test_defaults(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(0);
    assert_false(s->sizes_known);
    assert_int_equal(s->disk_bytes, -1);
    struct tb_topic *t = tb_snapshot_add_topic(s, "x", 2);
    assert_int_equal(t->partitions[0].log_bytes, -1);
    assert_int_equal(t->partitions[1].log_bytes, -1);
    tb_snapshot_unref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_rules),
        cmocka_unit_test(test_bytes_unavailable),
        cmocka_unit_test(test_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
