/*
 * server.c - the libwebsockets adapter: WebSocket API and HTTP endpoints on one port.
 * See include/tb/server.h (lifecycle) and docs/protocol.md (wire contract).
 *
 * Threads
 *   Everything in this file runs on the lws SERVICE thread (the caller of
 *   tb_server_run()), except wake() and tb_server_request_stop(), which other threads
 *   call: they only touch an atomic flag and lws_cancel_service(), the one lws call
 *   that is thread-safe. All other state (sessions, frames, cache, counters) is owned
 *   by the service thread and needs no lock.
 *
 * Data flow
 *   collector -> tb_mailbox_publish() -> wake() -> lws_cancel_service()
 *   -> LWS_CALLBACK_EVENT_WAIT_CANCELLED -> process_mailbox():
 *      - every event is encoded ONCE into a shared frame; a reference is appended to the
 *        bounded queue of each client whose subscriptions match it (overflow: the
 *        client is closed with 4008 "slow consumer");
 *      - the new update's metrics are encoded ONCE PER DISTINCT SUBSCRIPTION KEY
 *        (cache) and each client's single metrics slot is REPLACED (latest wins: a slow
 *        client never accumulates stale metrics; replaced ones are counted as dropped).
 *   -> lws_callback_on_writable() -> one lws_write() per WRITEABLE callback: queued
 *      frames first (events and replies, in order), then the metrics slot.
 *   Frames carry TB_ENCODE_HEADROOM (>= LWS_PRE) bytes before the payload, so lws
 *   writes the frame header in place and nothing is copied per client (server frames
 *   are unmasked, so every client gets the same bytes). When a client has SEVERAL
 *   frames pending (an event burst, then the metrics), they are framed here into one
 *   scratch buffer and written with a single LWS_WRITE_RAW (fanout.c, write_batch()):
 *   one send() and one service round per client instead of one per frame.
 *
 * Keep-alive: lws's own ping/hangup timers ("validity", retry_and_idle_policy) are
 *   OFF: lws 4.1 re-inserts them into one sorted linked list on every pong, walking all
 *   N connections (fanout.c explains the cost). keepalive_sweep() runs once a second:
 *   a client silent for server.ping_interval_s gets a ping frame, one silent for
 *   server.idle_timeout_s is dropped without a close frame (counted as 1006). A pong
 *   or any message is a sign of life.
 *
 * Upgrade policy (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, headers still available):
 *   wrong path 404, shutting down 503, Origin not allowed 403, bad/missing key 401 +
 *   "WWW-Authenticate: Bearer", subprotocol list without ours 400, server.max_clients
 *   reached 503. Each refusal is a JSON body {"error": ...} written here, then we
 *   return 1 (lws completes the transaction).
 *
 * Inbound messages are reassembled up to server.max_message_bytes, rate-limited (token
 * bucket), checked for UTF-8 here (not by lws, so the close has a reason and is
 * counted), then parsed by tb_ws_parse_request() (request.c). Plain HTTP requests are
 * decided by tb_ws_http_route() (http.c) and written here in one lws_write().
 *
 * Shutdown: tb_server_request_stop() -> flag + cancel -> begin_stop(): every client is
 *   marked to close with 1001 "server shutdown" (sent from its WRITEABLE callback), new
 *   upgrades get 503, and tb_server_run() keeps servicing until the last client is gone
 *   or server.shutdown_timeout_ms has passed. tb_server_free() destroys the context
 *   once (lws 4.1 has destroy-time bugs if destroyed twice or from a callback).
 */
#include <errno.h>
#include <libwebsockets.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tb/auth.h"
#include "tb/encode.h"
#include "tb/log.h"
#include "tb/server.h"
#include "tb/subs.h"
#include "tb/ws_internal.h"

_Static_assert(TB_ENCODE_HEADROOM >= LWS_PRE, "encoded frames must leave LWS_PRE headroom");

#define COMP "ws"
#define WS_PATH "/api/monitoring/ws"
#define RX_BUFFER_SIZE 4096         /* bytes per receive callback (not a message limit) */
#define TX_PACKET_SIZE (256 * 1024) /* one send() attempt per frame up to this size */
#define SLOW_CLOSE_GRACE_S 5        /* a slow consumer that cannot take its close frame */
#define KEEPALIVE_SWEEP_MS 1000     /* ping / idle checks run this often */
#define BATCH_BYTES (64 * 1024)     /* scratch for several frames written in one send */
#define HTTP_HEADER_ROOM 1024
#define AUTH_BUF_MAX 4096           /* header space lws keeps is 4096 bytes by default */

/* One WebSocket client. Heap-allocated at ESTABLISHED, freed at CLOSED; the lws
 * per-session data only holds a pointer to it (HTTP transactions on the same
 * connection never touch it). */
struct session {
    struct session *prev, *next;
    struct tb_server *srv;
    struct lws *wsi;
    struct tb_subs *subs;         /* never NULL */
    struct tb_ws_fqueue queue;    /* events and replies, in order */
    struct tb_ws_frame *metrics;  /* latest-wins slot, or NULL */
    struct tb_ws_bucket bucket;   /* inbound rate limit */
    char *rx;                     /* message reassembly */
    size_t rx_len, rx_cap;
    bool in_message;              /* between the first and the final fragment */
    bool closing;                 /* send close_code at the next WRITEABLE */
    int close_code;
    char close_reason[TB_WS_REASON_MAX + 1];
    int final_code;               /* for the closes counter; 0 = none seen */
    int64_t alive_ms;             /* monotonic: last sign of life (pong or message) */
    bool ping_due;                /* send a ping frame at the next WRITEABLE */
    bool ping_sent;               /* pinged since alive_ms */
    bool dropping;                /* idle: being closed without a close frame */
    char peer[64];
};

struct pss {
    struct session *sess;
};

struct tb_server {
    const struct tb_config *cfg;  /* borrowed */
    struct tb_mailbox *mb;        /* borrowed */
    struct lws_context *ctx;
    struct lws_vhost *vh;
    int port;
    struct lws_protocols protocols[2];
    lws_retry_bo_t retry;         /* must outlive the context */
    lws_sorted_usec_list_t stop_sul;
    lws_sorted_usec_list_t keepalive_sul;
    unsigned char *batch;         /* LWS_PRE + BATCH_BYTES, reused for every client */

    atomic_bool stop_requested;   /* written by any thread */

    /* service thread only */
    bool stopping;
    int64_t stop_deadline_ms;     /* monotonic */
    struct session *sessions;     /* doubly linked */
    uint64_t seen_seq;
    struct tb_update *latest;     /* reference, or NULL before the first cycle */
    struct tb_status empty_status;
    struct tb_ws_fcache cache;    /* subs key -> metrics frame for `latest` */
    struct tb_ws_stats stats;
};

/* ---- time ------------------------------------------------------------------------------ */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void) { return clock_ms(CLOCK_REALTIME); }
static int64_t mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

/* ---- lws log routing ------------------------------------------------------------------ */

static void lws_log_emit(int level, const char *line)
{
    /* lws prefixes "[YYYY/MM/DD HH:MM:SS:mmmm] L: " and appends "\n": strip both. */
    const char *p = line;
    if (*p == '[') {
        const char *close = strstr(p, "] ");
        if (close) {
            p = close + 2;
            if (p[0] && p[1] == ':' && p[2] == ' ')
                p += 3;
        }
    }
    size_t n = strlen(p);
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    enum tb_log_level lvl = (level & LLL_ERR) ? TB_LOG_ERROR
                            : (level & LLL_WARN) ? TB_LOG_WARN
                            : (level & LLL_NOTICE) ? TB_LOG_INFO
                                                   : TB_LOG_DEBUG;
    tb_log(lvl, "lws", "%.*s", (int)n, p);
}

/* ---- sessions ---------------------------------------------------------------------------- */

static bool session_has_output(const struct session *c)
{
    return c->closing || c->ping_due || c->queue.count || c->metrics;
}

static void session_alive(struct session *c)
{
    c->alive_ms = mono_ms();
    c->ping_due = false;
    c->ping_sent = false;
}

static void session_set_metrics(struct session *c, struct tb_ws_frame *f)
{
    if (c->metrics) {
        c->srv->stats.dropped_metrics++;
        tb_ws_frame_unref(c->metrics);
    }
    c->metrics = tb_ws_frame_ref(f);
}

/* Mark @c to be closed with @code at its next WRITEABLE callback; drops everything it
 * has pending (it will never be sent). Idempotent: the first reason wins. */
static void session_close(struct session *c, int code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_code = code;
    if (!c->final_code)
        c->final_code = code; /* counted with this code even if the frame never leaves */
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    tb_ws_fqueue_clear(&c->queue);
    tb_ws_frame_unref(c->metrics);
    c->metrics = NULL;
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
    lws_callback_on_writable(c->wsi);
}

/* Close from inside a callback of @c's own wsi: set the close frame, caller returns -1. */
static int close_now(struct session *c, int code, const char *reason)
{
    size_t len = strlen(reason);
    if (len > TB_WS_REASON_MAX)
        len = TB_WS_REASON_MAX;
    if (!c->final_code)
        c->final_code = code;
    tb_log(code == TB_WS_CLOSE_GOING_AWAY ? TB_LOG_DEBUG : TB_LOG_INFO, COMP,
           "closing client %s: %d %.*s", c->peer, code, (int)len, reason);
    lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason, len);
    return -1;
}

static void session_push(struct session *c, struct tb_ws_frame *f)
{
    if (c->closing)
        return;
    int rc = tb_ws_fqueue_push(&c->queue, f);
    if (rc == -ENOSPC) {
        tb_warn(COMP, "client %s: %zu messages queued, closing as slow consumer", c->peer,
                c->queue.count);
        session_close(c, TB_WS_CLOSE_SLOW_CONSUMER, "slow consumer");
        /* If the socket never becomes writable, do not wait for the idle timeout. */
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, SLOW_CLOSE_GRACE_S);
    } else if (rc) {
        session_close(c, TB_WS_CLOSE_INTERNAL, "out of memory");
    }
}

static void session_free(struct session *c)
{
    tb_ws_fqueue_release(&c->queue);
    tb_ws_frame_unref(c->metrics);
    tb_subs_free(c->subs);
    free(c->rx);
    free(c);
}

static void session_unlink(struct tb_server *s, struct session *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        s->sessions = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* The metrics frame for @subs from the current update: shared through the cache, so
 * one encoding per distinct subscription key and update. Borrowed (the cache holds
 * it), or NULL on OOM. */
static struct tb_ws_frame *metrics_for(struct tb_server *s, const struct tb_subs *subs)
{
    const char *key = tb_subs_key(subs);
    struct tb_ws_frame *f = tb_ws_fcache_get(&s->cache, key);
    if (f)
        return f;
    const struct tb_metrics *m = s->latest ? s->latest->metrics : NULL;
    const struct tb_status *st = s->latest ? &s->latest->status : &s->empty_status;
    struct tb_buf buf = {0};
    if (tb_encode_metrics(m, st, tb_subs_is_empty(subs) ? NULL : subs, wall_ms(), &buf) != 0)
        return NULL;
    f = tb_ws_frame_new(TB_WS_KIND_METRICS, &buf);
    if (!f)
        return NULL;
    int rc = tb_ws_fcache_put(&s->cache, key, f);
    tb_ws_frame_unref(f); /* the cache's reference remains (or f is freed on failure) */
    return rc == 0 ? f : NULL;
}

static void give_metrics(struct tb_server *s, struct session *c)
{
    if (c->closing)
        return;
    struct tb_ws_frame *f = metrics_for(s, c->subs);
    if (!f) {
        session_close(c, TB_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    session_set_metrics(c, f);
}

/* Encode a per-client reply and queue it. */
static void reply(struct session *c, enum tb_ws_kind kind, int rc, struct tb_buf *buf)
{
    if (rc != 0) {
        session_close(c, TB_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    struct tb_ws_frame *f = tb_ws_frame_new(kind, buf);
    if (!f) {
        session_close(c, TB_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    session_push(c, f);
    tb_ws_frame_unref(f);
}

static bool event_matches(const struct tb_event *ev, const struct tb_subs *subs)
{
    if (ev->type == TB_EVENT_GROUP_UPDATED)
        return tb_subs_match_group(subs, ev->name);
    return tb_subs_match_topic(subs, ev->name);
}

/* Take everything new from the mailbox and fan it out. Idempotent: with nothing new it
 * only re-requests writable callbacks. */
static void process_mailbox(struct tb_server *s)
{
    struct tb_update *u = NULL;
    struct tb_event_list events;
    tb_event_list_init(&events);
    s->stats.events_dropped += tb_mailbox_take(s->mb, s->seen_seq, &u, &events);

    for (size_t i = 0; i < events.count; i++) {
        const struct tb_event *ev = &events.items[i];
        struct tb_buf buf = {0};
        if (tb_encode_event(ev, &buf) != 0) {
            tb_warn(COMP, "out of memory encoding an event: dropped");
            continue;
        }
        struct tb_ws_frame *f = tb_ws_frame_new(tb_ws_kind_of_event(ev->type), &buf);
        if (!f)
            continue;
        for (struct session *c = s->sessions; c; c = c->next)
            if (!c->closing && event_matches(ev, c->subs))
                session_push(c, f);
        tb_ws_frame_unref(f);
    }
    tb_event_list_clear(&events);

    if (u) {
        s->seen_seq = u->seq;
        tb_update_unref(s->latest);
        s->latest = u;
        tb_ws_fcache_clear(&s->cache);
        for (struct session *c = s->sessions; c; c = c->next)
            give_metrics(s, c);
    }

    for (struct session *c = s->sessions; c; c = c->next)
        if (session_has_output(c))
            lws_callback_on_writable(c->wsi);
}

/* ---- keep-alive ---------------------------------------------------------------------------- */

/* Once a second (service thread): ping silent clients, drop dead ones. O(clients). */
static void keepalive_sweep(lws_sorted_usec_list_t *sul)
{
    struct tb_server *s =
        (struct tb_server *)((char *)sul - offsetof(struct tb_server, keepalive_sul));
    const int64_t now = mono_ms();
    const int64_t ping_ms = (int64_t)s->cfg->ping_interval_s * 1000;
    const int64_t idle_ms = (int64_t)s->cfg->idle_timeout_s * 1000;
    for (struct session *c = s->sessions; c; c = c->next) {
        if (c->closing || c->dropping)
            continue;
        switch (tb_ws_keepalive_check(now, c->alive_ms, c->ping_sent || c->ping_due, ping_ms,
                                      idle_ms)) {
        case TB_WS_KEEPALIVE_PING:
            c->ping_due = true;
            lws_callback_on_writable(c->wsi);
            break;
        case TB_WS_KEEPALIVE_DROP:
            tb_info(COMP, "client %s silent for %lld ms: dropped (server.idle_timeout_s)", c->peer,
                    (long long)(now - c->alive_ms));
            c->dropping = true;
            /* closed at the next service pass, without a close frame (code 1006) */
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            break;
        case TB_WS_KEEPALIVE_NOTHING:
            break;
        }
    }
    lws_sul_schedule(s->ctx, 0, &s->keepalive_sul, keepalive_sweep,
                     (lws_usec_t)KEEPALIVE_SWEEP_MS * LWS_US_PER_MS);
}

/* ---- shutdown ----------------------------------------------------------------------------- */

static void stop_sul_cb(lws_sorted_usec_list_t *sul)
{
    (void)sul; /* only wakes the loop so that it sees the deadline */
}

static void begin_stop(struct tb_server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_deadline_ms = mono_ms() + s->cfg->shutdown_timeout_ms;
    tb_info(COMP, "shutting down: closing %llu client(s) (deadline %d ms)",
            (unsigned long long)s->stats.clients, s->cfg->shutdown_timeout_ms);
    for (struct session *c = s->sessions; c; c = c->next)
        session_close(c, TB_WS_CLOSE_GOING_AWAY, "server shutdown");
    lws_sul_schedule(s->ctx, 0, &s->stop_sul, stop_sul_cb,
                     (lws_usec_t)s->cfg->shutdown_timeout_ms * LWS_US_PER_MS);
}

/* ---- HTTP responses -------------------------------------------------------------------- */

/* Write a complete response (headers + body in one lws_write; lws buffers whatever the
 * socket does not take at once). Returns 0, or -1 to drop the connection. */
static int http_write(struct lws *wsi, int status, const char *ctype, unsigned flags,
                      const char *body, size_t body_len)
{
    unsigned char *mem = malloc(LWS_PRE + HTTP_HEADER_ROOM + body_len);
    if (!mem)
        return -1;
    unsigned char *start = mem + LWS_PRE, *p = start, *end = start + HTTP_HEADER_ROOM;
    int rc = -1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, (lws_filepos_t)body_len, &p,
                                    end))
        goto out;
    if ((flags & TB_WS_HTTP_WWW_AUTHENTICATE) &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"www-authenticate:",
                                    (const unsigned char *)"Bearer", 6, &p, end))
        goto out;
    if ((flags & TB_WS_HTTP_ALLOW_GET) &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
                                    (const unsigned char *)"GET", 3, &p, end))
        goto out;
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        goto out;
    if (lws_finalize_http_header(wsi, &p, end))
        goto out;
    memcpy(p, body, body_len);
    p += body_len;
    /* HTTP_HEADERS: the whole block is written verbatim (like lws_return_http_status). */
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) >= 0)
        rc = 0;
out:
    free(mem);
    return rc;
}

static const char *status_text(int status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

/* Refuse an upgrade from LWS_CALLBACK_HTTP_CONFIRM_UPGRADE with a JSON error body.
 * The response head is written by hand: at this point lws 4.1 has not recorded the
 * request's HTTP version yet, and lws_add_http_header_status() would answer
 * "HTTP/1.0", which WebSocket clients reject as an invalid handshake response. */
static int refuse_upgrade(struct tb_server *s, struct lws *wsi, enum tb_ws_route route,
                          int status, unsigned flags, const char *message)
{
    struct tb_ws_text body = {0}, all = {0};
    tb_ws_json_error(&body, message);
    tb_ws_text_printf(&all, "%*s", LWS_PRE, ""); /* headroom for lws_write() */
    tb_ws_text_printf(&all,
                      "HTTP/1.1 %d %s\r\n"
                      "server: takhin-bridge\r\n"
                      "content-type: application/json\r\n"
                      "content-length: %zu\r\n"
                      "%s"
                      "cache-control: no-store\r\n"
                      "\r\n",
                      status, status_text(status), body.len,
                      (flags & TB_WS_HTTP_WWW_AUTHENTICATE) ? "www-authenticate: Bearer\r\n" : "");
    tb_ws_text_append(&all, body.mem ? body.mem : "", body.len);
    int rc = -1;
    if (!all.oom && !body.oom &&
        lws_write(wsi, (unsigned char *)all.mem + LWS_PRE, all.len - LWS_PRE,
                  LWS_WRITE_HTTP_HEADERS) >= 0)
        rc = 0;
    tb_ws_text_release(&body);
    tb_ws_text_release(&all);
    tb_ws_stats_http(&s->stats, route, status);
    return rc;
}

/* ---- request inspection ---------------------------------------------------------------- */

/* Copy header @h into a fresh NUL-terminated buffer; NULL if absent or too long. */
static char *header_dup(struct lws *wsi, enum lws_token_indexes h)
{
    int n = lws_hdr_total_length(wsi, h);
    if (n <= 0 || n > AUTH_BUF_MAX)
        return NULL;
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return NULL;
    if (lws_hdr_copy(wsi, buf, n + 1, h) < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void wipe_free(char *p)
{
    if (!p)
        return;
    explicit_bzero(p, strlen(p));
    free(p);
}

/* Key check over every carrier (docs/protocol.md, "Authentication"). A request is
 * accepted if ANY presented key is valid. Keys are never logged. */
static enum tb_ws_auth check_auth(struct tb_server *s, struct lws *wsi, bool upgrade)
{
    const struct tb_strlist *keys = &s->cfg->api_keys;
    if (tb_auth_disabled(keys))
        return TB_WS_AUTH_OK;
    bool presented = false, ok = false;
    const char *key;
    size_t len;

    char *h = header_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (h && tb_auth_from_authorization(h, &key, &len)) {
        presented = true;
        ok = tb_auth_check(keys, key, len);
    }
    wipe_free(h);

    if (!ok) {
        char *buf = malloc(AUTH_BUF_MAX);
        const char *v = buf ? lws_get_urlarg_by_name(wsi, "token=", buf, AUTH_BUF_MAX) : NULL;
        if (v) {
            /* lws has already percent-decoded the query (see docs/protocol.md). */
            presented = true;
            ok = tb_auth_check(keys, v, strlen(v));
        }
        if (buf) {
            explicit_bzero(buf, AUTH_BUF_MAX);
            free(buf);
        }
    }

    if (!ok && upgrade) {
        char *p = header_dup(wsi, WSI_TOKEN_PROTOCOL);
        if (p && tb_auth_from_protocols(p, &key, &len)) {
            presented = true;
            ok = tb_auth_check(keys, key, len);
        }
        wipe_free(p);
    }
    if (ok)
        return TB_WS_AUTH_OK;
    return presented ? TB_WS_AUTH_INVALID : TB_WS_AUTH_MISSING;
}

static bool origin_allowed(struct tb_server *s, struct lws *wsi)
{
    const struct tb_strlist *allowed = &s->cfg->allowed_origins;
    if (!allowed->count)
        return true;
    char *origin = header_dup(wsi, WSI_TOKEN_ORIGIN);
    if (!origin)
        return lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0; /* absent: non-browser */
    bool ok = false;
    for (size_t i = 0; i < allowed->count && !ok; i++)
        ok = strcasecmp(origin, allowed->items[i]) == 0;
    free(origin);
    return ok;
}

static void peer_name(struct lws *wsi, char *buf, size_t len)
{
    if (!lws_get_peer_simple(wsi, buf, len))
        snprintf(buf, len, "?");
}

/* true if the client offers no subprotocol, or offers ours among its list. lws would
 * silently drop a client that offers only names it does not know (e.g. only
 * "bearer.<key>"); we answer 400 instead. */
static bool subprotocol_acceptable(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) <= 0)
        return true;
    char *list = header_dup(wsi, WSI_TOKEN_PROTOCOL);
    if (!list)
        return false;
    bool found = false;
    const size_t want = strlen(TB_SUBPROTOCOL);
    for (char *p = list; *p && !found;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        char *end = p;
        while (*end && *end != ',')
            end++;
        char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        found = (size_t)(last - p) == want && memcmp(p, TB_SUBPROTOCOL, want) == 0;
        p = end;
    }
    wipe_free(list); /* may hold a bearer.<key> entry */
    return found;
}

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: 0 = proceed, 1 = refused (response written). */
static int confirm_upgrade(struct tb_server *s, struct lws *wsi, const char *upgrade)
{
    char path[256] = "";
    char peer[64];
    lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
    peer_name(wsi, peer, sizeof(peer));

    if (!upgrade || strcasecmp(upgrade, "websocket") != 0)
        return refuse_upgrade(s, wsi, tb_ws_route_of(path), 400, 0, "unsupported upgrade") ? -1 : 1;
    if (strcmp(path, WS_PATH) != 0) {
        tb_debug(COMP, "upgrade refused from %s: path not found", peer);
        return refuse_upgrade(s, wsi, TB_WS_ROUTE_OTHER, 404, 0, "not found") ? -1 : 1;
    }
    if (s->stopping)
        return refuse_upgrade(s, wsi, TB_WS_ROUTE_WS, 503, 0, "server shutting down") ? -1 : 1;
    if (!origin_allowed(s, wsi)) {
        tb_info(COMP, "upgrade refused from %s: origin not allowed", peer);
        return refuse_upgrade(s, wsi, TB_WS_ROUTE_WS, 403, 0, "origin not allowed") ? -1 : 1;
    }
    enum tb_ws_auth auth = check_auth(s, wsi, true);
    if (auth != TB_WS_AUTH_OK) {
        const char *msg = auth == TB_WS_AUTH_MISSING ? "missing API key" : "invalid API key";
        tb_info(COMP, "upgrade refused from %s: %s", peer, msg);
        return refuse_upgrade(s, wsi, TB_WS_ROUTE_WS, 401, TB_WS_HTTP_WWW_AUTHENTICATE, msg) ? -1 : 1;
    }
    if (!subprotocol_acceptable(wsi)) {
        tb_info(COMP, "upgrade refused from %s: subprotocol list without %s", peer,
                TB_SUBPROTOCOL);
        return refuse_upgrade(s, wsi, TB_WS_ROUTE_WS, 400, 0,
                              "unsupported subprotocol: offer \"" TB_SUBPROTOCOL "\"") ? -1 : 1;
    }
    if (s->stats.clients >= (uint64_t)s->cfg->max_clients) {
        tb_warn(COMP, "upgrade refused from %s: %d clients connected (server.max_clients)", peer,
                s->cfg->max_clients);
        return refuse_upgrade(s, wsi, TB_WS_ROUTE_WS, 503, 0, "too many connections") ? -1 : 1;
    }
    return 0;
}

/* LWS_CALLBACK_HTTP: a plain request. Returns the callback's result. */
static int serve_http(struct tb_server *s, struct lws *wsi)
{
    char *uri = NULL;
    int uri_len = 0;
    int method = lws_http_get_uri_and_method(wsi, &uri, &uri_len);
    char path[256];
    if (uri && uri_len > 0 && (size_t)uri_len < sizeof(path)) {
        memcpy(path, uri, (size_t)uri_len);
        path[uri_len] = '\0';
    } else {
        snprintf(path, sizeof(path), "%s", uri_len > 0 ? "/-too-long-" : "/");
    }
    enum tb_ws_route route = tb_ws_route_of(path);
    bool needs_auth = route == TB_WS_ROUTE_METRICS_API ||
                      (route == TB_WS_ROUTE_PROMETHEUS && s->cfg->metrics_require_auth);

    struct tb_ws_http_request req = {
        .is_get = method == LWSHUMETH_GET,
        .path = path,
        .auth = needs_auth ? check_auth(s, wsi, false) : TB_WS_AUTH_OK,
        .metrics_require_auth = s->cfg->metrics_require_auth,
        .stopping = s->stopping,
        .latest = s->latest,
        .empty_status = &s->empty_status,
        .stats = &s->stats,
        .now_ms = wall_ms(),
    };
    if (req.auth != TB_WS_AUTH_OK) {
        char peer[64];
        peer_name(wsi, peer, sizeof(peer));
        tb_info(COMP, "%s refused for %s: %s", path, peer,
                req.auth == TB_WS_AUTH_MISSING ? "missing API key" : "invalid API key");
    }
    struct tb_ws_http_response resp;
    if (tb_ws_http_route(&req, &resp) != 0)
        return -1;
    int rc = http_write(wsi, resp.status, resp.content_type, resp.flags, resp.body.mem,
                        resp.body.len);
    tb_ws_text_release(&resp.body);
    tb_ws_stats_http(&s->stats, resp.route, resp.status);
    if (rc)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- WebSocket callbacks ------------------------------------------------------------- */

static int on_established(struct tb_server *s, struct lws *wsi, struct pss *pss)
{
    struct session *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->subs = tb_subs_new();
    if (!c->subs) {
        free(c);
        return -1;
    }
    c->srv = s;
    c->wsi = wsi;
    c->alive_ms = mono_ms();
    tb_ws_fqueue_init(&c->queue, (size_t)s->cfg->max_queued_events);
    tb_ws_bucket_init(&c->bucket, s->cfg->client_messages_per_second,
                      s->cfg->client_messages_burst, mono_ms());
    peer_name(wsi, c->peer, sizeof(c->peer));
    c->next = s->sessions;
    if (s->sessions)
        s->sessions->prev = c;
    s->sessions = c;
    pss->sess = c;
    s->stats.clients++;
    s->stats.connections_total++;
    tb_ws_stats_http(&s->stats, TB_WS_ROUTE_WS, 101);
    tb_debug(COMP, "client %s connected (%llu now)", c->peer,
             (unsigned long long)s->stats.clients);

    if (s->stopping)
        session_close(c, TB_WS_CLOSE_GOING_AWAY, "server shutdown");
    else
        give_metrics(s, c); /* the current metrics at once: never wait for a tick */
    lws_callback_on_writable(wsi);
    return 0;
}

static void on_closed(struct tb_server *s, struct pss *pss)
{
    struct session *c = pss->sess;
    if (!c)
        return;
    pss->sess = NULL;
    session_unlink(s, c);
    s->stats.clients--;
    tb_ws_stats_close(&s->stats, c->final_code);
    tb_debug(COMP, "client %s disconnected (code %d, %llu left)", c->peer,
             c->final_code ? c->final_code : 1006, (unsigned long long)s->stats.clients);
    session_free(c);
}

/* The oldest pending frame of @c (queue first, then the metrics slot), borrowed. */
static struct tb_ws_frame *next_frame(const struct session *c)
{
    if (c->queue.count)
        return c->queue.items[c->queue.head];
    return c->metrics;
}

/* Remove next_frame() and return its reference. */
static struct tb_ws_frame *take_frame(struct session *c)
{
    struct tb_ws_frame *f = tb_ws_fqueue_pop(&c->queue);
    if (!f) {
        f = c->metrics;
        c->metrics = NULL;
    }
    return f;
}

/* Several pending frames: frame as many as fit into the scratch buffer and write them
 * with ONE raw send (lws buffers whatever the socket does not take, as for any write).
 * Returns the number of frames written (0 if the oldest does not fit: the caller
 * writes it alone), or -1 to drop the connection. */
static int write_batch(struct tb_server *s, struct session *c)
{
    unsigned char *out = s->batch + LWS_PRE;
    size_t used = 0, payload = 0;
    uint64_t sent[TB_WS_KIND_COUNT] = {0};
    int n = 0;
    for (struct tb_ws_frame *f; (f = next_frame(c)) != NULL; n++) {
        if (!tb_ws_batch_append(out, BATCH_BYTES, &used, tb_buf_payload(&f->buf), f->buf.len))
            break;
        sent[f->kind]++;
        payload += f->buf.len;
        tb_ws_frame_unref(take_frame(c)); /* copied */
    }
    if (n == 0)
        return 0;
    if (lws_write(c->wsi, out, used, LWS_WRITE_RAW) < 0)
        return -1;
    for (int k = 0; k < TB_WS_KIND_COUNT; k++)
        s->stats.messages_sent[k] += sent[k];
    s->stats.bytes_sent += payload;
    return n;
}

/* Write the oldest pending frame alone, in place (no copy). Returns 0 or -1. */
static int write_one(struct tb_server *s, struct session *c)
{
    struct tb_ws_frame *f = take_frame(c);
    if (!f)
        return 0;
    size_t len = f->buf.len;
    int n = lws_write(c->wsi, (unsigned char *)tb_buf_payload(&f->buf), len, LWS_WRITE_TEXT);
    if (n >= 0) {
        s->stats.messages_sent[f->kind]++;
        s->stats.bytes_sent += len;
    }
    tb_ws_frame_unref(f);
    return n < 0 ? -1 : 0;
}

static int on_writeable(struct tb_server *s, struct session *c)
{
    if (c->dropping)
        return -1;
    if (c->closing)
        return close_now(c, c->close_code, c->close_reason);

    if (c->ping_due) {
        /* A non-empty payload: lws 4.1 does not pass an EMPTY pong (the echo of an empty
         * ping) to the protocol callback, and the echo is all a client sends back. */
        unsigned char *p = s->batch + LWS_PRE;
        uint64_t now = (uint64_t)mono_ms();
        for (int i = 0; i < 8; i++)
            p[i] = (unsigned char)(now >> (8 * (7 - i)));
        c->ping_due = false;
        c->ping_sent = true;
        if (lws_write(c->wsi, p, 8, LWS_WRITE_PING) < 0)
            return -1;
    } else if (c->queue.count + (c->metrics ? 1 : 0) >= 2) {
        int n = write_batch(s, c);
        if (n < 0)
            return -1;
        if (n == 0 && write_one(s, c) < 0)
            return -1;
    } else if (write_one(s, c) < 0) {
        return -1;
    }
    if (session_has_output(c))
        lws_callback_on_writable(c->wsi);
    return 0;
}

static void handle_subscription(struct tb_server *s, struct session *c,
                                const struct tb_ws_request *req)
{
    bool sub = req->type == TB_WS_REQ_SUBSCRIBE;
    struct tb_buf buf = {0};
    const char *why = req->item_error;
    int rc = -EINVAL;
    if (req->item)
        rc = sub ? tb_subs_add(c->subs, req->item, &why) : tb_subs_remove(c->subs, req->item, &why);
    if (rc == -ENOMEM) {
        session_close(c, TB_WS_CLOSE_INTERNAL, "out of memory");
        return;
    }
    if (rc != 0) {
        const char *code = rc == -ENOSPC ? "too_many_subscriptions" : "invalid_subscription";
        reply(c, TB_WS_KIND_ERROR,
              tb_encode_error(code, why ? why : "invalid subscription", wall_ms(), &buf), &buf);
        return;
    }
    reply(c, sub ? TB_WS_KIND_SUBSCRIBED : TB_WS_KIND_UNSUBSCRIBED,
          tb_encode_ack(sub ? "subscribed" : "unsubscribed", req->item, wall_ms(), &buf), &buf);
    give_metrics(s, c); /* narrowed to the new set, right after the ack */
}

/* A complete text message. Returns the callback's result (-1 closes). */
static int handle_message(struct tb_server *s, struct session *c)
{
    session_alive(c); /* any message proves the client alive */
    if (!tb_ws_bucket_take(&c->bucket, mono_ms()))
        return close_now(c, TB_WS_CLOSE_POLICY, "rate limit exceeded");
    /* Checked here rather than by lws (LWS_SERVER_OPTION_VALIDATE_UTF8) so that the
     * close carries a reason and is counted with its code. */
    if (!tb_ws_utf8_valid(c->rx ? c->rx : "", c->rx_len))
        return close_now(c, TB_WS_CLOSE_INVALID_PAYLOAD, "invalid UTF-8");

    struct tb_ws_request req;
    int rc = tb_ws_parse_request(c->rx ? c->rx : "", c->rx_len, &req);
    if (rc == -EINVAL) {
        int r = close_now(c, req.close_code, req.reason);
        tb_ws_request_release(&req);
        return r;
    }
    if (rc) {
        tb_ws_request_release(&req);
        return close_now(c, TB_WS_CLOSE_INTERNAL, "out of memory");
    }
    struct tb_buf buf = {0};
    switch (req.type) {
    case TB_WS_REQ_PING:
        reply(c, TB_WS_KIND_PONG, tb_encode_pong(wall_ms(), &buf), &buf);
        break;
    case TB_WS_REQ_SUBSCRIBE:
    case TB_WS_REQ_UNSUBSCRIBE:
        handle_subscription(s, c, &req);
        break;
    }
    tb_ws_request_release(&req);
    if (c->closing)
        return close_now(c, c->close_code, c->close_reason);
    if (session_has_output(c))
        lws_callback_on_writable(c->wsi);
    return 0;
}

static int on_receive(struct tb_server *s, struct session *c, const void *in, size_t len)
{
    if (c->closing)
        return 0; /* input after we decided to close is ignored */
    if (lws_frame_is_binary(c->wsi))
        return close_now(c, TB_WS_CLOSE_UNSUPPORTED, "binary frames not supported");
    if (!c->in_message) {
        c->in_message = true;
        c->rx_len = 0;
    }
    size_t max = (size_t)s->cfg->max_message_bytes;
    size_t remaining = lws_remaining_packet_payload(c->wsi);
    if (c->rx_len + len > max || remaining > max - (c->rx_len + len))
        return close_now(c, TB_WS_CLOSE_TOO_BIG, "message too big");
    if (c->rx_len + len + 1 > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : 256;
        while (ncap < c->rx_len + len + 1)
            ncap *= 2;
        if (ncap > max + 1)
            ncap = max + 1;
        char *n = realloc(c->rx, ncap);
        if (!n)
            return close_now(c, TB_WS_CLOSE_INTERNAL, "out of memory");
        c->rx = n;
        c->rx_cap = ncap;
    }
    if (len)
        memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    c->rx[c->rx_len] = '\0';
    if (!lws_is_final_fragment(c->wsi) || lws_remaining_packet_payload(c->wsi))
        return 0;
    c->in_message = false;
    return handle_message(s, c);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;
    struct tb_server *s = ctx ? lws_context_user(ctx) : NULL;
    struct pss *pss = user;
    if (!s)
        return wsi ? lws_callback_http_dummy(wsi, reason, user, in, len) : 0;

    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (atomic_load(&s->stop_requested))
            begin_stop(s);
        process_mailbox(s);
        return 0;

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(s, wsi, in);

    case LWS_CALLBACK_HTTP:
        return serve_http(s, wsi);

    case LWS_CALLBACK_ESTABLISHED:
        return pss ? on_established(s, wsi, pss) : -1;

    case LWS_CALLBACK_SERVER_WRITEABLE:
        return pss && pss->sess ? on_writeable(s, pss->sess) : 0;

    case LWS_CALLBACK_RECEIVE:
        return pss && pss->sess ? on_receive(s, pss->sess, in, len) : -1;

    case LWS_CALLBACK_RECEIVE_PONG:
        if (pss && pss->sess)
            session_alive(pss->sess);
        return 0;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (pss && pss->sess && !pss->sess->final_code && len >= 2) {
            const unsigned char *b = in;
            pss->sess->final_code = (b[0] << 8) | b[1];
        } else if (pss && pss->sess && !pss->sess->final_code) {
            pss->sess->final_code = 1005; /* close frame without a code */
        }
        return 0;

    case LWS_CALLBACK_CLOSED:
        if (pss)
            on_closed(s, pss);
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

static void wake(void *arg)
{
    struct tb_server *s = arg;
    lws_cancel_service(s->ctx); /* thread-safe */
}

int tb_server_new(const struct tb_config *cfg, struct tb_mailbox *mb, struct tb_server **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    struct tb_server *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->cfg = cfg;
    s->mb = mb;
    atomic_init(&s->stop_requested, false);
    s->empty_status.stale_after_ms = cfg->stale_after_ms;
    tb_ws_fcache_init(&s->cache);

    int lws_levels = LLL_ERR | LLL_WARN;
    if (tb_log_get_level() <= TB_LOG_DEBUG)
        lws_levels |= LLL_NOTICE;
    lws_set_log_level(lws_levels, lws_log_emit);

    s->protocols[0] = (struct lws_protocols){
        .name = TB_SUBPROTOCOL, /* index 0: clients that offer no subprotocol bind here */
        .callback = callback,
        .per_session_data_size = sizeof(struct pss),
        .rx_buffer_size = RX_BUFFER_SIZE,
        .user = s,
        .tx_packet_size = TX_PACKET_SIZE,
    };
    /* protocols[1] stays zeroed: the terminator */

    /* All zero: lws's validity timers are off (O(N) per pong in lws 4.1, see fanout.c);
     * keepalive_sweep() implements server.ping_interval_s / server.idle_timeout_s. */
    s->retry = (lws_retry_bo_t){0};
    s->batch = malloc(LWS_PRE + BATCH_BYTES);
    if (!s->batch) {
        snprintf(err, errlen, "out of memory");
        tb_server_free(s);
        return -ENOMEM;
    }
    if (cfg->idle_timeout_s <= cfg->ping_interval_s)
        tb_warn(COMP, "server.idle_timeout_s (%d) <= server.ping_interval_s (%d): idle clients "
                "are dropped before they are pinged", cfg->idle_timeout_s, cfg->ping_interval_s);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    const char *addr = cfg->server_address ? cfg->server_address : "";
    if (!strchr(addr, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* "0.0.0.0"/"::"/"" = every address (iface NULL); else an address or interface name */
    info.iface = (!addr[0] || strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0) ? NULL
                                                                                        : addr;
    info.port = cfg->server_port;
    info.protocols = s->protocols;
    info.user = s;
    info.server_string = "takhin-bridge";
    info.retry_and_idle_policy = &s->retry;
    if (cfg->tls_cert_file && cfg->tls_cert_file[0]) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert_file;
        info.ssl_private_key_filepath = cfg->tls_key_file;
        info.alpn = "http/1.1"; /* WebSocket and our endpoints over HTTP/1.1 only */
    }

    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        snprintf(err, errlen, "cannot create the libwebsockets context");
        goto fail;
    }
    s->vh = lws_create_vhost(s->ctx, &info);
    if (!s->vh) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use, not available, or TLS "
                 "files unreadable)", addr[0] ? addr : "0.0.0.0", cfg->server_port);
        goto fail;
    }
    s->port = lws_get_vhost_listen_port(s->vh);
    lws_sul_schedule(s->ctx, 0, &s->keepalive_sul, keepalive_sweep,
                     (lws_usec_t)KEEPALIVE_SWEEP_MS * LWS_US_PER_MS);
    tb_mailbox_set_wake(mb, wake, s);
    tb_info(COMP, "listening on %s:%d%s", addr[0] ? addr : "0.0.0.0", s->port,
            info.ssl_cert_filepath ? " (TLS)" : "");
    *out = s;
    return 0;
fail:
    tb_server_free(s);
    return -EADDRNOTAVAIL;
}

int tb_server_port(const struct tb_server *s) { return s ? s->port : -1; }

int tb_server_run(struct tb_server *s)
{
    int rc = 0;
    /* Anything published before we started, and a stop requested before we started. */
    process_mailbox(s);
    for (;;) {
        if (atomic_load(&s->stop_requested))
            begin_stop(s);
        if (s->stopping && (!s->sessions || mono_ms() >= s->stop_deadline_ms))
            break;
        if (lws_service(s->ctx, 0) < 0) {
            tb_error(COMP, "service loop failed");
            rc = -EIO;
            break;
        }
    }
    lws_sul_cancel(&s->stop_sul);
    lws_sul_cancel(&s->keepalive_sul);
    if (s->sessions)
        tb_warn(COMP, "shutdown deadline passed with %llu client(s) still connected",
                (unsigned long long)s->stats.clients);
    return rc;
}

void tb_server_request_stop(struct tb_server *s)
{
    if (!s)
        return;
    atomic_store(&s->stop_requested, true);
    if (s->ctx)
        lws_cancel_service(s->ctx);
}

void tb_server_free(struct tb_server *s)
{
    if (!s)
        return;
    if (s->ctx)
        lws_context_destroy(s->ctx); /* CLOSED callbacks free the remaining sessions */
    s->ctx = NULL;
    while (s->sessions) {
        struct session *c = s->sessions;
        session_unlink(s, c);
        session_free(c);
    }
    tb_ws_fcache_release(&s->cache);
    tb_update_unref(s->latest);
    free(s->batch);
    free(s);
}
