/*
 * frames.c - shared frames, per-client frame queues and the per-key frame cache.
 * PURE (libc only). See include/tb/ws_internal.h.
 *
 * Design
 *   A frame is one encoded server->client message. The service thread encodes each
 *   message once and hands REFERENCES to every client that must receive it; the
 *   memory is freed when the last client has written or dropped it. All of this runs
 *   on the lws service thread, so the refcount is a plain integer.
 *
 *   A client's event queue is a ring of frame pointers that grows on demand (most
 *   clients hold zero or one frame, so nothing is preallocated) up to a hard maximum;
 *   pushing onto a full queue fails with -ENOSPC and the caller closes the client.
 *
 *   The cache maps a subscription key (tb_subs_key()) to the metrics frame encoded for
 *   that key from the current update: clients with equal keys share one frame. It is a
 *   small open-addressing hash table (FNV-1a, linear probing, load <= 1/2) because a
 *   server may see thousands of distinct keys per update.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tb/ws_internal.h"

static const char *const kind_names[TB_WS_KIND_COUNT] = {
    [TB_WS_KIND_METRICS] = "metrics",
    [TB_WS_KIND_TOPIC_CREATED] = "topic_created",
    [TB_WS_KIND_TOPIC_DELETED] = "topic_deleted",
    [TB_WS_KIND_GROUP_UPDATED] = "group_updated",
    [TB_WS_KIND_PONG] = "pong",
    [TB_WS_KIND_SUBSCRIBED] = "subscribed",
    [TB_WS_KIND_UNSUBSCRIBED] = "unsubscribed",
    [TB_WS_KIND_ERROR] = "error",
};

const char *tb_ws_kind_name(enum tb_ws_kind k)
{
    return (unsigned)k < TB_WS_KIND_COUNT ? kind_names[k] : "unknown";
}

enum tb_ws_kind tb_ws_kind_of_event(enum tb_event_type t)
{
    switch (t) {
    case TB_EVENT_TOPIC_CREATED: return TB_WS_KIND_TOPIC_CREATED;
    case TB_EVENT_TOPIC_DELETED: return TB_WS_KIND_TOPIC_DELETED;
    case TB_EVENT_GROUP_UPDATED: return TB_WS_KIND_GROUP_UPDATED;
    }
    return TB_WS_KIND_GROUP_UPDATED;
}

/* ---- frames ------------------------------------------------------------------------ */

struct tb_ws_frame *tb_ws_frame_new(enum tb_ws_kind kind, struct tb_buf *buf)
{
    struct tb_ws_frame *f = malloc(sizeof(*f));
    if (!f) {
        tb_buf_release(buf);
        return NULL;
    }
    f->refs = 1;
    f->kind = kind;
    f->buf = *buf;
    buf->mem = NULL;
    buf->len = 0;
    return f;
}

struct tb_ws_frame *tb_ws_frame_ref(struct tb_ws_frame *f)
{
    if (f)
        f->refs++;
    return f;
}

void tb_ws_frame_unref(struct tb_ws_frame *f)
{
    if (!f)
        return;
    if (--f->refs > 0)
        return;
    tb_buf_release(&f->buf);
    free(f);
}

/* ---- queues ------------------------------------------------------------------------ */

void tb_ws_fqueue_init(struct tb_ws_fqueue *q, size_t max)
{
    memset(q, 0, sizeof(*q));
    q->max = max ? max : 1;
}

static int fqueue_grow(struct tb_ws_fqueue *q)
{
    size_t ncap = q->cap ? q->cap * 2 : 4;
    if (ncap > q->max)
        ncap = q->max;
    struct tb_ws_frame **n = malloc(ncap * sizeof(*n));
    if (!n)
        return -ENOMEM;
    /* Unwrap the ring into the new array. */
    for (size_t i = 0; i < q->count; i++)
        n[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = n;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

int tb_ws_fqueue_push(struct tb_ws_fqueue *q, struct tb_ws_frame *f)
{
    if (q->count >= q->max)
        return -ENOSPC;
    if (q->count == q->cap) {
        int rc = fqueue_grow(q);
        if (rc)
            return rc;
    }
    q->items[(q->head + q->count) % q->cap] = tb_ws_frame_ref(f);
    q->count++;
    return 0;
}

struct tb_ws_frame *tb_ws_fqueue_pop(struct tb_ws_fqueue *q)
{
    if (!q->count)
        return NULL;
    struct tb_ws_frame *f = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->count--;
    if (!q->count)
        q->head = 0;
    return f;
}

void tb_ws_fqueue_clear(struct tb_ws_fqueue *q)
{
    struct tb_ws_frame *f;
    while ((f = tb_ws_fqueue_pop(q)))
        tb_ws_frame_unref(f);
}

void tb_ws_fqueue_release(struct tb_ws_fqueue *q)
{
    tb_ws_fqueue_clear(q);
    free(q->items);
    q->items = NULL;
    q->cap = 0;
}

/* ---- cache ------------------------------------------------------------------------- */

static uint64_t hash_key(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void tb_ws_fcache_init(struct tb_ws_fcache *c) { memset(c, 0, sizeof(*c)); }

static struct tb_ws_fcache_slot *find_slot(struct tb_ws_fcache_slot *slots, size_t cap,
                                           const char *key)
{
    size_t i = (size_t)hash_key(key) & (cap - 1);
    for (;;) {
        if (!slots[i].key || strcmp(slots[i].key, key) == 0)
            return &slots[i];
        i = (i + 1) & (cap - 1);
    }
}

struct tb_ws_frame *tb_ws_fcache_get(const struct tb_ws_fcache *c, const char *key)
{
    if (!c->count)
        return NULL;
    struct tb_ws_fcache_slot *s = find_slot(c->slots, c->cap, key);
    return s->key ? s->frame : NULL;
}

static int fcache_grow(struct tb_ws_fcache *c)
{
    size_t ncap = c->cap ? c->cap * 2 : 16;
    struct tb_ws_fcache_slot *n = calloc(ncap, sizeof(*n));
    if (!n)
        return -ENOMEM;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].key)
            *find_slot(n, ncap, c->slots[i].key) = c->slots[i];
    free(c->slots);
    c->slots = n;
    c->cap = ncap;
    return 0;
}

int tb_ws_fcache_put(struct tb_ws_fcache *c, const char *key, struct tb_ws_frame *f)
{
    if ((c->count + 1) * 2 > c->cap) {
        int rc = fcache_grow(c);
        if (rc)
            return rc;
    }
    struct tb_ws_fcache_slot *s = find_slot(c->slots, c->cap, key);
    if (s->key) {
        tb_ws_frame_ref(f);
        tb_ws_frame_unref(s->frame);
        s->frame = f;
        return 0;
    }
    char *copy = strdup(key);
    if (!copy)
        return -ENOMEM;
    s->key = copy;
    s->frame = tb_ws_frame_ref(f);
    c->count++;
    return 0;
}

void tb_ws_fcache_clear(struct tb_ws_fcache *c)
{
    if (!c->count)
        return;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].key)
            continue;
        free(c->slots[i].key);
        tb_ws_frame_unref(c->slots[i].frame);
        c->slots[i].key = NULL;
        c->slots[i].frame = NULL;
    }
    c->count = 0;
}

void tb_ws_fcache_release(struct tb_ws_fcache *c)
{
    tb_ws_fcache_clear(c);
    free(c->slots);
    c->slots = NULL;
    c->cap = 0;
}
