/*
 * test_http.c - unit tests for src/ws/http.c: which status, headers and body each
 * plain HTTP request gets (the lws I/O around it is covered by the integration tests).
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

#define NOW_MS 1704225600000LL

static struct tb_status empty_status = {.stale_after_ms = 10000};
static struct tb_ws_stats stats;

static struct tb_ws_http_request get(const char *path)
{
    return (struct tb_ws_http_request){
        .is_get = true,
        .path = path,
        .auth = TB_WS_AUTH_OK,
        .empty_status = &empty_status,
        .stats = &stats,
        .now_ms = NOW_MS,
    };
}

static void expect(const struct tb_ws_http_request *req, int status, const char *body,
                   unsigned flags)
{
    struct tb_ws_http_response r;
    assert_int_equal(tb_ws_http_route(req, &r), 0);
    assert_int_equal(r.status, status);
    assert_int_equal(r.flags, flags);
    if (body) {
        assert_non_null(r.body.mem);
        assert_string_equal(r.body.mem, body);
        assert_string_equal(r.content_type, "application/json");
    }
    tb_ws_text_release(&r.body);
}

static void test_healthz_and_unknown(void **state)
{
    (void)state;
    struct tb_ws_http_request req = get("/healthz");
    expect(&req, 200, "{\"status\":\"ok\"}", 0);
    req.auth = TB_WS_AUTH_MISSING; /* never needs a key */
    expect(&req, 200, "{\"status\":\"ok\"}", 0);
    req = get("/nope");
    expect(&req, 404, "{\"error\":\"not found\"}", 0);
    req = get("/healthz/");
    expect(&req, 404, "{\"error\":\"not found\"}", 0);
    req.is_get = false; /* unknown path: 404 whatever the method */
    expect(&req, 404, "{\"error\":\"not found\"}", 0);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    const char *paths[] = {"/healthz", "/readyz", "/metrics", "/api/monitoring/metrics",
                           "/api/monitoring/ws"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct tb_ws_http_request req = get(paths[i]);
        req.is_get = false;
        expect(&req, 405, "{\"error\":\"method not allowed\"}", TB_WS_HTTP_ALLOW_GET);
    }
}

static void test_ws_path_without_upgrade(void **state)
{
    (void)state;
    struct tb_ws_http_request req = get("/api/monitoring/ws");
    expect(&req, 426, "{\"error\":\"upgrade required\"}", 0);
}

static void test_readyz(void **state)
{
    (void)state;
    struct tb_ws_http_request req = get("/readyz");
    expect(&req, 503, "{\"status\":\"not ready\",\"reason\":\"no collector cycle yet\"}", 0);

    /* only failed cycles so far */
    struct tb_update failed = {.seq = 1};
    failed.status.cycles_failed = 1;
    failed.status.stale_after_ms = 10000;
    req.latest = &failed;
    expect(&req, 503, "{\"status\":\"not ready\",\"reason\":\"no complete collector cycle yet\"}",
           0);

    /* fresh data: age 1500 ms */
    struct tb_metrics m;
    memset(&m, 0, sizeof(m));
    struct tb_update fresh = {.seq = 2, .metrics = &m};
    fresh.status.last_ok = true;
    fresh.status.last_success_ms = NOW_MS - 1500;
    fresh.status.stale_after_ms = 10000;
    req.latest = &fresh;
    expect(&req, 200, "{\"status\":\"ready\",\"ageMs\":1500}", 0);

    /* older than stale_after_ms (a later cycle failed; the data kept aging) */
    fresh.status.last_success_ms = NOW_MS - 10001;
    fresh.status.last_ok = false;
    expect(&req, 503, "{\"status\":\"not ready\",\"reason\":\"data is stale\",\"ageMs\":10001}", 0);

    /* exactly at the limit is still fresh */
    fresh.status.last_success_ms = NOW_MS - 10000;
    expect(&req, 200, "{\"status\":\"ready\",\"ageMs\":10000}", 0);

    req.stopping = true;
    expect(&req, 503, "{\"status\":\"not ready\",\"reason\":\"shutting down\",\"ageMs\":10000}", 0);
}

static void test_metrics_api_auth(void **state)
{
    (void)state;
    struct tb_ws_http_request req = get("/api/monitoring/metrics");
    req.auth = TB_WS_AUTH_MISSING;
    expect(&req, 401, "{\"error\":\"missing API key\"}", TB_WS_HTTP_WWW_AUTHENTICATE);
    req.auth = TB_WS_AUTH_INVALID;
    expect(&req, 401, "{\"error\":\"invalid API key\"}", TB_WS_HTTP_WWW_AUTHENTICATE);
}

static void test_metrics_api_body_is_the_data_object(void **state)
{
    (void)state;
    struct tb_ws_http_request req = get("/api/monitoring/metrics");
    struct tb_ws_http_response r;
    assert_int_equal(tb_ws_http_route(&req, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    /* byte-equal to the encoder's own data object for the same inputs (no cycle yet) */
    struct tb_buf want = {0};
    assert_int_equal(tb_encode_metrics_data(NULL, &empty_status, NULL, NOW_MS, &want), 0);
    assert_int_equal(r.body.len, want.len);
    assert_memory_equal(r.body.mem, tb_buf_payload(&want), want.len);
    assert_int_equal(r.body.mem[0], '{');
    assert_null(strstr(r.body.mem, "\"type\"")); /* no envelope */
    tb_buf_release(&want);
    tb_ws_text_release(&r.body);
}

static void test_prometheus_auth_is_optional(void **state)
{
    (void)state;
    struct tb_ws_http_request req = get("/metrics");
    req.auth = TB_WS_AUTH_MISSING;
    struct tb_ws_http_response r;
    assert_int_equal(tb_ws_http_route(&req, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body.mem, "# TYPE takhin_ws_clients gauge\n"));
    tb_ws_text_release(&r.body);

    req.metrics_require_auth = true;
    expect(&req, 401, "{\"error\":\"missing API key\"}", TB_WS_HTTP_WWW_AUTHENTICATE);
    req.auth = TB_WS_AUTH_OK;
    assert_int_equal(tb_ws_http_route(&req, &r), 0);
    assert_int_equal(r.status, 200);
    tb_ws_text_release(&r.body);
}

static void test_json_error_escaping(void **state)
{
    (void)state;
    struct tb_ws_text t = {0};
    tb_ws_json_error(&t, "a \"quoted\" \\ word");
    assert_string_equal(t.mem, "{\"error\":\"a \\\"quoted\\\" \\\\ word\"}");
    tb_ws_text_release(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz_and_unknown),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_ws_path_without_upgrade),
        cmocka_unit_test(test_readyz),
        cmocka_unit_test(test_metrics_api_auth),
        cmocka_unit_test(test_metrics_api_body_is_the_data_object),
        cmocka_unit_test(test_prometheus_auth_is_optional),
        cmocka_unit_test(test_json_error_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
