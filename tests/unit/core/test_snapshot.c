/*
 * test_snapshot.c - unit tests for src/core/snapshot.c (include/tb/snapshot.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb/snapshot.h"

static void test_new_defaults(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(1704225600123);
    assert_non_null(s);
    assert_int_equal(atomic_load(&s->refs), 1);
    assert_int_equal(s->taken_ms, 1704225600123);
    assert_int_equal(s->controller_id, -1);
    assert_int_equal(s->topic_count, 0);
    assert_int_equal(s->group_count, 0);
    assert_int_equal(s->broker_count, 0);
    tb_snapshot_finalize(s);
    assert_null(tb_snapshot_find_topic(s, "x"));
    assert_null(tb_snapshot_find_group(s, "x"));
    assert_int_equal(tb_snapshot_total_partitions(s), 0);
    tb_snapshot_unref(s);
}

static void test_add_topic_prefills_partitions(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(0);
    char name[8];
    strcpy(name, "orders");
    struct tb_topic *t = tb_snapshot_add_topic(s, name, 3);
    assert_non_null(t);
    name[0] = 'X'; /* the snapshot copied the name */
    assert_string_equal(t->name, "orders");
    assert_int_equal(t->partition_count, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t->partitions[i].id, i);
        assert_int_equal(t->partitions[i].leader, -1);
        assert_int_equal(t->partitions[i].log_start, -1);
        assert_int_equal(t->partitions[i].high_watermark, -1);
    }
    struct tb_topic *e = tb_snapshot_add_topic(s, "empty", 0);
    assert_non_null(e);
    assert_int_equal(e->partition_count, 0);
    tb_snapshot_finalize(s);
    assert_int_equal(tb_snapshot_total_partitions(s), 3);
    const struct tb_topic *f = tb_snapshot_find_topic(s, "empty");
    assert_non_null(f);
    assert_null(tb_topic_find_partition(f, 0));
    tb_snapshot_unref(s);
}

static void test_finalize_sorts_and_lookups(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(0);
    const char *names[] = {"m", "b", "z", "a", "k"};
    for (size_t i = 0; i < 5; i++) {
        struct tb_topic *t = tb_snapshot_add_topic(s, names[i], 2);
        assert_non_null(t);
        /* partitions given in reverse id order */
        t->partitions[0].id = 1;
        t->partitions[0].high_watermark = 11;
        t->partitions[1].id = 0;
        t->partitions[1].high_watermark = 10;
    }
    tb_snapshot_finalize(s);
    assert_int_equal(s->topic_count, 5);
    assert_string_equal(s->topics[0].name, "a");
    assert_string_equal(s->topics[1].name, "b");
    assert_string_equal(s->topics[2].name, "k");
    assert_string_equal(s->topics[3].name, "m");
    assert_string_equal(s->topics[4].name, "z");
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(s->topics[i].partitions[0].id, 0);
        assert_int_equal(s->topics[i].partitions[0].high_watermark, 10);
        assert_int_equal(s->topics[i].partitions[1].id, 1);
        assert_int_equal(s->topics[i].partitions[1].high_watermark, 11);
    }
    const struct tb_topic *k = tb_snapshot_find_topic(s, "k");
    assert_ptr_equal(k, &s->topics[2]);
    assert_null(tb_snapshot_find_topic(s, "c"));
    assert_null(tb_snapshot_find_topic(s, ""));
    assert_null(tb_snapshot_find_topic(s, "zz"));
    const struct tb_partition *p = tb_topic_find_partition(k, 1);
    assert_non_null(p);
    assert_int_equal(p->high_watermark, 11);
    assert_null(tb_topic_find_partition(k, 2));
    assert_null(tb_topic_find_partition(k, -1));
    assert_int_equal(tb_snapshot_total_partitions(s), 10);
    tb_snapshot_unref(s);
}

static void test_sparse_partition_ids(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(0);
    struct tb_topic *t = tb_snapshot_add_topic(s, "t", 3);
    t->partitions[0].id = 7;
    t->partitions[1].id = 2;
    t->partitions[2].id = 5;
    tb_snapshot_finalize(s);
    const struct tb_topic *f = tb_snapshot_find_topic(s, "t");
    assert_int_equal(f->partitions[0].id, 2);
    assert_int_equal(f->partitions[1].id, 5);
    assert_int_equal(f->partitions[2].id, 7);
    assert_int_equal(tb_topic_find_partition(f, 5)->id, 5);
    assert_int_equal(tb_topic_find_partition(f, 7)->id, 7);
    assert_null(tb_topic_find_partition(f, 0));
    assert_null(tb_topic_find_partition(f, 1));
    tb_snapshot_unref(s);
}

static void test_groups_and_offsets(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(0);
    struct tb_group *g = tb_snapshot_add_group(s, "g2", "Stable", 3);
    assert_non_null(g);
    assert_false(g->offsets_known);
    assert_false(g->offsets_carried);
    assert_int_equal(g->offset_count, 0);
    assert_int_equal(tb_group_add_offset(g, "b", 1, 50), 0);
    assert_int_equal(tb_group_add_offset(g, "a", 2, 20), 0);
    assert_int_equal(tb_group_add_offset(g, "b", 0, 40), 0);
    assert_int_equal(tb_group_add_offset(g, "a", 0, 10), 0);
    /* no committed offset: not stored */
    assert_int_equal(tb_group_add_offset(g, "a", 1, -1), 0);
    assert_int_equal(tb_group_add_offset(g, "a", 3, -1001), 0);
    g->offsets_known = true;
    struct tb_group *g1 = tb_snapshot_add_group(s, "g1", NULL, 0);
    assert_non_null(g1);
    assert_string_equal(g1->state, "");
    tb_snapshot_finalize(s);

    assert_int_equal(s->group_count, 2);
    assert_string_equal(s->groups[0].id, "g1");
    assert_string_equal(s->groups[1].id, "g2");
    const struct tb_group *f = tb_snapshot_find_group(s, "g2");
    assert_ptr_equal(f, &s->groups[1]);
    assert_string_equal(f->state, "Stable");
    assert_int_equal(f->members, 3);
    assert_true(f->offsets_known);
    assert_int_equal(f->offset_count, 4);
    assert_string_equal(f->offsets[0].topic, "a");
    assert_int_equal(f->offsets[0].partition, 0);
    assert_int_equal(f->offsets[0].committed, 10);
    assert_string_equal(f->offsets[1].topic, "a");
    assert_int_equal(f->offsets[1].partition, 2);
    assert_int_equal(f->offsets[1].committed, 20);
    assert_string_equal(f->offsets[2].topic, "b");
    assert_int_equal(f->offsets[2].partition, 0);
    assert_int_equal(f->offsets[2].committed, 40);
    assert_string_equal(f->offsets[3].topic, "b");
    assert_int_equal(f->offsets[3].partition, 1);
    assert_int_equal(f->offsets[3].committed, 50);
    assert_null(tb_snapshot_find_group(s, "g3"));
    assert_null(tb_snapshot_find_group(s, "g"));
    tb_snapshot_unref(s);
}

static void test_many_offsets_grow_and_sort(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(0);
    struct tb_group *g = tb_snapshot_add_group(s, "g", "Empty", 0);
    /* 1000 offsets over 10 topics, added in reverse order */
    for (int i = 999; i >= 0; i--) {
        char topic[16];
        snprintf(topic, sizeof(topic), "t%d", i / 100);
        assert_int_equal(tb_group_add_offset(g, topic, i % 100, i), 0);
    }
    tb_snapshot_finalize(s);
    const struct tb_group *f = tb_snapshot_find_group(s, "g");
    assert_int_equal(f->offset_count, 1000);
    for (int i = 0; i < 1000; i++) {
        char topic[16];
        snprintf(topic, sizeof(topic), "t%d", i / 100);
        assert_string_equal(f->offsets[i].topic, topic);
        assert_int_equal(f->offsets[i].partition, i % 100);
        assert_int_equal(f->offsets[i].committed, i);
    }
    tb_snapshot_unref(s);
}

static void test_many_topics_and_groups(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(0);
    for (int i = 499; i >= 0; i--) {
        char n[16];
        snprintf(n, sizeof(n), "topic-%03d", i);
        assert_non_null(tb_snapshot_add_topic(s, n, 4));
        snprintf(n, sizeof(n), "group-%03d", i);
        assert_non_null(tb_snapshot_add_group(s, n, "Stable", 1));
    }
    tb_snapshot_finalize(s);
    assert_int_equal(s->topic_count, 500);
    assert_int_equal(s->group_count, 500);
    assert_int_equal(tb_snapshot_total_partitions(s), 2000);
    for (int i = 0; i < 500; i++) {
        char n[16];
        snprintf(n, sizeof(n), "topic-%03d", i);
        assert_ptr_equal(tb_snapshot_find_topic(s, n), &s->topics[i]);
        snprintf(n, sizeof(n), "group-%03d", i);
        assert_ptr_equal(tb_snapshot_find_group(s, n), &s->groups[i]);
    }
    tb_snapshot_unref(s);
}

static void test_finalize_dedups_keeping_first(void **state)
{
    (void)state;
    struct tb_snapshot *s = tb_snapshot_new(0);
    struct tb_topic *t = tb_snapshot_add_topic(s, "dup", 1);
    t->partitions[0].high_watermark = 1;
    tb_snapshot_add_topic(s, "other", 1);
    t = tb_snapshot_add_topic(s, "dup", 2);
    t->partitions[0].high_watermark = 2;
    t = tb_snapshot_add_topic(s, "parts", 3);
    t->partitions[0].id = 0;
    t->partitions[0].high_watermark = 100;
    t->partitions[1].id = 0; /* duplicate id: dropped */
    t->partitions[1].high_watermark = 200;
    t->partitions[2].id = 1;

    struct tb_group *g = tb_snapshot_add_group(s, "gd", "Stable", 1);
    tb_group_add_offset(g, "x", 0, 5);
    tb_group_add_offset(g, "x", 0, 6); /* duplicate: dropped */
    tb_snapshot_add_group(s, "ga", "Empty", 0);
    tb_snapshot_add_group(s, "gd", "Dead", 9);
    tb_snapshot_finalize(s);

    assert_int_equal(s->topic_count, 3);
    const struct tb_topic *d = tb_snapshot_find_topic(s, "dup");
    assert_int_equal(d->partition_count, 1);
    assert_int_equal(d->partitions[0].high_watermark, 1);
    const struct tb_topic *p = tb_snapshot_find_topic(s, "parts");
    assert_int_equal(p->partition_count, 2);
    assert_int_equal(p->partitions[0].high_watermark, 100);
    assert_int_equal(p->partitions[1].id, 1);
    assert_int_equal(tb_snapshot_total_partitions(s), 4);

    assert_int_equal(s->group_count, 2);
    const struct tb_group *gd = tb_snapshot_find_group(s, "gd");
    assert_string_equal(gd->state, "Stable");
    assert_int_equal(gd->members, 1);
    assert_int_equal(gd->offset_count, 1);
    assert_int_equal(gd->offsets[0].committed, 5);
    tb_snapshot_unref(s);
}

static void test_copy_offsets(void **state)
{
    (void)state;
    struct tb_snapshot *old = tb_snapshot_new(0);
    struct tb_group *from = tb_snapshot_add_group(old, "g", "Stable", 1);
    tb_group_add_offset(from, "a", 0, 7);
    tb_group_add_offset(from, "a", 1, 8);
    tb_snapshot_finalize(old);

    struct tb_snapshot *s = tb_snapshot_new(0);
    struct tb_group *to = tb_snapshot_add_group(s, "g", "Stable", 1);
    tb_group_add_offset(to, "zz", 0, 1); /* replaced by the copy */
    const struct tb_group *src = tb_snapshot_find_group(old, "g");
    assert_int_equal(tb_group_copy_offsets(to, src), 0);
    /* the copy must survive the source */
    tb_snapshot_unref(old);
    assert_int_equal(tb_group_add_offset(to, "b", 0, 9), 0); /* still growable */
    tb_snapshot_finalize(s);
    const struct tb_group *g = tb_snapshot_find_group(s, "g");
    assert_int_equal(g->offset_count, 3);
    assert_string_equal(g->offsets[0].topic, "a");
    assert_int_equal(g->offsets[0].committed, 7);
    assert_string_equal(g->offsets[1].topic, "a");
    assert_int_equal(g->offsets[1].committed, 8);
    assert_string_equal(g->offsets[2].topic, "b");
    assert_int_equal(g->offsets[2].committed, 9);

    /* copying an empty set empties */
    struct tb_snapshot *e = tb_snapshot_new(0);
    struct tb_group *eg = tb_snapshot_add_group(e, "e", "Empty", 0);
    assert_int_equal(tb_group_copy_offsets(eg, &s->groups[0]), 0);
    assert_int_equal(eg->offset_count, 3);
    struct tb_group blank = {0};
    assert_int_equal(tb_group_copy_offsets(eg, &blank), 0);
    assert_int_equal(eg->offset_count, 0);
    tb_snapshot_unref(e);
    tb_snapshot_unref(s);
}

static void test_refcount(void **state)
{
    (void)state;
    tb_snapshot_unref(NULL);
    struct tb_snapshot *s = tb_snapshot_new(0);
    tb_snapshot_add_topic(s, "t", 1);
    tb_snapshot_finalize(s);
    assert_ptr_equal(tb_snapshot_ref(s), s);
    assert_int_equal(atomic_load(&s->refs), 2);
    tb_snapshot_unref(s);
    assert_int_equal(atomic_load(&s->refs), 1);
    assert_string_equal(s->topics[0].name, "t");
    tb_snapshot_unref(s); /* freed: ASan/valgrind check leaks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_defaults),
        cmocka_unit_test(test_add_topic_prefills_partitions),
        cmocka_unit_test(test_finalize_sorts_and_lookups),
        cmocka_unit_test(test_sparse_partition_ids),
        cmocka_unit_test(test_groups_and_offsets),
        cmocka_unit_test(test_many_offsets_grow_and_sort),
        cmocka_unit_test(test_many_topics_and_groups),
        cmocka_unit_test(test_finalize_dedups_keeping_first),
        cmocka_unit_test(test_copy_offsets),
        cmocka_unit_test(test_refcount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
