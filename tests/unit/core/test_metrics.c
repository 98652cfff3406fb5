/*
 * test_metrics.c - unit tests for src/core/metrics.c (include/tb/metrics.h): lag, rates,
 * collector status. Every expectation is computed by hand in the comments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb/metrics.h"

#define EPS 1e-9

static struct tb_snapshot *snap_new(int64_t mono_ms)
{
    struct tb_snapshot *s = tb_snapshot_new(1704225600000 + mono_ms);
    assert_non_null(s);
    s->mono_ms = mono_ms;
    return s;
}

/* hwm/ls may be NULL (unknown). */
static void topic(struct tb_snapshot *s, const char *name, size_t n, const int64_t *hwm,
                  const int64_t *ls)
{
    struct tb_topic *t = tb_snapshot_add_topic(s, name, n);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        t->partitions[i].high_watermark = hwm ? hwm[i] : -1;
        t->partitions[i].log_start = ls ? ls[i] : -1;
        t->partitions[i].leader = 1;
    }
}

static struct tb_group *group(struct tb_snapshot *s, const char *id)
{
    struct tb_group *g = tb_snapshot_add_group(s, id, "Stable", 2);
    assert_non_null(g);
    g->offsets_known = true;
    return g;
}

static const struct tb_group_lag *find_glag(const struct tb_metrics *m, const char *id)
{
    for (size_t i = 0; i < m->group_count; i++)
        if (strcmp(m->groups[i].group_id, id) == 0)
            return &m->groups[i];
    fail_msg("group %s not in metrics", id);
    return NULL;
}

static const struct tb_topic_stats *find_ts(const struct tb_metrics *m, const char *name)
{
    for (size_t i = 0; i < m->topic_count; i++)
        if (strcmp(m->topics[i].name, name) == 0)
            return &m->topics[i];
    fail_msg("topic %s not in metrics", name);
    return NULL;
}

/* The worked example of the brief. */
static void test_lag_example(void **state)
{
    (void)state;
    struct tb_snapshot *s = snap_new(1000);
    topic(s, "a", 3, (int64_t[]){100, 200, 300}, (int64_t[]){0, 0, 50});
    struct tb_group *g = group(s, "g");
    tb_group_add_offset(g, "a", 2, 10);
    tb_group_add_offset(g, "a", 0, 90);
    tb_group_add_offset(g, "a", 1, 200);
    tb_snapshot_finalize(s);

    struct tb_metrics *m = tb_metrics_compute(NULL, s);
    assert_non_null(m);
    assert_int_equal(m->group_count, 1);
    const struct tb_group_lag *gl = &m->groups[0];
    assert_string_equal(gl->group_id, "g");
    assert_string_equal(gl->state, "Stable");
    assert_int_equal(gl->members, 2);
    assert_true(gl->offsets_known);
    assert_false(gl->offsets_carried);
    assert_int_equal(gl->topic_count, 1);
    const struct tb_topic_lag *tl = &gl->topics[0];
    assert_string_equal(tl->topic, "a");
    assert_int_equal(tl->partition_count, 3);
    /* p0: 100 - 90 = 10 */
    assert_int_equal(tl->partitions[0].partition, 0);
    assert_int_equal(tl->partitions[0].committed, 90);
    assert_int_equal(tl->partitions[0].end, 100);
    assert_int_equal(tl->partitions[0].log_start, 0);
    assert_int_equal(tl->partitions[0].lag, 10);
    assert_false(tl->partitions[0].expired);
    assert_false(tl->partitions[0].end_unknown);
    /* p1: 200 - 200 = 0 */
    assert_int_equal(tl->partitions[1].partition, 1);
    assert_int_equal(tl->partitions[1].lag, 0);
    assert_false(tl->partitions[1].expired);
    /* p2: committed 10 < log start 50: 300 - 50 = 250, expired */
    assert_int_equal(tl->partitions[2].partition, 2);
    assert_int_equal(tl->partitions[2].committed, 10);
    assert_int_equal(tl->partitions[2].end, 300);
    assert_int_equal(tl->partitions[2].log_start, 50);
    assert_int_equal(tl->partitions[2].lag, 250);
    assert_true(tl->partitions[2].expired);
    assert_int_equal(tl->total_lag, 260);
    assert_int_equal(gl->total_lag, 260);

    /* topic stats without prev: 100+200+300 = 600 messages, no rates */
    assert_int_equal(m->topic_count, 1);
    assert_string_equal(m->topics[0].name, "a");
    assert_int_equal(m->topics[0].partitions, 3);
    assert_int_equal(m->topics[0].total_messages, 600);
    assert_false(m->topics[0].produce_rate_available);
    assert_false(m->topics[0].fetch_rate_available);
    assert_false(m->rates_available);
    assert_int_equal(m->total_partitions, 3);
    assert_ptr_equal(m->snap, s);
    tb_metrics_unref(m);
    tb_snapshot_unref(s);
}

static void test_lag_unlisted_partitions(void **state)
{
    (void)state;
    struct tb_snapshot *s = snap_new(0);
    topic(s, "a", 3, (int64_t[]){100, 200, 300}, (int64_t[]){0, 0, 0});
    struct tb_group *g = group(s, "g");
    tb_group_add_offset(g, "a", 1, 150);   /* lag 50 */
    tb_group_add_offset(g, "a", 1, -1);    /* no commit: not stored */
    tb_group_add_offset(g, "a", 7, 5);     /* partition not in metadata */
    tb_group_add_offset(g, "gone", 0, 5);  /* topic not in metadata */
    tb_group_add_offset(g, "zzz", 3, 5);   /* topic not in metadata */
    tb_snapshot_finalize(s);
    struct tb_metrics *m = tb_metrics_compute(NULL, s);
    const struct tb_group_lag *gl = find_glag(m, "g");
    assert_int_equal(gl->topic_count, 1);
    assert_string_equal(gl->topics[0].topic, "a");
    assert_int_equal(gl->topics[0].partition_count, 1);
    assert_int_equal(gl->topics[0].partitions[0].partition, 1);
    assert_int_equal(gl->topics[0].partitions[0].lag, 50);
    assert_int_equal(gl->total_lag, 50);
    tb_metrics_unref(m);
    tb_snapshot_unref(s);
}

static void test_lag_end_unknown_and_floor(void **state)
{
    (void)state;
    struct tb_snapshot *s = snap_new(0);
    topic(s, "a", 3, (int64_t[]){-1, 10, 10}, (int64_t[]){0, -1, 0});
    struct tb_group *g = group(s, "g");
    tb_group_add_offset(g, "a", 0, 5);   /* end unknown: lag 0, flagged */
    tb_group_add_offset(g, "a", 1, 5);   /* log start unknown: 10 - 5 = 5, not expired */
    tb_group_add_offset(g, "a", 2, 12);  /* committed above hwm (race): 0, not -2 */
    tb_snapshot_finalize(s);
    struct tb_metrics *m = tb_metrics_compute(NULL, s);
    const struct tb_topic_lag *tl = &find_glag(m, "g")->topics[0];
    assert_int_equal(tl->partition_count, 3);
    assert_int_equal(tl->partitions[0].lag, 0);
    assert_int_equal(tl->partitions[0].end, -1);
    assert_true(tl->partitions[0].end_unknown);
    assert_int_equal(tl->partitions[1].lag, 5);
    assert_int_equal(tl->partitions[1].log_start, -1);
    assert_false(tl->partitions[1].expired);
    assert_false(tl->partitions[1].end_unknown);
    assert_int_equal(tl->partitions[2].lag, 0);
    assert_int_equal(tl->total_lag, 5);
    assert_int_equal(find_glag(m, "g")->total_lag, 5);
    /* total messages counts known hwms only: 10 + 10 */
    assert_int_equal(find_ts(m, "a")->total_messages, 20);
    tb_metrics_unref(m);
    tb_snapshot_unref(s);
}

static void test_lag_offsets_unknown_and_carried(void **state)
{
    (void)state;
    struct tb_snapshot *s = snap_new(0);
    topic(s, "a", 1, (int64_t[]){100}, (int64_t[]){0});
    struct tb_group *u = tb_snapshot_add_group(s, "unknown", "Empty", 0);
    u->offsets_known = false;
    struct tb_group *c = group(s, "carried");
    c->offsets_carried = true;
    tb_group_add_offset(c, "a", 0, 60);
    struct tb_group *e = group(s, "empty-known"); /* known, but no commits */
    (void)e;
    tb_snapshot_finalize(s);
    struct tb_metrics *m = tb_metrics_compute(NULL, s);
    assert_int_equal(m->group_count, 3);
    /* same order as the snapshot: carried, empty-known, unknown */
    assert_string_equal(m->groups[0].group_id, "carried");
    assert_string_equal(m->groups[1].group_id, "empty-known");
    assert_string_equal(m->groups[2].group_id, "unknown");
    const struct tb_group_lag *gu = &m->groups[2];
    assert_false(gu->offsets_known);
    assert_int_equal(gu->topic_count, 0);
    assert_int_equal(gu->total_lag, 0);
    assert_string_equal(gu->state, "Empty");
    const struct tb_group_lag *gc = &m->groups[0];
    assert_true(gc->offsets_known);
    assert_true(gc->offsets_carried);
    assert_int_equal(gc->total_lag, 40);
    assert_true(m->groups[1].offsets_known);
    assert_int_equal(m->groups[1].topic_count, 0);
    assert_int_equal(m->groups[1].total_lag, 0);
    tb_metrics_unref(m);
    tb_snapshot_unref(s);
}

static void test_lag_several_topics_and_groups(void **state)
{
    (void)state;
    struct tb_snapshot *s = snap_new(0);
    topic(s, "b", 2, (int64_t[]){10, 20}, NULL);
    topic(s, "a", 1, (int64_t[]){5}, NULL);
    topic(s, "c", 1, (int64_t[]){7}, NULL);
    struct tb_group *g2 = group(s, "g2");
    tb_group_add_offset(g2, "c", 0, 0);  /* 7 */
    struct tb_group *g1 = group(s, "g1");
    tb_group_add_offset(g1, "b", 1, 15); /* 5 */
    tb_group_add_offset(g1, "a", 0, 1);  /* 4 */
    tb_group_add_offset(g1, "b", 0, 9);  /* 1 */
    tb_snapshot_finalize(s);
    struct tb_metrics *m = tb_metrics_compute(NULL, s);
    assert_string_equal(m->groups[0].group_id, "g1");
    const struct tb_group_lag *a = &m->groups[0];
    assert_int_equal(a->topic_count, 2);
    assert_string_equal(a->topics[0].topic, "a");
    assert_int_equal(a->topics[0].total_lag, 4);
    assert_string_equal(a->topics[1].topic, "b");
    assert_int_equal(a->topics[1].partition_count, 2);
    assert_int_equal(a->topics[1].partitions[0].lag, 1);
    assert_int_equal(a->topics[1].partitions[1].lag, 5);
    assert_int_equal(a->topics[1].total_lag, 6);
    assert_int_equal(a->total_lag, 10);
    assert_string_equal(m->groups[1].group_id, "g2");
    assert_int_equal(m->groups[1].total_lag, 7);
    assert_string_equal(m->groups[1].topics[0].topic, "c");
    /* topic stats in snapshot order: a, b, c */
    assert_string_equal(m->topics[0].name, "a");
    assert_string_equal(m->topics[1].name, "b");
    assert_int_equal(m->topics[1].total_messages, 30);
    assert_string_equal(m->topics[2].name, "c");
    assert_int_equal(m->total_partitions, 4);
    tb_metrics_unref(m);
    tb_snapshot_unref(s);
}

/* prev hwm sum 600 at mono 1000 ms, cur 800 at 3000 ms -> 200 / 2 s = 100 msg/s */
static void test_produce_rate_basic(void **state)
{
    (void)state;
    struct tb_snapshot *p = snap_new(1000);
    topic(p, "a", 3, (int64_t[]){100, 200, 300}, NULL);
    tb_snapshot_finalize(p);
    struct tb_snapshot *c = snap_new(3000);
    topic(c, "a", 3, (int64_t[]){150, 250, 400}, NULL);
    tb_snapshot_finalize(c);
    struct tb_metrics *m = tb_metrics_compute(p, c);
    assert_true(m->rates_available);
    assert_float_equal(m->rate_window_s, 2.0, EPS);
    const struct tb_topic_stats *a = find_ts(m, "a");
    assert_true(a->produce_rate_available);
    assert_float_equal(a->produce_rate, 100.0, EPS);
    assert_int_equal(a->total_messages, 800);
    /* no groups: fetch rate available and 0 */
    assert_true(a->fetch_rate_available);
    assert_float_equal(a->fetch_rate, 0.0, EPS);
    assert_float_equal(m->produce_rate, 100.0, EPS);
    assert_float_equal(m->fetch_rate, 0.0, EPS);
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
}

static void test_produce_rate_decrease_new_topic_and_partitions(void **state)
{
    (void)state;
    struct tb_snapshot *p = snap_new(0);
    topic(p, "a", 2, (int64_t[]){100, 100}, NULL);
    topic(p, "b", 1, (int64_t[]){0}, NULL);
    topic(p, "grown", 2, (int64_t[]){10, 10}, NULL);
    topic(p, "unk", 2, (int64_t[]){-1, 10}, NULL);
    tb_snapshot_finalize(p);
    struct tb_snapshot *c = snap_new(4000);
    topic(c, "a", 2, (int64_t[]){50, 500}, NULL);        /* p0 went down */
    topic(c, "b", 1, (int64_t[]){40}, NULL);             /* +40 / 4 = 10 */
    topic(c, "grown", 3, (int64_t[]){30, 10, 999}, NULL); /* +20 (p2 new) / 4 = 5 */
    topic(c, "new", 1, (int64_t[]){1000}, NULL);         /* new topic */
    topic(c, "unk", 2, (int64_t[]){500, 18}, NULL);      /* p0 unknown before: +8/4 = 2 */
    tb_snapshot_finalize(c);
    struct tb_metrics *m = tb_metrics_compute(p, c);
    assert_true(m->rates_available);
    assert_false(find_ts(m, "a")->produce_rate_available);
    assert_float_equal(find_ts(m, "a")->produce_rate, 0.0, EPS);
    assert_true(find_ts(m, "a")->fetch_rate_available); /* only produce is affected */
    assert_true(find_ts(m, "b")->produce_rate_available);
    assert_float_equal(find_ts(m, "b")->produce_rate, 10.0, EPS);
    assert_true(find_ts(m, "grown")->produce_rate_available);
    assert_float_equal(find_ts(m, "grown")->produce_rate, 5.0, EPS);
    assert_false(find_ts(m, "new")->produce_rate_available);
    assert_false(find_ts(m, "new")->fetch_rate_available);
    assert_true(find_ts(m, "unk")->produce_rate_available);
    assert_float_equal(find_ts(m, "unk")->produce_rate, 2.0, EPS);
    /* cluster = 10 + 5 + 2 (a and new excluded) */
    assert_float_equal(m->produce_rate, 17.0, EPS);
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
}

static void test_rates_no_prev_or_bad_dt(void **state)
{
    (void)state;
    struct tb_snapshot *p = snap_new(5000);
    topic(p, "a", 1, (int64_t[]){0}, NULL);
    tb_snapshot_finalize(p);
    struct tb_snapshot *c = snap_new(5000); /* dt = 0 */
    topic(c, "a", 1, (int64_t[]){10}, NULL);
    tb_snapshot_finalize(c);
    struct tb_metrics *m = tb_metrics_compute(p, c);
    assert_false(m->rates_available);
    assert_false(m->topics[0].produce_rate_available);
    assert_false(m->topics[0].fetch_rate_available);
    assert_float_equal(m->produce_rate, 0.0, EPS);
    tb_metrics_unref(m);
    c->mono_ms = 4000; /* dt < 0 (test-only mutation before any other use) */
    m = tb_metrics_compute(p, c);
    assert_false(m->rates_available);
    assert_false(m->topics[0].produce_rate_available);
    tb_metrics_unref(m);
    m = tb_metrics_compute(NULL, c);
    assert_false(m->rates_available);
    assert_false(m->topics[0].produce_rate_available);
    assert_false(m->topics[0].fetch_rate_available);
    assert_float_equal(m->rate_window_s, 0.0, EPS);
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
}

/*
 * Fetch rate over dt = 2 s, topic a:
 *   g1: a/0 100->120 (+20), a/1 200->240 (+40)                         = 60
 *   g2: a/0 50->90 (+40), a/2 10->5 (rewind: 0), a/1 new pair (0)      = 40
 *   g3: new group (0)
 *   -> 100 / 2 = 50 msg/s. Topic b: g1 b/0 0->10 -> 5 msg/s. Cluster 55.
 *   g1 also commits on "gone" (not in cur metadata) and a/9 (no such partition):
 *   nothing.
 */
static void test_fetch_rate(void **state)
{
    (void)state;
    struct tb_snapshot *p = snap_new(1000);
    topic(p, "a", 3, (int64_t[]){1000, 1000, 1000}, NULL);
    topic(p, "b", 1, (int64_t[]){100}, NULL);
    topic(p, "gone", 1, (int64_t[]){100}, NULL);
    struct tb_group *g = group(p, "g1");
    tb_group_add_offset(g, "a", 0, 100);
    tb_group_add_offset(g, "a", 1, 200);
    tb_group_add_offset(g, "b", 0, 0);
    tb_group_add_offset(g, "gone", 0, 0);
    tb_group_add_offset(g, "a", 9, 0);
    g = group(p, "g2");
    tb_group_add_offset(g, "a", 0, 50);
    tb_group_add_offset(g, "a", 2, 10);
    tb_snapshot_finalize(p);

    struct tb_snapshot *c = snap_new(3000);
    topic(c, "a", 3, (int64_t[]){1000, 1000, 1000}, NULL);
    topic(c, "b", 1, (int64_t[]){100}, NULL);
    g = group(c, "g1");
    tb_group_add_offset(g, "a", 0, 120);
    tb_group_add_offset(g, "a", 1, 240);
    tb_group_add_offset(g, "b", 0, 10);
    tb_group_add_offset(g, "gone", 0, 1000);
    tb_group_add_offset(g, "a", 9, 1000);
    g = group(c, "g2");
    tb_group_add_offset(g, "a", 0, 90);
    tb_group_add_offset(g, "a", 2, 5);
    tb_group_add_offset(g, "a", 1, 70);
    g = group(c, "g3");
    tb_group_add_offset(g, "a", 0, 999);
    tb_snapshot_finalize(c);

    struct tb_metrics *m = tb_metrics_compute(p, c);
    const struct tb_topic_stats *a = find_ts(m, "a");
    assert_true(a->fetch_rate_available);
    assert_float_equal(a->fetch_rate, 50.0, EPS);
    assert_true(a->produce_rate_available);
    assert_float_equal(a->produce_rate, 0.0, EPS);
    assert_float_equal(find_ts(m, "b")->fetch_rate, 5.0, EPS);
    assert_float_equal(m->fetch_rate, 55.0, EPS);
    assert_int_equal(m->topic_count, 2);
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
}

/* Carried (or unknown) offsets on either side contribute nothing. */
static void test_fetch_rate_carried(void **state)
{
    (void)state;
    struct tb_snapshot *p = snap_new(0);
    topic(p, "a", 1, (int64_t[]){1000}, NULL);
    struct tb_group *g = group(p, "fresh");
    tb_group_add_offset(g, "a", 0, 100);
    g = group(p, "carried-now");
    tb_group_add_offset(g, "a", 0, 100);
    g = group(p, "carried-before");
    g->offsets_carried = true;
    tb_group_add_offset(g, "a", 0, 100);
    g = group(p, "unknown-before");
    g->offsets_known = false;
    tb_snapshot_finalize(p);

    struct tb_snapshot *c = snap_new(1000);
    topic(c, "a", 1, (int64_t[]){1000}, NULL);
    g = group(c, "fresh");
    tb_group_add_offset(g, "a", 0, 110); /* +10 / 1 s */
    g = group(c, "carried-now");
    g->offsets_carried = true;
    tb_group_add_offset(g, "a", 0, 500);
    g = group(c, "carried-before");
    tb_group_add_offset(g, "a", 0, 500);
    g = group(c, "unknown-before");
    tb_group_add_offset(g, "a", 0, 500);
    tb_snapshot_finalize(c);
    struct tb_metrics *m = tb_metrics_compute(p, c);
    assert_float_equal(find_ts(m, "a")->fetch_rate, 10.0, EPS);
    assert_float_equal(m->fetch_rate, 10.0, EPS);
    tb_metrics_unref(m);
    tb_snapshot_unref(p);
    tb_snapshot_unref(c);
}

static void test_refcounts(void **state)
{
    (void)state;
    tb_metrics_unref(NULL);
    struct tb_snapshot *s = snap_new(0);
    topic(s, "a", 1, (int64_t[]){1}, NULL);
    tb_snapshot_finalize(s);
    struct tb_metrics *m = tb_metrics_compute(NULL, s);
    assert_int_equal(atomic_load(&s->refs), 2);
    tb_snapshot_unref(s); /* the caller's reference */
    assert_int_equal(atomic_load(&m->snap->refs), 1);
    assert_string_equal(m->topics[0].name, "a"); /* borrowed names still valid */
    assert_ptr_equal(tb_metrics_ref(m), m);
    assert_int_equal(atomic_load(&m->refs), 2);
    tb_metrics_unref(m);
    assert_int_equal(atomic_load(&m->refs), 1);
    tb_metrics_unref(m);
}

static void test_status_age_and_stale(void **state)
{
    (void)state;
    struct tb_status st;
    memset(&st, 0, sizeof(st));
    st.stale_after_ms = 2000;
    assert_int_equal(tb_status_age_ms(&st, 5000), -1);
    assert_true(tb_status_is_stale(&st, 5000));
    st.last_success_ms = 1000;
    assert_int_equal(tb_status_age_ms(&st, 3000), 2000);
    assert_false(tb_status_is_stale(&st, 3000)); /* exactly stale_after: not older */
    assert_int_equal(tb_status_age_ms(&st, 3001), 2001);
    assert_true(tb_status_is_stale(&st, 3001));
    assert_int_equal(tb_status_age_ms(&st, 500), 0); /* clock went back: not negative */
    assert_false(tb_status_is_stale(&st, 500));
    st.stale_after_ms = 0;
    assert_false(tb_status_is_stale(&st, 1000000));
}

/*
 * Scale: 100 topics x 100 partitions, 1000 groups with 10 offsets each.
 *   topic t: prev hwm 1000 on every partition, cur 1000 + p. dt = 2 s.
 *   group k commits on topic (k % 100), partitions 0..9: prev 500, cur 500 + k % 7.
 * produce: per topic sum(p, p = 0..99) = 4950 -> 2475 msg/s; cluster 247500.
 * fetch (topic t): groups k with k % 100 == t, each 10 * (k % 7) over 2 s.
 * lag of group k at partition p: (1000 + p) - (500 + k % 7).
 */
static void test_scale(void **state)
{
    (void)state;
    struct tb_snapshot *snaps[2];
    for (int which = 0; which < 2; which++) {
        struct tb_snapshot *s = snap_new(which ? 3000 : 1000);
        for (int t = 0; t < 100; t++) {
            char name[16];
            snprintf(name, sizeof(name), "t%03d", t);
            struct tb_topic *tp = tb_snapshot_add_topic(s, name, 100);
            for (int p = 0; p < 100; p++) {
                tp->partitions[p].high_watermark = which ? 1000 + p : 1000;
                tp->partitions[p].log_start = 0;
            }
        }
        for (int k = 0; k < 1000; k++) {
            char id[16], name[16];
            snprintf(id, sizeof(id), "g%04d", k);
            snprintf(name, sizeof(name), "t%03d", k % 100);
            struct tb_group *g = group(s, id);
            for (int p = 9; p >= 0; p--)
                tb_group_add_offset(g, name, p, which ? 500 + k % 7 : 500);
        }
        tb_snapshot_finalize(s);
        snaps[which] = s;
    }
    struct tb_metrics *m = tb_metrics_compute(snaps[0], snaps[1]);
    assert_non_null(m);
    assert_int_equal(m->total_partitions, 10000);
    assert_float_equal(m->produce_rate, 247500.0, 1e-6);
    double fetch_total = 0;
    for (int t = 0; t < 100; t++) {
        double expect = 0;
        for (int k = t; k < 1000; k += 100)
            expect += 10.0 * (k % 7) / 2.0;
        fetch_total += expect;
        assert_float_equal(m->topics[t].produce_rate, 2475.0, 1e-6);
        assert_float_equal(m->topics[t].fetch_rate, expect, 1e-6);
    }
    assert_float_equal(m->fetch_rate, fetch_total, 1e-6);
    assert_int_equal(m->group_count, 1000);
    for (int k = 0; k < 1000; k++) {
        const struct tb_group_lag *gl = &m->groups[k];
        assert_int_equal(gl->topic_count, 1);
        int64_t total = 0;
        for (int p = 0; p < 10; p++) {
            int64_t lag = (1000 + p) - (500 + k % 7);
            assert_int_equal(gl->topics[0].partitions[p].lag, lag);
            total += lag;
        }
        assert_int_equal(gl->total_lag, total);
    }
    tb_metrics_unref(m);
    tb_snapshot_unref(snaps[0]);
    tb_snapshot_unref(snaps[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lag_example),
        cmocka_unit_test(test_lag_unlisted_partitions),
        cmocka_unit_test(test_lag_end_unknown_and_floor),
        cmocka_unit_test(test_lag_offsets_unknown_and_carried),
        cmocka_unit_test(test_lag_several_topics_and_groups),
        cmocka_unit_test(test_produce_rate_basic),
        cmocka_unit_test(test_produce_rate_decrease_new_topic_and_partitions),
        cmocka_unit_test(test_rates_no_prev_or_bad_dt),
        cmocka_unit_test(test_fetch_rate),
        cmocka_unit_test(test_fetch_rate_carried),
        cmocka_unit_test(test_refcounts),
        cmocka_unit_test(test_status_age_and_stale),
        cmocka_unit_test(test_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
