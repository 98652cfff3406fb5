/* Unit tests for src/core/mailbox.c: latest-wins updates, ordered events, wake-ups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb/mailbox.h"

static int wakes;
static void count_wake(void *arg)
{
    (void)arg;
    wakes++;
}

static struct tb_update *status_update(uint64_t cycles_ok)
{
    struct tb_status st;
    memset(&st, 0, sizeof(st));
    st.cycles_ok = cycles_ok;
    return tb_update_new(NULL, &st);
}

static void push_topic_event(struct tb_event_list *l, const char *name)
{
    struct tb_event ev = {.type = TB_EVENT_TOPIC_CREATED, .name = (char *)name, .partitions = 1};
    assert_int_equal(tb_event_list_push(l, &ev), 0);
}

static void test_latest_wins_and_events_keep_order(void **state)
{
    (void)state;
    struct tb_mailbox mb;
    assert_int_equal(tb_mailbox_init(&mb), 0);
    wakes = 0;
    tb_mailbox_set_wake(&mb, count_wake, NULL);

    struct tb_event_list evs;
    tb_event_list_init(&evs);
    push_topic_event(&evs, "a");
    push_topic_event(&evs, "b");
    tb_mailbox_publish(&mb, status_update(1), &evs);
    assert_int_equal(evs.count, 0); /* moved */
    push_topic_event(&evs, "c");
    tb_mailbox_publish(&mb, status_update(2), &evs);
    tb_mailbox_publish(&mb, status_update(3), NULL);
    assert_int_equal(wakes, 3);

    struct tb_update *u = NULL;
    struct tb_event_list got;
    tb_event_list_init(&got);
    assert_int_equal(tb_mailbox_take(&mb, 0, &u, &got), 0);
    assert_non_null(u);
    assert_int_equal(u->seq, 3);                 /* only the latest */
    assert_int_equal(u->status.cycles_ok, 3);
    assert_int_equal(got.count, 3);              /* every event, in order */
    assert_string_equal(got.items[0].name, "a");
    assert_string_equal(got.items[1].name, "b");
    assert_string_equal(got.items[2].name, "c");
    tb_update_unref(u);
    tb_event_list_clear(&got);

    /* Nothing new since seq 3. */
    assert_int_equal(tb_mailbox_take(&mb, 3, &u, &got), 0);
    assert_null(u);
    assert_int_equal(got.count, 0);

    /* peek does not consume events. */
    push_topic_event(&evs, "d");
    tb_mailbox_publish(&mb, status_update(4), &evs);
    u = tb_mailbox_peek(&mb);
    assert_int_equal(u->seq, 4);
    tb_update_unref(u);
    tb_mailbox_take(&mb, 3, &u, &got);
    assert_int_equal(got.count, 1);
    assert_string_equal(got.items[0].name, "d");
    tb_update_unref(u);
    tb_event_list_clear(&got);
    tb_mailbox_release(&mb);
}

static void test_update_outlives_mailbox(void **state)
{
    (void)state;
    struct tb_mailbox mb;
    assert_int_equal(tb_mailbox_init(&mb), 0);
    tb_mailbox_publish(&mb, status_update(7), NULL);
    struct tb_update *u = tb_mailbox_peek(&mb);
    tb_mailbox_release(&mb);                     /* drops the mailbox's reference */
    assert_int_equal(u->status.cycles_ok, 7);    /* ours is still valid (ASan checks) */
    tb_update_unref(u);
    tb_update_unref(NULL);
}

static void test_pending_events_are_bounded(void **state)
{
    (void)state;
    struct tb_mailbox mb;
    assert_int_equal(tb_mailbox_init(&mb), 0);
    struct tb_event_list evs;
    tb_event_list_init(&evs);
    char name[32];
    for (int i = 0; i < TB_MAILBOX_MAX_EVENTS + 5; i++) {
        snprintf(name, sizeof(name), "t%d", i);
        push_topic_event(&evs, name);
    }
    tb_mailbox_publish(&mb, status_update(1), &evs);
    struct tb_update *u = NULL;
    struct tb_event_list got;
    tb_event_list_init(&got);
    assert_int_equal(tb_mailbox_take(&mb, 0, &u, &got), 5);   /* the 5 oldest dropped */
    assert_int_equal(got.count, TB_MAILBOX_MAX_EVENTS);
    assert_string_equal(got.items[0].name, "t5");
    tb_update_unref(u);
    tb_event_list_clear(&got);
    tb_mailbox_release(&mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_wins_and_events_keep_order),
        cmocka_unit_test(test_update_outlives_mailbox),
        cmocka_unit_test(test_pending_events_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
