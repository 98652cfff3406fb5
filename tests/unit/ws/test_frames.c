/*
 * test_frames.c - unit tests for src/ws/frames.c: shared frames, bounded per-client
 * queues and the subscription-key -> frame cache (include/tb/ws_internal.h).
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

#include "tb/ws_internal.h"

/* A frame whose payload is @text, built by hand with the encoder's buffer layout. */
static struct tb_ws_frame *make_frame(enum tb_ws_kind kind, const char *text)
{
    size_t n = strlen(text);
    struct tb_buf b;
    b.mem = malloc(TB_ENCODE_HEADROOM + n + 1);
    assert_non_null(b.mem);
    memcpy(b.mem + TB_ENCODE_HEADROOM, text, n + 1);
    b.len = n;
    struct tb_ws_frame *f = tb_ws_frame_new(kind, &b);
    assert_non_null(f);
    assert_null(b.mem); /* ownership moved */
    assert_int_equal(b.len, 0);
    return f;
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(tb_ws_kind_name(TB_WS_KIND_METRICS), "metrics");
    assert_string_equal(tb_ws_kind_name(TB_WS_KIND_TOPIC_CREATED), "topic_created");
    assert_string_equal(tb_ws_kind_name(TB_WS_KIND_TOPIC_DELETED), "topic_deleted");
    assert_string_equal(tb_ws_kind_name(TB_WS_KIND_GROUP_UPDATED), "group_updated");
    assert_string_equal(tb_ws_kind_name(TB_WS_KIND_PONG), "pong");
    assert_string_equal(tb_ws_kind_name(TB_WS_KIND_SUBSCRIBED), "subscribed");
    assert_string_equal(tb_ws_kind_name(TB_WS_KIND_UNSUBSCRIBED), "unsubscribed");
    assert_string_equal(tb_ws_kind_name(TB_WS_KIND_ERROR), "error");
    assert_int_equal(tb_ws_kind_of_event(TB_EVENT_TOPIC_CREATED), TB_WS_KIND_TOPIC_CREATED);
    assert_int_equal(tb_ws_kind_of_event(TB_EVENT_TOPIC_DELETED), TB_WS_KIND_TOPIC_DELETED);
    assert_int_equal(tb_ws_kind_of_event(TB_EVENT_GROUP_UPDATED), TB_WS_KIND_GROUP_UPDATED);
}

static void test_frame_refcount(void **state)
{
    (void)state;
    struct tb_ws_frame *f = make_frame(TB_WS_KIND_PONG, "{\"type\":\"pong\"}");
    assert_int_equal(f->refs, 1);
    assert_int_equal(f->kind, TB_WS_KIND_PONG);
    assert_int_equal(f->buf.len, 15);
    assert_memory_equal(tb_buf_payload(&f->buf), "{\"type\":\"pong\"}", 15);
    assert_ptr_equal(tb_ws_frame_ref(f), f);
    assert_int_equal(f->refs, 2);
    tb_ws_frame_unref(f);
    assert_int_equal(f->refs, 1);
    tb_ws_frame_unref(f); /* freed: ASan/valgrind would flag a leak otherwise */
    tb_ws_frame_unref(NULL);
    assert_null(tb_ws_frame_ref(NULL));
}

static void test_queue_fifo_and_wrap(void **state)
{
    (void)state;
    struct tb_ws_fqueue q;
    tb_ws_fqueue_init(&q, 5);
    struct tb_ws_frame *f[8];
    char text[8];
    for (int i = 0; i < 8; i++) {
        snprintf(text, sizeof(text), "m%d", i);
        f[i] = make_frame(TB_WS_KIND_TOPIC_CREATED, text);
    }
    assert_null(tb_ws_fqueue_pop(&q));
    /* push 3, pop 2, push 4 more: the ring wraps and grows while keeping order */
    for (int i = 0; i < 3; i++)
        assert_int_equal(tb_ws_fqueue_push(&q, f[i]), 0);
    assert_int_equal(f[0]->refs, 2);
    struct tb_ws_frame *p = tb_ws_fqueue_pop(&q);
    assert_ptr_equal(p, f[0]);
    tb_ws_frame_unref(p);
    p = tb_ws_fqueue_pop(&q);
    assert_ptr_equal(p, f[1]);
    tb_ws_frame_unref(p);
    for (int i = 3; i < 7; i++)
        assert_int_equal(tb_ws_fqueue_push(&q, f[i]), 0);
    assert_int_equal(q.count, 5);
    /* full at max = 5: refused, nothing changes, no reference taken */
    assert_int_equal(tb_ws_fqueue_push(&q, f[7]), -ENOSPC);
    assert_int_equal(q.count, 5);
    assert_int_equal(f[7]->refs, 1);
    const int order[] = {2, 3, 4, 5, 6};
    for (int i = 0; i < 5; i++) {
        p = tb_ws_fqueue_pop(&q);
        assert_ptr_equal(p, f[order[i]]);
        assert_int_equal(p->refs, 2);
        tb_ws_frame_unref(p);
    }
    assert_null(tb_ws_fqueue_pop(&q));
    assert_int_equal(q.count, 0);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(f[i]->refs, 1);
        tb_ws_frame_unref(f[i]);
    }
    tb_ws_fqueue_release(&q);
}

static void test_queue_clear_drops_references(void **state)
{
    (void)state;
    struct tb_ws_fqueue q;
    tb_ws_fqueue_init(&q, 100);
    struct tb_ws_frame *f = make_frame(TB_WS_KIND_GROUP_UPDATED, "x");
    for (int i = 0; i < 10; i++)
        assert_int_equal(tb_ws_fqueue_push(&q, f), 0);
    assert_int_equal(f->refs, 11);
    tb_ws_fqueue_clear(&q);
    assert_int_equal(f->refs, 1);
    assert_int_equal(q.count, 0);
    /* still usable after clear */
    assert_int_equal(tb_ws_fqueue_push(&q, f), 0);
    tb_ws_fqueue_release(&q);
    assert_int_equal(f->refs, 1);
    assert_null(q.items);
    tb_ws_frame_unref(f);
}

static void test_queue_max_one(void **state)
{
    (void)state;
    struct tb_ws_fqueue q;
    tb_ws_fqueue_init(&q, 1);
    struct tb_ws_frame *f = make_frame(TB_WS_KIND_PONG, "p");
    assert_int_equal(tb_ws_fqueue_push(&q, f), 0);
    assert_int_equal(tb_ws_fqueue_push(&q, f), -ENOSPC);
    assert_int_equal(q.cap, 1); /* never grows beyond max */
    tb_ws_fqueue_release(&q);
    tb_ws_frame_unref(f);
}

static void test_cache_get_put_replace(void **state)
{
    (void)state;
    struct tb_ws_fcache c;
    tb_ws_fcache_init(&c);
    assert_null(tb_ws_fcache_get(&c, ""));
    struct tb_ws_frame *all = make_frame(TB_WS_KIND_METRICS, "all");
    struct tb_ws_frame *orders = make_frame(TB_WS_KIND_METRICS, "orders");
    assert_int_equal(tb_ws_fcache_put(&c, "", all), 0);
    assert_int_equal(tb_ws_fcache_put(&c, "topic:orders-*", orders), 0);
    assert_int_equal(all->refs, 2);
    assert_ptr_equal(tb_ws_fcache_get(&c, ""), all);
    assert_ptr_equal(tb_ws_fcache_get(&c, "topic:orders-*"), orders);
    assert_null(tb_ws_fcache_get(&c, "topic:orders"));
    assert_int_equal(c.count, 2);
    /* replacing a key swaps the reference */
    assert_int_equal(tb_ws_fcache_put(&c, "", orders), 0);
    assert_int_equal(all->refs, 1);
    assert_int_equal(orders->refs, 3);
    assert_int_equal(c.count, 2);
    tb_ws_fcache_clear(&c);
    assert_int_equal(c.count, 0);
    assert_int_equal(orders->refs, 1);
    assert_null(tb_ws_fcache_get(&c, ""));
    tb_ws_fcache_release(&c);
    tb_ws_frame_unref(all);
    tb_ws_frame_unref(orders);
}

static void test_cache_many_keys(void **state)
{
    (void)state;
    struct tb_ws_fcache c;
    tb_ws_fcache_init(&c);
    enum { N = 1000 };
    static struct tb_ws_frame *f[N];
    char key[32];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "topic:t%d", i);
        f[i] = make_frame(TB_WS_KIND_METRICS, key);
        assert_int_equal(tb_ws_fcache_put(&c, key, f[i]), 0);
    }
    assert_int_equal(c.count, N);
    assert_true(c.cap >= 2 * N); /* load factor <= 1/2 */
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "topic:t%d", i);
        assert_ptr_equal(tb_ws_fcache_get(&c, key), f[i]);
        assert_int_equal(f[i]->refs, 2);
    }
    tb_ws_fcache_release(&c);
    for (int i = 0; i < N; i++) {
        assert_int_equal(f[i]->refs, 1);
        tb_ws_frame_unref(f[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_frame_refcount),
        cmocka_unit_test(test_queue_fifo_and_wrap),
        cmocka_unit_test(test_queue_clear_drops_references),
        cmocka_unit_test(test_queue_max_one),
        cmocka_unit_test(test_cache_get_put_replace),
        cmocka_unit_test(test_cache_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
