/*
 * test_events.c - unit tests for src/core/events.c (include/tb/events.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb/events.h"

/*
 * Build a finalized snapshot taken at @t_ms from "name=partitions" topic specs and
 * "id=State/members" group specs (NULL-terminated lists; either may be NULL).
 */
static struct tb_snapshot *snap(int64_t t_ms, const char *const *topics,
                                const char *const *groups)
{
    struct tb_snapshot *s = tb_snapshot_new(t_ms);
    assert_non_null(s);
    for (size_t i = 0; topics && topics[i]; i++) {
        char name[128];
        unsigned parts = 0;
        assert_int_equal(sscanf(topics[i], "%127[^=]=%u", name, &parts), 2);
        assert_non_null(tb_snapshot_add_topic(s, name, parts));
    }
    for (size_t i = 0; groups && groups[i]; i++) {
        char id[128], st[64];
        int members = 0;
        assert_int_equal(sscanf(groups[i], "%127[^=]=%63[^/]/%d", id, st, &members), 3);
        assert_non_null(tb_snapshot_add_group(s, id, st, members));
    }
    tb_snapshot_finalize(s);
    return s;
}

/* observe and unref */
static void observe(struct tb_tracker *t, struct tb_snapshot *s, struct tb_event_list *out)
{
    assert_int_equal(tb_tracker_observe(t, s, out), 0);
    tb_snapshot_unref(s);
}

#define T(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE NULL

static void assert_topic_ev(const struct tb_event *e, enum tb_event_type type,
                            const char *name, int32_t partitions, int64_t time_s)
{
    assert_int_equal(e->type, type);
    assert_string_equal(e->name, name);
    if (type == TB_EVENT_TOPIC_CREATED)
        assert_int_equal(e->partitions, partitions);
    assert_int_equal(e->time_s, time_s);
}

static void assert_group_ev(const struct tb_event *e, const char *id, const char *state,
                            int32_t members)
{
    assert_int_equal(e->type, TB_EVENT_GROUP_UPDATED);
    assert_string_equal(e->name, id);
    assert_string_equal(e->state, state);
    assert_int_equal(e->members, members);
}

static void test_type_names(void **state)
{
    (void)state;
    assert_string_equal(tb_event_type_name(TB_EVENT_TOPIC_CREATED), "topic_created");
    assert_string_equal(tb_event_type_name(TB_EVENT_TOPIC_DELETED), "topic_deleted");
    assert_string_equal(tb_event_type_name(TB_EVENT_GROUP_UPDATED), "group_updated");
}

static void test_list_push_move_clear(void **state)
{
    (void)state;
    struct tb_event_list a, b;
    tb_event_list_init(&a);
    tb_event_list_init(&b);
    assert_int_equal(a.count, 0);
    char name[8] = "topic";
    struct tb_event ev = {.type = TB_EVENT_TOPIC_CREATED, .name = name, .partitions = 3,
                          .time_s = 42};
    assert_int_equal(tb_event_list_push(&a, &ev), 0);
    name[0] = 'X'; /* deep copy */
    assert_string_equal(a.items[0].name, "topic");
    assert_null(a.items[0].state);
    struct tb_event gev = {.type = TB_EVENT_GROUP_UPDATED, .name = (char *)"g",
                           .state = (char *)"Stable", .members = 2, .time_s = 43};
    for (int i = 0; i < 100; i++)
        assert_int_equal(tb_event_list_push(&b, &gev), 0);
    assert_int_equal(tb_event_list_move(&a, &b), 0);
    assert_int_equal(b.count, 0);
    assert_int_equal(a.count, 101);
    assert_string_equal(a.items[0].name, "topic");
    assert_string_equal(a.items[100].state, "Stable");
    assert_int_equal(a.items[100].members, 2);
    /* move into an empty list */
    assert_int_equal(tb_event_list_move(&b, &a), 0);
    assert_int_equal(a.count, 0);
    assert_int_equal(b.count, 101);
    assert_int_equal(b.items[0].time_s, 42);
    /* the emptied list stays usable */
    assert_int_equal(tb_event_list_push(&a, &ev), 0);
    assert_int_equal(a.count, 1);
    tb_event_list_clear(&a);
    tb_event_list_clear(&b);
    assert_int_equal(a.count, 0);
    assert_int_equal(b.count, 0);
    assert_int_equal(tb_event_list_push(&b, &ev), 0);
    tb_event_list_clear(&b);
}

static void test_baseline_no_events(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(2, 2);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, T("a=1", "b=2"), T("g=Stable/1")), &out);
    assert_int_equal(out.count, 0);
    /* the same again: nothing */
    observe(t, snap(3000, T("a=1", "b=2"), T("g=Stable/1")), &out);
    assert_int_equal(out.count, 0);
    tb_tracker_free(t);
    tb_tracker_free(NULL);
    tb_event_list_clear(&out);
}

static void test_topic_created(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(2, 2);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, T("a=1"), NONE), &out);
    observe(t, snap(1704225600999, T("a=1", "new=5"), NONE), &out);
    assert_int_equal(out.count, 1);
    assert_topic_ev(&out.items[0], TB_EVENT_TOPIC_CREATED, "new", 5, 1704225600);
    /* partitions grew in place: no event */
    observe(t, snap(5000, T("a=1", "new=8"), NONE), &out);
    assert_int_equal(out.count, 1);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

static void test_topic_deleted_after_confirm(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(3, 2);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, T("a=1", "b=1"), NONE), &out);
    observe(t, snap(2000, T("a=1"), NONE), &out); /* miss 1 */
    assert_int_equal(out.count, 0);
    observe(t, snap(3000, T("a=1"), NONE), &out); /* miss 2 */
    assert_int_equal(out.count, 0);
    observe(t, snap(4000, T("a=1"), NONE), &out); /* miss 3: confirmed */
    assert_int_equal(out.count, 1);
    assert_topic_ev(&out.items[0], TB_EVENT_TOPIC_DELETED, "b", 0, 4);
    /* once reported, not again */
    observe(t, snap(5000, T("a=1"), NONE), &out);
    assert_int_equal(out.count, 1);
    /* and it can be created again */
    observe(t, snap(6000, T("a=1", "b=4"), NONE), &out);
    assert_int_equal(out.count, 2);
    assert_topic_ev(&out.items[1], TB_EVENT_TOPIC_CREATED, "b", 4, 6);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

static void test_topic_reappear_resets(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(2, 2);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, T("a=1", "b=1"), NONE), &out);
    observe(t, snap(2000, T("a=1"), NONE), &out);         /* b miss 1 */
    observe(t, snap(3000, T("a=1", "b=1"), NONE), &out);  /* back: reset */
    observe(t, snap(4000, T("a=1"), NONE), &out);         /* miss 1 again */
    assert_int_equal(out.count, 0);
    observe(t, snap(5000, T("a=1"), NONE), &out);         /* miss 2 */
    assert_int_equal(out.count, 1);
    assert_topic_ev(&out.items[0], TB_EVENT_TOPIC_DELETED, "b", 0, 5);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

static void test_topic_confirm_one(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(0, 0); /* < 1 is treated as 1 */
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, T("a=1"), T("g=Stable/1")), &out);
    observe(t, snap(2000, NONE, NONE), &out);
    assert_int_equal(out.count, 2);
    assert_topic_ev(&out.items[0], TB_EVENT_TOPIC_DELETED, "a", 0, 2);
    assert_group_ev(&out.items[1], "g", "Dead", 0);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

static void test_partition_decrease_is_recreate(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(2, 2);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, T("a=6"), NONE), &out);
    observe(t, snap(2000, T("a=3"), NONE), &out);
    assert_int_equal(out.count, 2);
    assert_topic_ev(&out.items[0], TB_EVENT_TOPIC_DELETED, "a", 0, 2);
    assert_topic_ev(&out.items[1], TB_EVENT_TOPIC_CREATED, "a", 3, 2);
    /* the new count is the reference now */
    observe(t, snap(3000, T("a=3"), NONE), &out);
    assert_int_equal(out.count, 2);
    /* decrease after a short absence too */
    observe(t, snap(4000, NONE, NONE), &out);
    observe(t, snap(5000, T("a=2"), NONE), &out);
    assert_int_equal(out.count, 4);
    assert_topic_ev(&out.items[2], TB_EVENT_TOPIC_DELETED, "a", 0, 5);
    assert_topic_ev(&out.items[3], TB_EVENT_TOPIC_CREATED, "a", 2, 5);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

static void test_group_changes(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(2, 2);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, NONE, T("g=Stable/2")), &out);
    /* appear */
    observe(t, snap(2000, NONE, T("g=Stable/2", "h=Empty/0")), &out);
    assert_int_equal(out.count, 1);
    assert_group_ev(&out.items[0], "h", "Empty", 0);
    assert_int_equal(out.items[0].time_s, 2);
    /* state change */
    observe(t, snap(3000, NONE, T("g=PreparingRebalance/2", "h=Empty/0")), &out);
    assert_int_equal(out.count, 2);
    assert_group_ev(&out.items[1], "g", "PreparingRebalance", 2);
    /* member change only */
    observe(t, snap(4000, NONE, T("g=PreparingRebalance/3", "h=Empty/0")), &out);
    assert_int_equal(out.count, 3);
    assert_group_ev(&out.items[2], "g", "PreparingRebalance", 3);
    /* vanish: Dead after 2 misses */
    observe(t, snap(5000, NONE, T("g=PreparingRebalance/3")), &out);
    assert_int_equal(out.count, 3);
    observe(t, snap(6000, NONE, T("g=PreparingRebalance/3")), &out);
    assert_int_equal(out.count, 4);
    assert_group_ev(&out.items[3], "h", "Dead", 0);
    assert_int_equal(out.items[3].time_s, 6);
    /* comes back: a new appearance */
    observe(t, snap(7000, NONE, T("g=PreparingRebalance/3", "h=Stable/1")), &out);
    assert_int_equal(out.count, 5);
    assert_group_ev(&out.items[4], "h", "Stable", 1);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

static void test_group_short_absence(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(2, 3);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, NONE, T("a=Stable/1", "b=Stable/1")), &out);
    observe(t, snap(2000, NONE, NONE), &out);
    observe(t, snap(3000, NONE, NONE), &out);
    assert_int_equal(out.count, 0);
    /* a back unchanged: nothing; b back changed: reported */
    observe(t, snap(4000, NONE, T("a=Stable/1", "b=Empty/0")), &out);
    assert_int_equal(out.count, 1);
    assert_group_ev(&out.items[0], "b", "Empty", 0);
    /* counts were reset: two misses are not enough with confirm 3 */
    observe(t, snap(5000, NONE, NONE), &out);
    observe(t, snap(6000, NONE, NONE), &out);
    assert_int_equal(out.count, 1);
    observe(t, snap(7000, NONE, NONE), &out);
    assert_int_equal(out.count, 3);
    assert_group_ev(&out.items[1], "a", "Dead", 0);
    assert_group_ev(&out.items[2], "b", "Dead", 0);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

/* Several changes at once come out deleted (by name), created (by name), groups (by id) */
static void test_deterministic_order(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(1, 1);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, T("keep=1", "zdel=1", "adel=1", "shrink=4"),
                    T("gkeep=Stable/1", "gvanish=Stable/1", "gchange=Stable/1")),
            &out);
    observe(t, snap(2000, T("znew=2", "keep=1", "anew=1", "shrink=2"),
                    T("gkeep=Stable/1", "gchange=Empty/0", "gnew=Stable/4", "aa=Empty/0")),
            &out);
    assert_int_equal(out.count, 10);
    assert_topic_ev(&out.items[0], TB_EVENT_TOPIC_DELETED, "adel", 0, 2);
    assert_topic_ev(&out.items[1], TB_EVENT_TOPIC_DELETED, "shrink", 0, 2);
    assert_topic_ev(&out.items[2], TB_EVENT_TOPIC_DELETED, "zdel", 0, 2);
    assert_topic_ev(&out.items[3], TB_EVENT_TOPIC_CREATED, "anew", 1, 2);
    assert_topic_ev(&out.items[4], TB_EVENT_TOPIC_CREATED, "shrink", 2, 2);
    assert_topic_ev(&out.items[5], TB_EVENT_TOPIC_CREATED, "znew", 2, 2);
    assert_group_ev(&out.items[6], "aa", "Empty", 0);
    assert_group_ev(&out.items[7], "gchange", "Empty", 0);
    assert_group_ev(&out.items[8], "gnew", "Stable", 4);
    assert_group_ev(&out.items[9], "gvanish", "Dead", 0);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

/* Events are appended after what @out already holds. */
static void test_appends_to_out(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(2, 2);
    struct tb_event_list out;
    tb_event_list_init(&out);
    struct tb_event pre = {.type = TB_EVENT_TOPIC_DELETED, .name = (char *)"earlier"};
    observe(t, snap(1000, NONE, NONE), &out);
    assert_int_equal(tb_event_list_push(&out, &pre), 0);
    observe(t, snap(2000, T("x=1"), NONE), &out);
    assert_int_equal(out.count, 2);
    assert_string_equal(out.items[0].name, "earlier");
    assert_topic_ev(&out.items[1], TB_EVENT_TOPIC_CREATED, "x", 1, 2);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

/* Many names: creation of 2000 topics and 1000 groups in one observation, then deletion. */
static void test_many(void **state)
{
    (void)state;
    struct tb_tracker *t = tb_tracker_new(1, 1);
    struct tb_event_list out;
    tb_event_list_init(&out);
    observe(t, snap(1000, NONE, NONE), &out);
    struct tb_snapshot *s = tb_snapshot_new(2000);
    for (int i = 1999; i >= 0; i--) {
        char n[16];
        snprintf(n, sizeof(n), "t%04d", i);
        tb_snapshot_add_topic(s, n, (size_t)(i % 5 + 1));
        if (i < 1000) {
            snprintf(n, sizeof(n), "g%04d", i);
            tb_snapshot_add_group(s, n, "Stable", i % 3);
        }
    }
    tb_snapshot_finalize(s);
    observe(t, s, &out);
    assert_int_equal(out.count, 3000);
    for (int i = 0; i < 2000; i++) {
        char n[16];
        snprintf(n, sizeof(n), "t%04d", i);
        assert_topic_ev(&out.items[i], TB_EVENT_TOPIC_CREATED, n, i % 5 + 1, 2);
    }
    for (int i = 0; i < 1000; i++) {
        char n[16];
        snprintf(n, sizeof(n), "g%04d", i);
        assert_group_ev(&out.items[2000 + i], n, "Stable", i % 3);
    }
    tb_event_list_clear(&out);
    observe(t, snap(3000, NONE, NONE), &out);
    assert_int_equal(out.count, 3000);
    assert_topic_ev(&out.items[0], TB_EVENT_TOPIC_DELETED, "t0000", 0, 3);
    assert_group_ev(&out.items[2999], "g0999", "Dead", 0);
    tb_tracker_free(t);
    tb_event_list_clear(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_names),
        cmocka_unit_test(test_list_push_move_clear),
        cmocka_unit_test(test_baseline_no_events),
        cmocka_unit_test(test_topic_created),
        cmocka_unit_test(test_topic_deleted_after_confirm),
        cmocka_unit_test(test_topic_reappear_resets),
        cmocka_unit_test(test_topic_confirm_one),
        cmocka_unit_test(test_partition_decrease_is_recreate),
        cmocka_unit_test(test_group_changes),
        cmocka_unit_test(test_group_short_absence),
        cmocka_unit_test(test_deterministic_order),
        cmocka_unit_test(test_appends_to_out),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
