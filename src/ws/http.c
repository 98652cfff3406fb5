/*
 * http.c - the plain HTTP routes served next to the WebSocket endpoint, as a PURE
 * decision function (libc + json-c): request facts in, status + headers + body out.
 * server.c reads the request from lws, checks the key, calls tb_ws_http_route() and
 * writes the result. See docs/protocol.md ("HTTP endpoints").
 *
 *   GET /healthz                  200 {"status":"ok"}                      no auth
 *   GET /readyz                   200 {"status":"ready","ageMs":N} or
 *                                 503 {"status":"not ready","reason":...}  no auth
 *   GET /api/monitoring/metrics   200 the metrics "data" object (all topics/groups)
 *                                 401 without a valid key (when keys are configured)
 *   GET /metrics                  200 Prometheus text 0.0.4; 401 only when
 *                                 server.metrics_require_auth is set
 *   /api/monitoring/ws (no Upgrade)  426 {"error":"upgrade required"}
 *   other methods on these paths  405 with "Allow: GET"
 *   anything else                 404 {"error":"not found"}
 */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "tb/ws_internal.h"

#define JSON_TYPE "application/json"
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void set_json(struct tb_ws_http_response *r, int status, json_object *obj)
{
    r->status = status;
    r->content_type = JSON_TYPE;
    if (!obj) {
        r->body.oom = true;
        return;
    }
    size_t len = 0;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (s)
        tb_ws_text_append(&r->body, s, len);
    else
        r->body.oom = true;
    json_object_put(obj);
}

void tb_ws_json_error(struct tb_ws_text *out, const char *message)
{
    json_object *o = json_object_new_object();
    if (!o) {
        out->oom = true;
        return;
    }
    json_object_object_add(o, "error", json_object_new_string(message));
    size_t len = 0;
    const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (s)
        tb_ws_text_append(out, s, len);
    else
        out->oom = true;
    json_object_put(o);
}

static void set_error(struct tb_ws_http_response *r, int status, const char *message)
{
    r->status = status;
    r->content_type = JSON_TYPE;
    tb_ws_json_error(&r->body, message);
}

static bool auth_failed(const struct tb_ws_http_request *req, struct tb_ws_http_response *r)
{
    if (req->auth == TB_WS_AUTH_OK)
        return false;
    set_error(r, 401, req->auth == TB_WS_AUTH_MISSING ? "missing API key" : "invalid API key");
    r->flags |= TB_WS_HTTP_WWW_AUTHENTICATE;
    return true;
}

static void route_readyz(const struct tb_ws_http_request *req, struct tb_ws_http_response *r)
{
    const char *reason = NULL;
    const struct tb_status *st = req->latest ? &req->latest->status : NULL;
    int64_t age = st ? tb_status_age_ms(st, req->now_ms) : -1;
    if (req->stopping)
        reason = "shutting down";
    else if (!st)
        reason = "no collector cycle yet";
    else if (age < 0 || !req->latest->metrics)
        reason = "no complete collector cycle yet";
    else if (tb_status_is_stale(st, req->now_ms))
        reason = "data is stale";

    json_object *o = json_object_new_object();
    if (o && reason) {
        json_object_object_add(o, "status", json_object_new_string("not ready"));
        json_object_object_add(o, "reason", json_object_new_string(reason));
        if (age >= 0)
            json_object_object_add(o, "ageMs", json_object_new_int64(age));
    } else if (o) {
        json_object_object_add(o, "status", json_object_new_string("ready"));
        json_object_object_add(o, "ageMs", json_object_new_int64(age));
    }
    set_json(r, reason ? 503 : 200, o);
}

static void route_metrics_api(const struct tb_ws_http_request *req, struct tb_ws_http_response *r)
{
    const struct tb_metrics *m = req->latest ? req->latest->metrics : NULL;
    const struct tb_status *st = req->latest ? &req->latest->status : req->empty_status;
    struct tb_buf buf = {0};
    r->status = 200;
    r->content_type = JSON_TYPE;
    if (tb_encode_metrics_data(m, st, NULL, req->now_ms, &buf) != 0) {
        r->body.oom = true;
        return;
    }
    tb_ws_text_append(&r->body, tb_buf_payload(&buf), buf.len);
    tb_buf_release(&buf);
}

int tb_ws_http_route(const struct tb_ws_http_request *req, struct tb_ws_http_response *r)
{
    memset(r, 0, sizeof(*r));
    r->route = tb_ws_route_of(req->path);

    if (r->route == TB_WS_ROUTE_OTHER) {
        set_error(r, 404, "not found");
        goto out;
    }
    if (!req->is_get) {
        set_error(r, 405, "method not allowed");
        r->flags |= TB_WS_HTTP_ALLOW_GET;
        goto out;
    }
    switch (r->route) {
    case TB_WS_ROUTE_HEALTHZ: {
        json_object *o = json_object_new_object();
        if (o)
            json_object_object_add(o, "status", json_object_new_string("ok"));
        set_json(r, 200, o);
        break;
    }
    case TB_WS_ROUTE_READYZ:
        route_readyz(req, r);
        break;
    case TB_WS_ROUTE_METRICS_API:
        if (!auth_failed(req, r))
            route_metrics_api(req, r);
        break;
    case TB_WS_ROUTE_PROMETHEUS:
        if (req->metrics_require_auth && auth_failed(req, r))
            break;
        r->status = 200;
        r->content_type = PROM_TYPE;
        tb_ws_prom_render(req->latest, req->stats, req->now_ms, &r->body);
        break;
    case TB_WS_ROUTE_WS:
        set_error(r, 426, "upgrade required");
        break;
    case TB_WS_ROUTE_OTHER:
    case TB_WS_ROUTE_COUNT:
        set_error(r, 404, "not found");
        break;
    }
out:
    if (r->body.oom) {
        tb_ws_text_release(&r->body);
        return -ENOMEM;
    }
    return 0;
}
