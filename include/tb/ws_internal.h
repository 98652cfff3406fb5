/*
 * ws_internal.h - PRIVATE to src/ws (and its unit tests): the pure helpers the
 * libwebsockets adapter is built from. Nothing here includes libwebsockets.h, so every
 * helper is unit-testable without a socket.
 *
 *   frames   tb_ws_frame: one encoded server->client message, shared by reference
 *            among every client that must receive it (refcount is NOT atomic: frames
 *            live on the service thread only).
 *   queues   tb_ws_fqueue: a client's bounded FIFO of frame references.
 *   cache    tb_ws_fcache: subscription key -> metrics frame, for the current update,
 *            so each distinct subscription set is serialized once.
 *   bucket   tb_ws_bucket: the inbound-message token bucket.
 *   fanout   frame batching (several frames in one send) and the keep-alive decision.
 *   request  tb_ws_parse_request(): a client's JSON message -> request or close code.
 *   prom     tb_ws_prom_render(): the Prometheus text exposition of GET /metrics.
 *
 * The wire contract these implement is docs/protocol.md.
 */
#ifndef TB_WS_INTERNAL_H
#define TB_WS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tb/encode.h"
#include "tb/mailbox.h"

/* ---- close codes (RFC 6455 section 7.4; 4000-4999 are private) ------------------- */
#define TB_WS_CLOSE_GOING_AWAY 1001      /* server shutdown */
#define TB_WS_CLOSE_UNSUPPORTED 1003     /* binary frame */
#define TB_WS_CLOSE_INVALID_PAYLOAD 1007 /* text frame that is not UTF-8 */
#define TB_WS_CLOSE_POLICY 1008          /* bad JSON, unknown type, rate limit */
#define TB_WS_CLOSE_TOO_BIG 1009         /* message above server.max_message_bytes */
#define TB_WS_CLOSE_INTERNAL 1011        /* out of memory */
#define TB_WS_CLOSE_SLOW_CONSUMER 4008   /* event queue overflow (not reading) */

/* ---- message kinds (for per-type counters) -------------------------------------- */
enum tb_ws_kind {
    TB_WS_KIND_METRICS,
    TB_WS_KIND_TOPIC_CREATED,
    TB_WS_KIND_TOPIC_DELETED,
    TB_WS_KIND_GROUP_UPDATED,
    TB_WS_KIND_PONG,
    TB_WS_KIND_SUBSCRIBED,
    TB_WS_KIND_UNSUBSCRIBED,
    TB_WS_KIND_ERROR,
    TB_WS_KIND_COUNT
};

/* "metrics", "topic_created", ... (the envelope's "type"). */
const char *tb_ws_kind_name(enum tb_ws_kind k);
enum tb_ws_kind tb_ws_kind_of_event(enum tb_event_type t);

/* ---- shared frames --------------------------------------------------------------- */
struct tb_ws_frame {
    unsigned refs;        /* service thread only */
    enum tb_ws_kind kind;
    struct tb_buf buf;    /* owned; TB_ENCODE_HEADROOM bytes before the payload */
};

/* Takes ownership of *@buf (left zeroed, also on failure, when it is released).
 * Returns a frame with one reference, or NULL on OOM. */
struct tb_ws_frame *tb_ws_frame_new(enum tb_ws_kind kind, struct tb_buf *buf);
struct tb_ws_frame *tb_ws_frame_ref(struct tb_ws_frame *f);
void tb_ws_frame_unref(struct tb_ws_frame *f); /* NULL is a no-op */

/* ---- bounded FIFO of frame references -------------------------------------------- */
struct tb_ws_fqueue {
    struct tb_ws_frame **items; /* ring; grows on demand up to max */
    size_t head, count, cap, max;
};

void tb_ws_fqueue_init(struct tb_ws_fqueue *q, size_t max);
/* Appends a NEW reference to @f. Returns 0, -ENOSPC (max reached: nothing changed) or
 * -ENOMEM. */
int tb_ws_fqueue_push(struct tb_ws_fqueue *q, struct tb_ws_frame *f);
/* Removes the oldest frame and returns the queue's reference to it (NULL if empty). */
struct tb_ws_frame *tb_ws_fqueue_pop(struct tb_ws_fqueue *q);
/* Drops every reference; the queue stays usable. */
void tb_ws_fqueue_clear(struct tb_ws_fqueue *q);
void tb_ws_fqueue_release(struct tb_ws_fqueue *q); /* clear + free storage */

/* ---- subscription key -> frame cache ---------------------------------------------- */
struct tb_ws_fcache_slot {
    char *key;                 /* owned; NULL = empty slot */
    struct tb_ws_frame *frame; /* owned reference */
};

struct tb_ws_fcache {
    struct tb_ws_fcache_slot *slots; /* open addressing, cap is a power of two */
    size_t cap, count;
};

void tb_ws_fcache_init(struct tb_ws_fcache *c);
/* Borrowed pointer, or NULL. */
struct tb_ws_frame *tb_ws_fcache_get(const struct tb_ws_fcache *c, const char *key);
/* Stores a NEW reference to @f under a copy of @key (replacing any previous frame).
 * Returns 0 or -ENOMEM. */
int tb_ws_fcache_put(struct tb_ws_fcache *c, const char *key, struct tb_ws_frame *f);
void tb_ws_fcache_clear(struct tb_ws_fcache *c);   /* drops everything, keeps storage */
void tb_ws_fcache_release(struct tb_ws_fcache *c); /* clear + free storage */

/* ---- fan-out helpers (fanout.c) ------------------------------------------------------ */
#define TB_WS_FRAME_HEADER_MAX 10

/* The header of one complete, unmasked server text frame (FIN, opcode 1) carrying @len
 * payload bytes (RFC 6455 5.2: 7-bit, 16-bit or 64-bit length). Returns its size. */
size_t tb_ws_frame_header(unsigned char out[TB_WS_FRAME_HEADER_MAX], size_t len);

/* Append that header and @payload[0..@len) to @out at *@used (capacity @cap), and
 * advance *@used. Returns false, with nothing written, if the frame does not fit. */
bool tb_ws_batch_append(unsigned char *out, size_t cap, size_t *used, const void *payload,
                        size_t len);

enum tb_ws_keepalive {
    TB_WS_KEEPALIVE_NOTHING,
    TB_WS_KEEPALIVE_PING, /* silent >= ping_after_ms and not pinged yet: send a ping */
    TB_WS_KEEPALIVE_DROP, /* silent >= drop_after_ms: close without a close frame */
};

/* Keep-alive decision for a client last seen alive at @alive_ms (monotonic), that has
 * (@ping_sent) or has not been pinged since. */
enum tb_ws_keepalive tb_ws_keepalive_check(int64_t now_ms, int64_t alive_ms, bool ping_sent,
                                           int64_t ping_after_ms, int64_t drop_after_ms);

/* ---- token bucket ------------------------------------------------------------------ */
/* Integer arithmetic in milli-tokens, so refills are exact (no float drift). */
struct tb_ws_bucket {
    int64_t milli_tokens;  /* 1000 = one message */
    int64_t rate_per_s;    /* tokens added per second (= milli-tokens per ms) */
    int64_t burst;         /* capacity in tokens */
    int64_t last_ms;       /* monotonic */
};

/* Starts full (@burst tokens). */
void tb_ws_bucket_init(struct tb_ws_bucket *b, int64_t rate_per_s, int64_t burst, int64_t now_ms);
/* Refills for the time elapsed since the last call, then takes one token if there is
 * one. Returns false when the bucket is empty (the message is over the limit). */
bool tb_ws_bucket_take(struct tb_ws_bucket *b, int64_t now_ms);

/* ---- client requests ---------------------------------------------------------------- */
enum tb_ws_req_type { TB_WS_REQ_PING, TB_WS_REQ_SUBSCRIBE, TB_WS_REQ_UNSUBSCRIBE };

#define TB_WS_REASON_MAX 123 /* RFC 6455: close reason <= 123 bytes */

struct tb_ws_request {
    enum tb_ws_req_type type;
    /* subscribe/unsubscribe: the "data" string (owned), or NULL when "data" is missing,
     * not a string, or contains a NUL byte; then item_error says why. */
    char *item;
    const char *item_error;
    /* On failure: the close code (1008) and reason (printable ASCII, NUL-terminated). */
    int close_code;
    char reason[TB_WS_REASON_MAX + 1];
};

/*
 * Parse one complete client text message (@msg[@len] must be '\0'; UTF-8 validity is
 * checked by the caller). Returns 0 with @out filled, or -EINVAL with close_code and
 * reason set ("invalid JSON", "expected a JSON object", "missing type",
 * "type must be a string", "unknown type: NAME" with NAME sanitized and truncated),
 * or -ENOMEM. Call tb_ws_request_release() in every case.
 */
int tb_ws_parse_request(const char *msg, size_t len, struct tb_ws_request *out);
void tb_ws_request_release(struct tb_ws_request *r);

/* true if @s[0..@len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequence). */
bool tb_ws_utf8_valid(const char *s, size_t len);

/* ---- growable text buffer ---------------------------------------------------------- */
struct tb_ws_text {
    char *mem; /* NUL-terminated when len > 0 */
    size_t len, cap;
    bool oom;  /* a write failed: the content is incomplete */
};

void tb_ws_text_printf(struct tb_ws_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tb_ws_text_append(struct tb_ws_text *t, const char *s, size_t n);
void tb_ws_text_release(struct tb_ws_text *t);

/* ---- the bridge's own counters (service thread only) -------------------------------- */
#define TB_WS_MAX_CLOSE_CODES 32
#define TB_WS_MAX_HTTP_SERIES 64

enum tb_ws_route {
    TB_WS_ROUTE_WS,          /* /api/monitoring/ws (upgrade refusals, 101s are counted too) */
    TB_WS_ROUTE_METRICS_API, /* /api/monitoring/metrics */
    TB_WS_ROUTE_HEALTHZ,
    TB_WS_ROUTE_READYZ,
    TB_WS_ROUTE_PROMETHEUS,  /* /metrics */
    TB_WS_ROUTE_OTHER,       /* anything else (one series, to bound cardinality) */
    TB_WS_ROUTE_COUNT
};

const char *tb_ws_route_label(enum tb_ws_route r); /* the path label value */
enum tb_ws_route tb_ws_route_of(const char *path);

struct tb_ws_stats {
    uint64_t clients;            /* gauge: established WebSocket clients */
    uint64_t connections_total;  /* established since start */
    uint64_t messages_sent[TB_WS_KIND_COUNT];
    uint64_t bytes_sent;         /* WebSocket payload bytes */
    uint64_t dropped_metrics;    /* metrics superseded before they were written */
    uint64_t events_dropped;     /* events the mailbox dropped (reader wedged) */
    size_t close_count;
    struct { int code; uint64_t count; } closes[TB_WS_MAX_CLOSE_CODES];
    size_t http_count;
    struct { enum tb_ws_route route; int status; uint64_t count; } http[TB_WS_MAX_HTTP_SERIES];
};

/* Count a close with @code (0 = "none": the connection ended without a close frame;
 * recorded as 1006). Codes beyond TB_WS_MAX_CLOSE_CODES distinct ones are folded
 * into code 0 ("other"). */
void tb_ws_stats_close(struct tb_ws_stats *s, int code);
void tb_ws_stats_http(struct tb_ws_stats *s, enum tb_ws_route route, int status);

/*
 * Render the Prometheus text exposition (format 0.0.4) for @u (may be NULL: no cycle
 * yet) and @st at @now_ms (wall clock). Appends to @out; check out->oom.
 */
void tb_ws_prom_render(const struct tb_update *u, const struct tb_ws_stats *st, int64_t now_ms,
                       struct tb_ws_text *out);

/* Append @s as a Prometheus label value (escapes \ " and newline). */
void tb_ws_prom_escape(struct tb_ws_text *out, const char *s);

/* ---- HTTP routes (pure decision; the server does the I/O) ----------------------------- */
enum tb_ws_auth { TB_WS_AUTH_OK, TB_WS_AUTH_MISSING, TB_WS_AUTH_INVALID };

struct tb_ws_http_request {
    bool is_get;                   /* GET; every other method gets 405 on known routes */
    const char *path;              /* URI path, without the query string */
    enum tb_ws_auth auth;          /* result of the key check (OK when auth is disabled) */
    bool metrics_require_auth;     /* server.metrics_require_auth */
    bool stopping;                 /* shutdown in progress */
    const struct tb_update *latest; /* may be NULL: no collector cycle yet */
    const struct tb_status *empty_status; /* used when @latest is NULL */
    const struct tb_ws_stats *stats;
    int64_t now_ms;                /* wall clock */
};

enum {
    TB_WS_HTTP_WWW_AUTHENTICATE = 1 << 0, /* add "WWW-Authenticate: Bearer" */
    TB_WS_HTTP_ALLOW_GET = 1 << 1,        /* add "Allow: GET" (405) */
};

struct tb_ws_http_response {
    int status;
    const char *content_type;      /* static string */
    unsigned flags;                /* TB_WS_HTTP_* */
    enum tb_ws_route route;
    struct tb_ws_text body;        /* owned: tb_ws_text_release() */
};

/* Decide the response to a plain (non-upgrade) HTTP request. Returns 0 or -ENOMEM. */
int tb_ws_http_route(const struct tb_ws_http_request *req, struct tb_ws_http_response *resp);

/* {"error": message} with proper JSON escaping, into @out. */
void tb_ws_json_error(struct tb_ws_text *out, const char *message);

#endif
