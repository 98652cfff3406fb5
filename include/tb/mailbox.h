/*
 * mailbox.h - the hand-off from the collector thread to the service thread.
 *
 * Contract
 *   - The collector publishes one tb_update per cycle (successful or failed) with
 *     tb_mailbox_publish(); it never blocks on the reader beyond one short mutex
 *     section (pointer swap + event list move), so a slow reader never delays a cycle.
 *   - The reader takes everything with tb_mailbox_take(): the LATEST update (older
 *     ones it never saw are dropped: metrics are latest-wins) and ALL events published
 *     since its last take, in publication order (events are never dropped, up to
 *     TB_MAILBOX_MAX_EVENTS pending; beyond that the oldest are dropped and counted,
 *     which only happens if the reader thread is wedged).
 *   - After publishing, the mailbox calls the reader's wake function (set once, before
 *     the collector starts), e.g. lws_cancel_service(). It must be thread-safe.
 *   - Updates are immutable and refcounted; any thread may hold a reference.
 */
#ifndef TB_MAILBOX_H
#define TB_MAILBOX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "tb/events.h"
#include "tb/metrics.h"

#define TB_MAILBOX_MAX_EVENTS 100000

struct tb_update {
    atomic_int refs;
    uint64_t seq;                 /* 1, 2, 3 ... one per published cycle */
    struct tb_metrics *metrics;   /* last GOOD metrics (owned ref); NULL before the first */
    struct tb_status status;      /* this cycle's outcome */
};

struct tb_update *tb_update_new(struct tb_metrics *metrics /* ref taken */,
                                const struct tb_status *status);
struct tb_update *tb_update_ref(struct tb_update *u);
void tb_update_unref(struct tb_update *u); /* NULL is a no-op */

struct tb_mailbox {
    pthread_mutex_t lock;
    struct tb_update *latest;     /* guarded by lock */
    struct tb_event_list pending; /* guarded by lock */
    uint64_t events_dropped;      /* guarded by lock */
    uint64_t next_seq;            /* guarded by lock */
    void (*wake)(void *arg);      /* set before the collector starts; then read-only */
    void *wake_arg;
};

int tb_mailbox_init(struct tb_mailbox *mb);
void tb_mailbox_release(struct tb_mailbox *mb);
void tb_mailbox_set_wake(struct tb_mailbox *mb, void (*wake)(void *), void *arg);

/* Publish: takes ownership of @u (assigns u->seq) and moves all of @events (left
 * empty). Then calls wake. */
void tb_mailbox_publish(struct tb_mailbox *mb, struct tb_update *u, struct tb_event_list *events);

/*
 * Take: *latest receives a new reference to the latest update if its seq is greater
 * than @seen_seq, else NULL. Pending events are moved onto the end of @events.
 * Returns the number of events dropped since the last take.
 */
uint64_t tb_mailbox_take(struct tb_mailbox *mb, uint64_t seen_seq, struct tb_update **latest,
                         struct tb_event_list *events);

/* A new reference to the latest update (or NULL), without taking events. */
struct tb_update *tb_mailbox_peek(struct tb_mailbox *mb);

#endif
