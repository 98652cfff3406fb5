/*
 * test_auth.c - unit tests for src/core/auth.c (include/tb/auth.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb/auth.h"

static char key1[] = "s3cret-key-one";
static char key2[] = "k2";
static char *key_items[] = {key1, key2};
static const struct tb_strlist keys = {.count = 2, .items = key_items};
static const struct tb_strlist no_keys = {.count = 0, .items = NULL};

static bool check(const char *presented)
{
    return tb_auth_check(&keys, presented, strlen(presented));
}

static void test_disabled(void **state)
{
    (void)state;
    assert_true(tb_auth_disabled(&no_keys));
    assert_true(tb_auth_disabled(NULL));
    assert_false(tb_auth_disabled(&keys));
}

static void test_check(void **state)
{
    (void)state;
    assert_true(check("s3cret-key-one"));
    assert_true(check("k2"));
    assert_false(check("s3cret-key-onE"));     /* wrong content */
    assert_false(check("s3cret-key-on"));      /* prefix of a key */
    assert_false(check("s3cret-key-one!"));    /* key + extra char */
    assert_false(check("k"));
    assert_false(check("k22"));
    assert_false(check(""));
    assert_false(check("Bearer k2"));
    assert_false(tb_auth_check(&keys, NULL, 0));
    assert_false(tb_auth_check(&no_keys, "k2", 2));
    /* length is what counts, not a NUL: "k2x" with len 2 is "k2" */
    assert_true(tb_auth_check(&keys, "k2x", 2));
    /* an embedded NUL never matches */
    assert_false(tb_auth_check(&keys, "k2\0", 3));
    /* an empty configured key never authorizes an empty presentation */
    char empty[] = "";
    char *items[] = {empty};
    const struct tb_strlist ek = {.count = 1, .items = items};
    assert_false(tb_auth_check(&ek, "", 0));
}

static bool from_auth(const char *header, const char *expect)
{
    const char *key = NULL;
    size_t len = 12345;
    bool ok = tb_auth_from_authorization(header, &key, &len);
    if (!expect)
        return !ok;
    if (!ok)
        return false;
    assert_int_equal(len, strlen(expect));
    assert_memory_equal(key, expect, len);
    /* no copy: the key points inside the header */
    assert_true(key >= header && key + len <= header + strlen(header));
    return true;
}

static void test_authorization(void **state)
{
    (void)state;
    assert_true(from_auth("Bearer abc", "abc"));
    assert_true(from_auth("bearer abc", "abc"));
    assert_true(from_auth("BEARER abc", "abc"));
    assert_true(from_auth("  Bearer   abc  ", "abc"));
    assert_true(from_auth("\tBearer\tabc\t", "abc"));
    assert_true(from_auth("abc", "abc"));            /* prefix optional */
    assert_true(from_auth("  abc ", "abc"));
    assert_true(from_auth("Bearer a b", "a b"));
    assert_true(from_auth("Bearer-ish", "Bearer-ish")); /* no space: a key */
    assert_true(from_auth("Bearer k2", "k2"));
    assert_true(from_auth("Basic", "Basic")); /* no space: a key (which won't match) */
    assert_true(from_auth("Basic dXNlcjpwYXNz", NULL));
    assert_true(from_auth("basic dXNlcjpwYXNz", NULL));
    assert_true(from_auth("Digest abc", NULL));
    assert_true(from_auth("", NULL));
    assert_true(from_auth("   ", NULL));
    assert_true(from_auth("Bearer", NULL));
    assert_true(from_auth("bearer   ", NULL));
    const char *key;
    size_t len;
    assert_false(tb_auth_from_authorization(NULL, &key, &len));
}

static bool from_proto(const char *header, const char *expect)
{
    const char *key = NULL;
    size_t len = 12345;
    bool ok = tb_auth_from_protocols(header, &key, &len);
    if (!expect)
        return !ok;
    if (!ok)
        return false;
    assert_int_equal(len, strlen(expect));
    assert_memory_equal(key, expect, len);
    return true;
}

static void test_protocols(void **state)
{
    (void)state;
    assert_true(from_proto("bearer.abc, takhin-monitoring", "abc"));
    assert_true(from_proto("takhin-monitoring, bearer.abc", "abc"));
    assert_true(from_proto("takhin-monitoring,bearer.abc", "abc"));
    assert_true(from_proto("  bearer.abc  ,x", "abc"));
    assert_true(from_proto("bearer.abc", "abc"));
    assert_true(from_proto("bearer.a.b-c_d", "a.b-c_d"));
    assert_true(from_proto("bearer.first, bearer.second", "first"));
    assert_true(from_proto("bearer., bearer.second", "second"));
    assert_true(from_proto("takhin-monitoring", NULL));
    assert_true(from_proto("Bearer.abc", NULL));
    assert_true(from_proto("bearerabc", NULL));
    assert_true(from_proto("bearer.", NULL));
    assert_true(from_proto("", NULL));
    assert_true(from_proto(",,", NULL));
    const char *key;
    size_t len;
    assert_false(tb_auth_from_protocols(NULL, &key, &len));
}

static void test_percent_decode(void **state)
{
    (void)state;
    char a[] = "abc%2Fdef%2b+x";
    assert_int_equal(tb_auth_percent_decode(a), 10);
    assert_string_equal(a, "abc/def+ x");
    char b[] = "plain";
    assert_int_equal(tb_auth_percent_decode(b), 5);
    assert_string_equal(b, "plain");
    char c[] = "";
    assert_int_equal(tb_auth_percent_decode(c), 0);
    char d[] = "%41%62%7e";
    assert_int_equal(tb_auth_percent_decode(d), 3);
    assert_string_equal(d, "Ab~");
    char e[] = "x%00y";
    assert_int_equal(tb_auth_percent_decode(e), 3);
    assert_memory_equal(e, "x\0y", 3);
    char f1[] = "abc%";
    assert_int_equal(tb_auth_percent_decode(f1), -1);
    char f2[] = "abc%4";
    assert_int_equal(tb_auth_percent_decode(f2), -1);
    char f3[] = "%zz";
    assert_int_equal(tb_auth_percent_decode(f3), -1);
    char f4[] = "%4g";
    assert_int_equal(tb_auth_percent_decode(f4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_protocols),
        cmocka_unit_test(test_percent_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
