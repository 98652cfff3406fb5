/*
 * mailbox.c - collector -> service thread hand-off. See include/tb/mailbox.h.
 *
 * One mutex guards three fields; every critical section is a pointer swap or an
 * event-list move (O(events), no allocation beyond the list's growth), so neither side
 * can delay the other for long. The wake callback runs outside the lock.
 */
#include "tb/mailbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct tb_update *tb_update_new(struct tb_metrics *metrics, const struct tb_status *status)
{
    struct tb_update *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    atomic_init(&u->refs, 1);
    u->metrics = metrics ? tb_metrics_ref(metrics) : NULL;
    if (status)
        u->status = *status;
    return u;
}

struct tb_update *tb_update_ref(struct tb_update *u)
{
    if (u)
        atomic_fetch_add_explicit(&u->refs, 1, memory_order_relaxed);
    return u;
}

void tb_update_unref(struct tb_update *u)
{
    if (!u)
        return;
    if (atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) != 1)
        return;
    tb_metrics_unref(u->metrics);
    free(u);
}

int tb_mailbox_init(struct tb_mailbox *mb)
{
    memset(mb, 0, sizeof(*mb));
    tb_event_list_init(&mb->pending);
    int rc = pthread_mutex_init(&mb->lock, NULL);
    return rc ? -rc : 0;
}

void tb_mailbox_release(struct tb_mailbox *mb)
{
    tb_update_unref(mb->latest);
    mb->latest = NULL;
    tb_event_list_clear(&mb->pending);
    pthread_mutex_destroy(&mb->lock);
}

void tb_mailbox_set_wake(struct tb_mailbox *mb, void (*wake)(void *), void *arg)
{
    mb->wake = wake;
    mb->wake_arg = arg;
}

/* Drop the oldest pending events beyond TB_MAILBOX_MAX_EVENTS. Caller holds lock. */
static void trim_pending(struct tb_mailbox *mb)
{
    struct tb_event_list *l = &mb->pending;
    if (l->count <= TB_MAILBOX_MAX_EVENTS)
        return;
    size_t drop = l->count - TB_MAILBOX_MAX_EVENTS;
    for (size_t i = 0; i < drop; i++) {
        free(l->items[i].name);
        free(l->items[i].state);
    }
    memmove(l->items, l->items + drop, (l->count - drop) * sizeof(*l->items));
    l->count -= drop;
    mb->events_dropped += drop;
}

void tb_mailbox_publish(struct tb_mailbox *mb, struct tb_update *u, struct tb_event_list *events)
{
    struct tb_update *old;
    pthread_mutex_lock(&mb->lock);
    u->seq = ++mb->next_seq;
    old = mb->latest;
    mb->latest = u;
    if (events && events->count) {
        if (tb_event_list_move(&mb->pending, events) != 0) {
            /* Out of memory growing the list: these events are lost; say so. */
            mb->events_dropped += events->count;
            tb_event_list_clear(events);
        }
        trim_pending(mb);
    }
    pthread_mutex_unlock(&mb->lock);
    tb_update_unref(old);
    if (mb->wake)
        mb->wake(mb->wake_arg);
}

uint64_t tb_mailbox_take(struct tb_mailbox *mb, uint64_t seen_seq, struct tb_update **latest,
                         struct tb_event_list *events)
{
    uint64_t dropped;
    pthread_mutex_lock(&mb->lock);
    *latest = (mb->latest && mb->latest->seq > seen_seq) ? tb_update_ref(mb->latest) : NULL;
    if (mb->pending.count && tb_event_list_move(events, &mb->pending) != 0) {
        /* Could not grow the reader's list: leave the events pending for next time. */
    }
    dropped = mb->events_dropped;
    mb->events_dropped = 0;
    pthread_mutex_unlock(&mb->lock);
    return dropped;
}

struct tb_update *tb_mailbox_peek(struct tb_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    struct tb_update *u = tb_update_ref(mb->latest);
    pthread_mutex_unlock(&mb->lock);
    return u;
}
