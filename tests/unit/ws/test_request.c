/*
 * test_request.c - unit tests for src/ws/request.c: the client message parser (which
 * mistakes close the connection, with which code and reason) and the token bucket.
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

/* Parse a NUL-terminated literal; the caller releases @r. */
static int parse(const char *msg, struct tb_ws_request *r)
{
    return tb_ws_parse_request(msg, strlen(msg), r);
}

static void expect_close(const char *msg, size_t len, const char *reason)
{
    struct tb_ws_request r;
    int rc = tb_ws_parse_request(msg, len, &r);
    if (rc != -EINVAL)
        fail_msg("'%s': expected -EINVAL, got %d", msg, rc);
    assert_int_equal(r.close_code, 1008);
    if (strcmp(r.reason, reason) != 0)
        fail_msg("'%s': reason '%s', expected '%s'", msg, r.reason, reason);
    assert_null(r.item);
    tb_ws_request_release(&r);
}

static void expect_close_str(const char *msg, const char *reason)
{
    expect_close(msg, strlen(msg), reason);
}

static void test_ping_timestamps(void **state)
{
    (void)state;
    const char *ok[] = {
        "{\"type\":\"ping\"}",
        "{\"type\":\"ping\",\"timestamp\":1704225600}",
        "{\"type\":\"ping\",\"timestamp\":1704225600.123}",
        "{\"type\":\"ping\",\"timestamp\":1.7e9}",
        "{\"type\":\"ping\",\"timestamp\":\"not a number\"}", /* ignored, not an error */
        "{\"type\":\"ping\",\"timestamp\":null,\"extra\":[1,2]}",
        "  \n{ \"type\" : \"ping\" }\r\n\t ",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct tb_ws_request r;
        if (parse(ok[i], &r) != 0)
            fail_msg("'%s' rejected: %s", ok[i], r.reason);
        assert_int_equal(r.type, TB_WS_REQ_PING);
        assert_int_equal(r.close_code, 0);
        tb_ws_request_release(&r);
    }
}

static void test_subscribe_items(void **state)
{
    (void)state;
    struct tb_ws_request r;
    assert_int_equal(parse("{\"type\":\"subscribe\",\"data\":\"topic:orders-*\","
                           "\"timestamp\":1704225600}", &r), 0);
    assert_int_equal(r.type, TB_WS_REQ_SUBSCRIBE);
    assert_string_equal(r.item, "topic:orders-*");
    assert_null(r.item_error);
    tb_ws_request_release(&r);
    assert_null(r.item);

    assert_int_equal(parse("{\"data\":\"group:g\\u00e9\",\"type\":\"unsubscribe\"}", &r), 0);
    assert_int_equal(r.type, TB_WS_REQ_UNSUBSCRIBE);
    assert_string_equal(r.item, "group:g\xc3\xa9"); /* JSON escape decoded to UTF-8 */
    tb_ws_request_release(&r);

    /* The item's validity is the subscription module's business: passed through. */
    assert_int_equal(parse("{\"type\":\"subscribe\",\"data\":\"bogus\"}", &r), 0);
    assert_string_equal(r.item, "bogus");
    tb_ws_request_release(&r);
}

static void test_subscribe_bad_data_is_not_a_close(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"type\":\"subscribe\"}",
        "{\"type\":\"subscribe\",\"data\":null}",
        "{\"type\":\"subscribe\",\"data\":42}",
        "{\"type\":\"unsubscribe\",\"data\":[\"topic:a\"]}",
        "{\"type\":\"subscribe\",\"data\":{\"topic\":\"a\"}}",
        "{\"type\":\"subscribe\",\"data\":\"topic:a\\u0000b\"}", /* NUL inside */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tb_ws_request r;
        if (parse(bad[i], &r) != 0)
            fail_msg("'%s' closed: %s", bad[i], r.reason);
        assert_null(r.item);
        assert_non_null(r.item_error);
        assert_int_equal(r.close_code, 0);
        tb_ws_request_release(&r);
    }
}

static void test_invalid_json(void **state)
{
    (void)state;
    expect_close_str("", "invalid JSON");
    expect_close_str("   ", "invalid JSON");
    expect_close_str("{", "invalid JSON");
    expect_close_str("{\"type\":\"ping\"", "invalid JSON");
    expect_close_str("{\"type\":\"ping\"} x", "invalid JSON");
    expect_close_str("{\"type\":\"ping\"}{\"type\":\"ping\"}", "invalid JSON");
    expect_close_str("{'type':'ping'}", "invalid JSON");
    expect_close_str("{type:\"ping\"}", "invalid JSON");
    expect_close_str("NaN", "invalid JSON");
    expect_close_str("hello", "invalid JSON");
    /* an embedded NUL after a valid document is trailing garbage */
    const char nul[] = "{\"type\":\"ping\"}\0{}";
    expect_close(nul, sizeof(nul) - 1, "invalid JSON");
}

static void test_not_an_object(void **state)
{
    (void)state;
    expect_close_str("[]", "expected a JSON object");
    expect_close_str("[{\"type\":\"ping\"}]", "expected a JSON object");
    expect_close_str("\"ping\"", "expected a JSON object");
    expect_close_str("123", "expected a JSON object");
    expect_close_str("1.5", "expected a JSON object");
    expect_close_str("null", "expected a JSON object");
    expect_close_str("true", "expected a JSON object");
}

static void test_type_problems(void **state)
{
    (void)state;
    expect_close_str("{}", "missing type");
    expect_close_str("{\"data\":\"topic:a\"}", "missing type");
    expect_close_str("{\"type\":null}", "missing type");
    expect_close_str("{\"Type\":\"ping\"}", "missing type");
    expect_close_str("{\"type\":1}", "type must be a string");
    expect_close_str("{\"type\":[\"ping\"]}", "type must be a string");
    expect_close_str("{\"type\":{}}", "type must be a string");
    expect_close_str("{\"type\":\"hello\"}", "unknown type: hello");
    expect_close_str("{\"type\":\"Ping\"}", "unknown type: Ping");
    expect_close_str("{\"type\":\"pong\"}", "unknown type: pong");
    expect_close_str("{\"type\":\"\"}", "unknown type: ");
    /* control and non-ASCII bytes are replaced, one '?' per byte */
    expect_close_str("{\"type\":\"a\\nb\\u00e9\"}", "unknown type: a?b??");
}

static void test_unknown_type_truncated(void **state)
{
    (void)state;
    char msg[256], want[128];
    char name[101];
    memset(name, 'x', 100);
    name[100] = '\0';
    snprintf(msg, sizeof(msg), "{\"type\":\"%s\"}", name);
    /* 64 bytes of the name, then "..." */
    snprintf(want, sizeof(want), "unknown type: %.64s...", name);
    expect_close_str(msg, want);
    assert_true(strlen(want) <= TB_WS_REASON_MAX);

    /* exactly 64: no ellipsis */
    name[64] = '\0';
    snprintf(msg, sizeof(msg), "{\"type\":\"%s\"}", name);
    snprintf(want, sizeof(want), "unknown type: %s", name);
    expect_close_str(msg, want);
}

static void test_bucket(void **state)
{
    (void)state;
    struct tb_ws_bucket b;
    tb_ws_bucket_init(&b, 20, 40, 1000);
    for (int i = 0; i < 40; i++)
        assert_true(tb_ws_bucket_take(&b, 1000)); /* full burst at once */
    assert_false(tb_ws_bucket_take(&b, 1000));
    /* 20/s = one token per 50 ms */
    assert_false(tb_ws_bucket_take(&b, 1049));
    assert_true(tb_ws_bucket_take(&b, 1050));
    assert_false(tb_ws_bucket_take(&b, 1050));
    /* a long pause refills only up to the burst */
    for (int i = 0; i < 40; i++)
        assert_true(tb_ws_bucket_take(&b, 100000));
    assert_false(tb_ws_bucket_take(&b, 100000));
    /* time going backwards never adds tokens */
    assert_false(tb_ws_bucket_take(&b, 50000));
}

static void test_bucket_one_per_second(void **state)
{
    (void)state;
    struct tb_ws_bucket b;
    tb_ws_bucket_init(&b, 1, 1, 0);
    assert_true(tb_ws_bucket_take(&b, 0));
    assert_false(tb_ws_bucket_take(&b, 999)); /* 0.999 tokens */
    assert_true(tb_ws_bucket_take(&b, 1000));  /* 1.0 */
    assert_false(tb_ws_bucket_take(&b, 1500));
}

static void utf8_ok(const char *s) { assert_true(tb_ws_utf8_valid(s, strlen(s))); }
static void utf8_bad(const char *s) { assert_false(tb_ws_utf8_valid(s, strlen(s))); }

static void test_utf8(void **state)
{
    (void)state;
    utf8_ok("");
    utf8_ok("plain ASCII {\"type\":\"ping\"}");
    utf8_ok("\xc3\xa9");             /* U+00E9 */
    utf8_ok("\xe2\x82\xac");         /* U+20AC */
    utf8_ok("\xed\x9f\xbf");         /* U+D7FF, last before the surrogates */
    utf8_ok("\xee\x80\x80");         /* U+E000, first after them */
    utf8_ok("\xf0\x9f\x98\x80");     /* U+1F600 */
    utf8_ok("\xf4\x8f\xbf\xbf");     /* U+10FFFF, the last code point */
    utf8_bad("\xff");
    utf8_bad("\xfe\xff");
    utf8_bad("\x80");                 /* lone continuation byte */
    utf8_bad("\xc3");                 /* truncated */
    utf8_bad("\xe2\x82");             /* truncated */
    utf8_bad("\xc0\xaf");             /* overlong '/' */
    utf8_bad("\xc1\xbf");             /* overlong */
    utf8_bad("\xe0\x80\xaf");         /* overlong */
    utf8_bad("\xf0\x80\x80\xaf");     /* overlong */
    utf8_bad("\xed\xa0\x80");         /* U+D800 surrogate */
    utf8_bad("\xed\xbf\xbf");         /* U+DFFF surrogate */
    utf8_bad("\xf4\x90\x80\x80");     /* U+110000 */
    utf8_bad("\xf5\x80\x80\x80");
    utf8_bad("\xc3\x28");             /* bad continuation */
    utf8_bad("\xe2\x28\xa1");
    utf8_bad("ok so far \xe2\x82\xac then \xa9");
    /* an embedded NUL is valid UTF-8 (the JSON parser rejects it later) */
    assert_true(tb_ws_utf8_valid("a\0b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping_timestamps),
        cmocka_unit_test(test_subscribe_items),
        cmocka_unit_test(test_subscribe_bad_data_is_not_a_close),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_type_problems),
        cmocka_unit_test(test_unknown_type_truncated),
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_bucket_one_per_second),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
