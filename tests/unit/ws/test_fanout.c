/*
 * test_fanout.c - unit tests for src/ws/fanout.c: WebSocket frame headers and batches
 * (RFC 6455 section 5.2, server -> client: unmasked) and the keep-alive decision.
 * Expected bytes are written out by hand from the RFC's frame layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tb/ws_internal.h"

static void test_header_7bit(void **state)
{
    (void)state;
    unsigned char h[TB_WS_FRAME_HEADER_MAX];
    assert_int_equal(tb_ws_frame_header(h, 0), 2);
    assert_int_equal(h[0], 0x81); /* FIN + text */
    assert_int_equal(h[1], 0x00);
    assert_int_equal(tb_ws_frame_header(h, 125), 2);
    assert_int_equal(h[1], 125);
}

static void test_header_16bit(void **state)
{
    (void)state;
    unsigned char h[TB_WS_FRAME_HEADER_MAX];
    assert_int_equal(tb_ws_frame_header(h, 126), 4);
    const unsigned char want126[] = {0x81, 126, 0x00, 0x7e};
    assert_memory_equal(h, want126, 4);
    assert_int_equal(tb_ws_frame_header(h, 18121), 4); /* 18121 = 0x46c9 */
    const unsigned char want[] = {0x81, 126, 0x46, 0xc9};
    assert_memory_equal(h, want, 4);
    assert_int_equal(tb_ws_frame_header(h, 65535), 4);
    const unsigned char wantmax[] = {0x81, 126, 0xff, 0xff};
    assert_memory_equal(h, wantmax, 4);
}

static void test_header_64bit(void **state)
{
    (void)state;
    unsigned char h[TB_WS_FRAME_HEADER_MAX];
    assert_int_equal(tb_ws_frame_header(h, 65536), 10);
    const unsigned char want[] = {0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00};
    assert_memory_equal(h, want, 10);
    assert_int_equal(tb_ws_frame_header(h, 0x12345678u), 10);
    const unsigned char want2[] = {0x81, 127, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78};
    assert_memory_equal(h, want2, 10);
}

static void test_batch_two_frames(void **state)
{
    (void)state;
    unsigned char out[64];
    memset(out, 0xee, sizeof(out));
    size_t used = 0;
    assert_true(tb_ws_batch_append(out, sizeof(out), &used, "{\"a\":1}", 7));
    assert_int_equal(used, 9);
    assert_true(tb_ws_batch_append(out, sizeof(out), &used, "[]", 2));
    assert_int_equal(used, 13);
    const unsigned char want[] = {0x81, 7, '{', '"', 'a', '"', ':', '1', '}', 0x81, 2, '[', ']'};
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(out[13], 0xee); /* nothing written past the end */
}

static void test_batch_does_not_fit(void **state)
{
    (void)state;
    unsigned char out[12];
    memset(out, 0xee, sizeof(out));
    size_t used = 0;
    assert_true(tb_ws_batch_append(out, sizeof(out), &used, "12345", 5)); /* 7 bytes */
    /* 5 bytes left: a 4-byte payload needs 6 */
    assert_false(tb_ws_batch_append(out, sizeof(out), &used, "abcd", 4));
    assert_int_equal(used, 7);
    assert_int_equal(out[7], 0xee);
    /* exactly fits: 2 + 3 = 5 */
    assert_true(tb_ws_batch_append(out, sizeof(out), &used, "xyz", 3));
    assert_int_equal(used, 12);
    assert_false(tb_ws_batch_append(out, sizeof(out), &used, "", 0)); /* needs 2 */
    assert_int_equal(used, 12);
}

static void test_batch_large_payload(void **state)
{
    (void)state;
    size_t n = 300;
    char *payload = malloc(n);
    assert_non_null(payload);
    memset(payload, 'p', n);
    unsigned char out[400];
    size_t used = 0;
    assert_true(tb_ws_batch_append(out, sizeof(out), &used, payload, n));
    assert_int_equal(used, 304); /* 300 = 0x012c: 16-bit length */
    const unsigned char want[] = {0x81, 126, 0x01, 0x2c};
    assert_memory_equal(out, want, 4);
    assert_memory_equal(out + 4, payload, n);
    free(payload);
}

static void test_keepalive(void **state)
{
    (void)state;
    /* ping after 20 s of silence, drop after 45 s */
    const int64_t ping = 20000, drop = 45000, t0 = 1000000;
    assert_int_equal(tb_ws_keepalive_check(t0, t0, false, ping, drop), TB_WS_KEEPALIVE_NOTHING);
    assert_int_equal(tb_ws_keepalive_check(t0 + 19999, t0, false, ping, drop),
                     TB_WS_KEEPALIVE_NOTHING);
    assert_int_equal(tb_ws_keepalive_check(t0 + 20000, t0, false, ping, drop),
                     TB_WS_KEEPALIVE_PING);
    /* already pinged: wait for the pong */
    assert_int_equal(tb_ws_keepalive_check(t0 + 30000, t0, true, ping, drop),
                     TB_WS_KEEPALIVE_NOTHING);
    assert_int_equal(tb_ws_keepalive_check(t0 + 44999, t0, true, ping, drop),
                     TB_WS_KEEPALIVE_NOTHING);
    assert_int_equal(tb_ws_keepalive_check(t0 + 45000, t0, true, ping, drop),
                     TB_WS_KEEPALIVE_DROP);
    /* never pinged (e.g. its socket never became writable): dropped all the same */
    assert_int_equal(tb_ws_keepalive_check(t0 + 45000, t0, false, ping, drop),
                     TB_WS_KEEPALIVE_DROP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_7bit),
        cmocka_unit_test(test_header_16bit),
        cmocka_unit_test(test_header_64bit),
        cmocka_unit_test(test_batch_two_frames),
        cmocka_unit_test(test_batch_does_not_fit),
        cmocka_unit_test(test_batch_large_payload),
        cmocka_unit_test(test_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
