/*
 * test_histogram.c - src/core/histogram.c: bucket boundaries, nearest-rank percentiles
 * and the sliding window. Every expected value is computed by hand in the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tb/histogram.h"

static void assert_range(size_t b, uint64_t lo, uint64_t hi)
{
    uint64_t l, h;
    tb_hist_bucket_range(b, &l, &h);
    assert_int_equal(l, lo);
    assert_int_equal(h, hi);
}

static void test_buckets(void **state)
{
    (void)state;
    /* exact below 128 */
    assert_int_equal(tb_hist_bucket(0), 0);
    assert_int_equal(tb_hist_bucket(1), 1);
    assert_int_equal(tb_hist_bucket(127), 127);
    assert_range(127, 127, 127);
    /* [128, 256): width 1 */
    assert_int_equal(tb_hist_bucket(128), 128);
    assert_int_equal(tb_hist_bucket(255), 255);
    assert_range(200, 200, 200);
    /* [256, 512): width 2; 256 -> 128 + 128 = 256, 511 -> 128 + 255 = 383 */
    assert_int_equal(tb_hist_bucket(256), 256);
    assert_int_equal(tb_hist_bucket(257), 256);
    assert_int_equal(tb_hist_bucket(258), 257);
    assert_int_equal(tb_hist_bucket(511), 383);
    assert_range(256, 256, 257);
    assert_range(383, 510, 511);
    /* [512, 1024): width 4; 512 -> 384 */
    assert_int_equal(tb_hist_bucket(512), 384);
    assert_range(384, 512, 515);
    /* 1000 us: e = 9, shift 2, 1000 >> 2 = 250 -> 2*128 + 250 = 506; range 1000..1003 */
    assert_int_equal(tb_hist_bucket(1000), 506);
    assert_range(506, 1000, 1003);
    /* 5 s = 5,000,000 us: e = 22 (2^22 = 4194304), shift 15, 5000000 >> 15 = 152
     * -> 15*128 + 152 = 2072; range 152<<15 = 4980736 .. 4980736 + 32767 = 5013503 */
    assert_int_equal(tb_hist_bucket(5000000), 2072);
    assert_range(2072, 4980736, 5013503);
    /* the last bucket and clamping */
    assert_int_equal(tb_hist_bucket(TB_HIST_MAX_US - 1), TB_HIST_BUCKETS - 1);
    assert_int_equal(tb_hist_bucket(TB_HIST_MAX_US), TB_HIST_BUCKETS - 1);
    assert_int_equal(tb_hist_bucket(UINT64_MAX), TB_HIST_BUCKETS - 1);
    assert_range(TB_HIST_BUCKETS - 1, TB_HIST_MAX_US - ((uint64_t)1 << 19), TB_HIST_MAX_US - 1);
    /* every bucket continues the previous one, and is at most 1/128 of its start wide */
    uint64_t prev_hi = 0;
    for (size_t b = 0; b < TB_HIST_BUCKETS; b++) {
        uint64_t lo, hi;
        tb_hist_bucket_range(b, &lo, &hi);
        if (b > 0)
            assert_int_equal(lo, prev_hi + 1);
        assert_int_equal(tb_hist_bucket(lo), b);
        assert_int_equal(tb_hist_bucket(hi), b);
        if (lo >= 128)
            assert_true((hi - lo + 1) * 128 <= lo);
        prev_hi = hi;
    }
    assert_int_equal(prev_hi, TB_HIST_MAX_US - 1);
}

static void test_percentiles(void **state)
{
    (void)state;
    struct tb_hist *h = tb_hist_new(60000);
    assert_non_null(h);
    static const double ps[] = {50, 95, 99, 100};
    double out[4] = {-1, -1, -1, -1};
    /* empty: 0 samples, out untouched */
    assert_int_equal(tb_hist_percentiles(h, 1000, ps, 4, out), 0);
    assert_true(out[0] == -1);
    /* 1..100 us, one each (exact buckets): nearest rank p50 = 50th = 50, p95 = 95,
     * p99 = 99, p100 = 100 */
    for (uint64_t v = 1; v <= 100; v++)
        tb_hist_record(h, 1000, v);
    assert_int_equal(tb_hist_count(h, 1000), 100);
    assert_int_equal(tb_hist_percentiles(h, 1000, ps, 4, out), 100);
    assert_true(out[0] == 50.0);
    assert_true(out[1] == 95.0);
    assert_true(out[2] == 99.0);
    assert_true(out[3] == 100.0);
    tb_hist_free(h);

    /* 20 samples: 19 x 1000 us, 1 x 5 s.  p50: rank 10 -> bucket 1000..1003, midpoint
     * 1001.5; p95: rank ceil(19.0) = 19 -> still 1001.5; p99: rank ceil(19.8) = 20 ->
     * bucket 4980736..5013503, midpoint 4997119.5 */
    h = tb_hist_new(60000);
    for (int i = 0; i < 19; i++)
        tb_hist_record(h, 500, 1000);
    tb_hist_record(h, 500, 5000000);
    assert_int_equal(tb_hist_percentiles(h, 500, ps, 3, out), 20);
    assert_true(out[0] == 1001.5);
    assert_true(out[1] == 1001.5);
    assert_true(out[2] == 4997119.5);
    /* a single sample: every percentile is its bucket */
    tb_hist_free(h);
    h = tb_hist_new(60000);
    tb_hist_record(h, 0, 42);
    assert_int_equal(tb_hist_percentiles(h, 0, ps, 4, out), 1);
    assert_true(out[0] == 42.0 && out[3] == 42.0);
    tb_hist_free(h);
}

static void test_window(void **state)
{
    (void)state;
    /* window 12 s -> 12 slots of 1000 ms */
    struct tb_hist *h = tb_hist_new(12000);
    assert_non_null(h);
    static const double p50[] = {50};
    double out[1];
    tb_hist_record(h, 0, 10);       /* slot 0 */
    tb_hist_record(h, 999, 20);     /* slot 0 */
    tb_hist_record(h, 5500, 30);    /* slot 5 */
    tb_hist_record(h, 11999, 40);   /* slot 11 */
    assert_int_equal(tb_hist_count(h, 11999), 4);
    /* at 12000 (slot 12) slot 0 has left the window */
    assert_int_equal(tb_hist_count(h, 12000), 2);
    /* samples 30, 40: p50 = rank 1 = 30 */
    assert_int_equal(tb_hist_percentiles(h, 12000, p50, 1, out), 2);
    assert_true(out[0] == 30.0);
    /* recording in slot 12 reuses ring position 0 and clears it */
    tb_hist_record(h, 12001, 50);
    assert_int_equal(tb_hist_count(h, 12001), 3);
    /* at 17000 slot 5 is gone (17 - 12 = 5 is no longer > 5) */
    assert_int_equal(tb_hist_count(h, 17000), 2);
    /* at 24000 everything is gone */
    assert_int_equal(tb_hist_count(h, 24000), 0);
    assert_int_equal(tb_hist_percentiles(h, 24000, p50, 1, out), 0);
    /* a query in the past (clock never goes back, but stamps ahead are not live) */
    assert_int_equal(tb_hist_count(h, 0), 0);
    tb_hist_free(h);

    /* bounded memory: a million samples in one slot change nothing but counts */
    h = tb_hist_new(60000);
    for (uint64_t i = 0; i < 1000000; i++)
        tb_hist_record(h, 100, i % 1000);
    assert_int_equal(tb_hist_count(h, 100), 1000000);
    /* values 0..999 x 1000 each: p50 = rank 500000 -> value 499 (bucket 377 = [498,499]
     * of width 2 -> midpoint 498.5) */
    assert_int_equal(tb_hist_percentiles(h, 100, p50, 1, out), 1000000);
    assert_true(out[0] == 498.5);
    tb_hist_free(h);
}

static void test_invalid(void **state)
{
    (void)state;
    assert_null(tb_hist_new(0));
    assert_null(tb_hist_new(TB_HIST_SLOTS - 1));
    struct tb_hist *h = tb_hist_new(TB_HIST_SLOTS);
    assert_non_null(h);
    tb_hist_free(h);
    tb_hist_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_percentiles),
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
