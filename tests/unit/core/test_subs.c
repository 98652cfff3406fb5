/*
 * test_subs.c - unit tests for src/core/subs.c (include/tb/subs.h).
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

#include "tb/subs.h"

static void add_ok(struct tb_subs *s, const char *item)
{
    const char *why = NULL;
    assert_int_equal(tb_subs_add(s, item, &why), 0);
}

static void test_empty_matches_all(void **state)
{
    (void)state;
    struct tb_subs *s = tb_subs_new();
    assert_non_null(s);
    assert_true(tb_subs_is_empty(s));
    assert_true(tb_subs_is_empty(NULL));
    assert_int_equal(tb_subs_count(s), 0);
    assert_true(tb_subs_match_topic(s, "anything"));
    assert_true(tb_subs_match_group(s, "any-group"));
    assert_true(tb_subs_match_topic(NULL, "anything"));
    assert_true(tb_subs_match_group(NULL, "g"));
    assert_string_equal(tb_subs_key(s), "");
    tb_subs_free(s);
    tb_subs_free(NULL);
}

static void test_kinds_are_separate(void **state)
{
    (void)state;
    struct tb_subs *s = tb_subs_new();
    add_ok(s, "group:g1");
    assert_false(tb_subs_is_empty(s));
    assert_false(tb_subs_match_topic(s, "g1"));
    assert_false(tb_subs_match_topic(s, "orders"));
    assert_true(tb_subs_match_group(s, "g1"));
    assert_false(tb_subs_match_group(s, "g2"));
    add_ok(s, "topic:orders");
    assert_true(tb_subs_match_topic(s, "orders"));
    assert_false(tb_subs_match_topic(s, "orders2"));
    assert_false(tb_subs_match_topic(s, "order"));
    assert_false(tb_subs_match_group(s, "orders"));
    tb_subs_free(s);

    s = tb_subs_new();
    add_ok(s, "topic:*");
    assert_true(tb_subs_match_topic(s, "x"));
    assert_false(tb_subs_match_group(s, "x")); /* topic-only set matches no group */
    tb_subs_free(s);
}

static void test_globs(void **state)
{
    (void)state;
    struct tb_subs *s = tb_subs_new();
    add_ok(s, "topic:orders-*");
    add_ok(s, "topic:eu-?");
    add_ok(s, "topic:log[0-9]");
    add_ok(s, "topic:exact.name");
    add_ok(s, "group:svc-*-prod");
    assert_true(tb_subs_match_topic(s, "orders-"));
    assert_true(tb_subs_match_topic(s, "orders-eu"));
    assert_true(tb_subs_match_topic(s, "orders-a/b")); /* no FNM_PATHNAME */
    assert_false(tb_subs_match_topic(s, "orders"));
    assert_true(tb_subs_match_topic(s, "eu-1"));
    assert_false(tb_subs_match_topic(s, "eu-12"));
    assert_false(tb_subs_match_topic(s, "eu-"));
    assert_true(tb_subs_match_topic(s, "log7"));
    assert_false(tb_subs_match_topic(s, "logx"));
    assert_true(tb_subs_match_topic(s, "exact.name"));
    assert_false(tb_subs_match_topic(s, "exactxname"));
    assert_true(tb_subs_match_group(s, "svc-billing-prod"));
    assert_false(tb_subs_match_group(s, "svc-billing-dev"));
    assert_false(tb_subs_match_group(s, "orders-x"));
    tb_subs_free(s);
}

static void test_validate(void **state)
{
    (void)state;
    const char *why = NULL;
    assert_int_equal(tb_subs_validate("topic:a", &why), 0);
    assert_int_equal(tb_subs_validate("group:a b", &why), 0); /* space is printable */
    assert_int_equal(tb_subs_validate("group:~", &why), 0);

    const char *bad[] = {
        "a", "orders", "Topic:a", "TOPIC:a", "topics:a", "topic", "group", ":a", "",
        "topic:", "group:", "topic:a\tb", "topic:a\nb", "topic:\x7f", "topic:\xc3\xa9",
        "consumer:a",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        assert_int_equal(tb_subs_validate(bad[i], &why), -EINVAL);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
    why = NULL;
    assert_int_equal(tb_subs_validate(NULL, &why), -EINVAL);
    assert_non_null(why);

    /* length: 249 ok, 250 too long */
    char item[6 + 251];
    memcpy(item, "topic:", 6);
    memset(item + 6, 'x', 249);
    item[6 + 249] = '\0';
    assert_int_equal(tb_subs_validate(item, &why), 0);
    item[6 + 249] = 'x';
    item[6 + 250] = '\0';
    why = NULL;
    assert_int_equal(tb_subs_validate(item, &why), -EINVAL);
    assert_non_null(why);

    /* add/remove validate too, and change nothing */
    struct tb_subs *s = tb_subs_new();
    why = NULL;
    assert_int_equal(tb_subs_add(s, "nope", &why), -EINVAL);
    assert_non_null(why);
    why = NULL;
    assert_int_equal(tb_subs_remove(s, "topic:", &why), -EINVAL);
    assert_non_null(why);
    assert_int_equal(tb_subs_count(s), 0);
    tb_subs_free(s);
}

static void test_idempotent_add_remove(void **state)
{
    (void)state;
    struct tb_subs *s = tb_subs_new();
    const char *why = NULL;
    add_ok(s, "topic:a");
    add_ok(s, "topic:a");
    assert_int_equal(tb_subs_count(s), 1);
    assert_int_equal(tb_subs_remove(s, "topic:zz", &why), 0);
    assert_int_equal(tb_subs_count(s), 1);
    assert_int_equal(tb_subs_remove(s, "group:a", &why), 0);
    assert_int_equal(tb_subs_count(s), 1);
    assert_int_equal(tb_subs_remove(s, "topic:a", &why), 0);
    assert_int_equal(tb_subs_count(s), 0);
    assert_true(tb_subs_is_empty(s));
    assert_true(tb_subs_match_topic(s, "whatever")); /* empty again: everything */
    assert_string_equal(tb_subs_key(s), "");
    tb_subs_free(s);
}

static void test_limit(void **state)
{
    (void)state;
    struct tb_subs *s = tb_subs_new();
    char item[32];
    for (int i = 0; i < TB_SUBS_MAX; i++) {
        snprintf(item, sizeof(item), "topic:t%d", i);
        add_ok(s, item);
    }
    assert_int_equal(tb_subs_count(s), 256);
    const char *why = NULL;
    assert_int_equal(tb_subs_add(s, "topic:one-more", &why), -ENOSPC);
    assert_non_null(why);
    assert_int_equal(tb_subs_count(s), 256);
    assert_false(tb_subs_match_topic(s, "one-more"));
    /* re-adding a present item at the limit is still fine */
    add_ok(s, "topic:t7");
    /* removing makes room */
    assert_int_equal(tb_subs_remove(s, "topic:t0", &why), 0);
    add_ok(s, "topic:one-more");
    assert_true(tb_subs_match_topic(s, "one-more"));
    assert_false(tb_subs_match_topic(s, "t0"));
    assert_true(tb_subs_match_topic(s, "t255"));
    tb_subs_free(s);
}

static void test_key_canonical(void **state)
{
    (void)state;
    struct tb_subs *a = tb_subs_new();
    struct tb_subs *b = tb_subs_new();
    add_ok(a, "topic:b");
    add_ok(a, "group:g");
    add_ok(a, "topic:a*");
    add_ok(b, "topic:a*");
    add_ok(b, "topic:b");
    add_ok(b, "group:g");
    add_ok(b, "topic:b");
    assert_string_equal(tb_subs_key(a), "group:g\ntopic:a*\ntopic:b");
    assert_string_equal(tb_subs_key(a), tb_subs_key(b));
    /* cache invalidated by a change */
    add_ok(b, "topic:c");
    assert_string_equal(tb_subs_key(b), "group:g\ntopic:a*\ntopic:b\ntopic:c");
    const char *why = NULL;
    assert_int_equal(tb_subs_remove(b, "topic:a*", &why), 0);
    assert_string_equal(tb_subs_key(b), "group:g\ntopic:b\ntopic:c");
    /* no-op modifications keep it equal */
    add_ok(b, "topic:c");
    assert_string_equal(tb_subs_key(b), "group:g\ntopic:b\ntopic:c");
    tb_subs_free(a);
    tb_subs_free(b);
}

static void test_clone(void **state)
{
    (void)state;
    struct tb_subs *a = tb_subs_new();
    add_ok(a, "topic:x*");
    add_ok(a, "group:g");
    struct tb_subs *c = tb_subs_clone(a);
    assert_non_null(c);
    assert_int_equal(tb_subs_count(c), 2);
    assert_string_equal(tb_subs_key(c), tb_subs_key(a));
    add_ok(a, "topic:y");
    assert_int_equal(tb_subs_count(c), 2);
    assert_true(tb_subs_match_topic(c, "x1"));
    assert_false(tb_subs_match_topic(c, "y"));
    assert_string_equal(tb_subs_key(c), "group:g\ntopic:x*");
    struct tb_subs *e = tb_subs_clone(NULL);
    assert_non_null(e);
    assert_true(tb_subs_is_empty(e));
    assert_string_equal(tb_subs_key(e), "");
    /* a clone of a clone, then modified: independent of its source */
    struct tb_subs *cc = tb_subs_clone(c);
    const char *why = NULL;
    assert_int_equal(tb_subs_remove(cc, "group:g", &why), 0);
    assert_string_equal(tb_subs_key(cc), "topic:x*");
    assert_false(tb_subs_match_group(cc, "g")); /* topic-only set now */
    assert_true(tb_subs_match_group(c, "g"));
    tb_subs_free(cc);
    tb_subs_free(e);
    tb_subs_free(c);
    tb_subs_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_matches_all),
        cmocka_unit_test(test_kinds_are_separate),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_idempotent_add_remove),
        cmocka_unit_test(test_limit),
        cmocka_unit_test(test_key_canonical),
        cmocka_unit_test(test_clone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
