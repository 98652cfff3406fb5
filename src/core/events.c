/*
 * events.c - topic_created / topic_deleted / group_updated synthesized from successive
 * complete snapshots. See include/tb/events.h for the rules.
 *
 * Design
 *   The tracker keeps its own sorted arrays of what it knows (topics: name, partition
 *   count, consecutive misses; groups: id, last reported state and members, misses).
 *   One observation is a merge walk of the known array against the snapshot's sorted
 *   array: O(n) comparisons plus allocations for what is new. Deletions, creations and
 *   group updates are collected in three local lists in name order, then concatenated,
 *   which gives the contract's deterministic order.
 *   All-or-nothing: the next known arrays and the events are built on the side; only
 *   after every allocation succeeded (including room in @out) are they swapped in.
 *   Names are shared between the old and the new arrays of one observation (moved, not
 *   copied); the swap frees only what the new arrays no longer reference.
 *   Single-threaded: a tracker belongs to the collector thread.
 */
#include "tb/events.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ---- event lists ------------------------------------------------------------- */

void tb_event_list_init(struct tb_event_list *l)
{
    l->count = 0;
    l->cap = 0;
    l->items = NULL;
}

static int list_reserve(struct tb_event_list *l, size_t extra)
{
    if (extra > SIZE_MAX / sizeof(struct tb_event) - l->count)
        return -ENOMEM;
    size_t need = l->count + extra;
    if (need <= l->cap)
        return 0;
    size_t ncap = l->cap ? l->cap : 16;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 / sizeof(struct tb_event) ? need : ncap * 2;
    struct tb_event *p = realloc(l->items, ncap * sizeof(*p));
    if (!p)
        return -ENOMEM;
    l->items = p;
    l->cap = ncap;
    return 0;
}

static void event_free(struct tb_event *e)
{
    free(e->name);
    free(e->state);
}

int tb_event_list_push(struct tb_event_list *l, const struct tb_event *ev)
{
    if (list_reserve(l, 1) < 0)
        return -ENOMEM;
    struct tb_event e = *ev;
    e.name = ev->name ? strdup(ev->name) : NULL;
    e.state = ev->state ? strdup(ev->state) : NULL;
    if ((ev->name && !e.name) || (ev->state && !e.state)) {
        event_free(&e);
        return -ENOMEM;
    }
    l->items[l->count++] = e;
    return 0;
}

int tb_event_list_move(struct tb_event_list *to, struct tb_event_list *from)
{
    if (from->count == 0)
        return 0;
    if (to->count == 0) {
        /* swap arrays: no copy, @from keeps @to's (empty) buffer */
        struct tb_event *items = to->items;
        size_t cap = to->cap;
        to->items = from->items;
        to->cap = from->cap;
        to->count = from->count;
        from->items = items;
        from->cap = cap;
        from->count = 0;
        return 0;
    }
    if (list_reserve(to, from->count) < 0)
        return -ENOMEM;
    memcpy(to->items + to->count, from->items, from->count * sizeof(*from->items));
    to->count += from->count;
    from->count = 0;
    return 0;
}

void tb_event_list_clear(struct tb_event_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        event_free(&l->items[i]);
    free(l->items);
    tb_event_list_init(l);
}

const char *tb_event_type_name(enum tb_event_type t)
{
    switch (t) {
    case TB_EVENT_TOPIC_CREATED:
        return "topic_created";
    case TB_EVENT_TOPIC_DELETED:
        return "topic_deleted";
    case TB_EVENT_GROUP_UPDATED:
        return "group_updated";
    }
    return "unknown";
}

/* ---- tracker ----------------------------------------------------------------- */

struct known_topic {
    char *name;
    size_t partitions;
    int misses;
};

struct known_group {
    char *id;
    char *state;
    int32_t members;
    int misses;
};

struct tb_tracker {
    int topic_confirm, group_confirm;
    bool baseline_done;
    size_t topic_count;
    struct known_topic *topics; /* sorted by name */
    size_t group_count;
    struct known_group *groups; /* sorted by id */
};

struct tb_tracker *tb_tracker_new(int topic_confirm, int group_confirm)
{
    struct tb_tracker *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->topic_confirm = topic_confirm < 1 ? 1 : topic_confirm;
    t->group_confirm = group_confirm < 1 ? 1 : group_confirm;
    return t;
}

void tb_tracker_free(struct tb_tracker *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->topic_count; i++)
        free(t->topics[i].name);
    free(t->topics);
    for (size_t i = 0; i < t->group_count; i++) {
        free(t->groups[i].id);
        free(t->groups[i].state);
    }
    free(t->groups);
    free(t);
}

/* This observation's events, per kind (each list deep-copies its strings). */
struct pending {
    struct tb_event_list deleted, created, groups;
};

static void pending_init(struct pending *p)
{
    tb_event_list_init(&p->deleted);
    tb_event_list_init(&p->created);
    tb_event_list_init(&p->groups);
}

static void pending_clear(struct pending *p)
{
    tb_event_list_clear(&p->deleted);
    tb_event_list_clear(&p->created);
    tb_event_list_clear(&p->groups);
}

static int push_topic(struct tb_event_list *l, enum tb_event_type type, const char *name,
                      size_t partitions, int64_t time_s)
{
    struct tb_event e = {.type = type, .name = (char *)name,
                         .partitions = (int32_t)partitions, .time_s = time_s};
    return tb_event_list_push(l, &e);
}

static int push_group(struct tb_event_list *l, const char *id, const char *state,
                      int32_t members, int64_t time_s)
{
    struct tb_event e = {.type = TB_EVENT_GROUP_UPDATED, .name = (char *)id,
                         .state = (char *)state, .members = members, .time_s = time_s};
    return tb_event_list_push(l, &e);
}

/* What becomes of an old known entry's strings at commit. */
enum fate {
    FATE_DROP = 0,     /* entry gone: free its strings */
    FATE_KEEP,         /* strings moved to the new array */
    FATE_KEEP_ID,      /* group id moved; its state was replaced: free the old state */
};

/*
 * The next known arrays, built on the side. A string in them is either moved from the
 * old array (see enum fate) or freshly allocated (fresh_* set), so that a failure frees
 * exactly the fresh ones and a commit frees exactly the old ones not moved.
 */
struct next_state {
    size_t topic_count, topic_cap;
    struct known_topic *topics;
    bool *topic_fresh;
    size_t group_count, group_cap;
    struct known_group *groups;
    bool *group_fresh_id, *group_fresh_state;
    unsigned char *topic_fate; /* indexed like the tracker's old arrays */
    unsigned char *group_fate;
};

static void next_state_free(struct next_state *nx, bool failed)
{
    if (failed && nx->topics && nx->topic_fresh) {
        for (size_t i = 0; i < nx->topic_cap; i++)
            if (nx->topic_fresh[i])
                free(nx->topics[i].name);
    }
    if (failed && nx->groups && nx->group_fresh_id && nx->group_fresh_state) {
        for (size_t i = 0; i < nx->group_cap; i++) {
            if (nx->group_fresh_id[i])
                free(nx->groups[i].id);
            if (nx->group_fresh_state[i])
                free(nx->groups[i].state);
        }
    }
    if (failed) {
        free(nx->topics);
        free(nx->groups);
    }
    free(nx->topic_fresh);
    free(nx->group_fresh_id);
    free(nx->group_fresh_state);
    free(nx->topic_fate);
    free(nx->group_fate);
}

static int next_state_alloc(struct next_state *nx, const struct tb_tracker *t,
                            const struct tb_snapshot *s)
{
    /* +1: calloc(0) may return NULL; one spare slot costs nothing */
    nx->topic_cap = t->topic_count + s->topic_count;
    nx->group_cap = t->group_count + s->group_count;
    nx->topics = calloc(nx->topic_cap + 1, sizeof(*nx->topics));
    nx->topic_fresh = calloc(nx->topic_cap + 1, sizeof(bool));
    nx->groups = calloc(nx->group_cap + 1, sizeof(*nx->groups));
    nx->group_fresh_id = calloc(nx->group_cap + 1, sizeof(bool));
    nx->group_fresh_state = calloc(nx->group_cap + 1, sizeof(bool));
    nx->topic_fate = calloc(t->topic_count + 1, 1);
    nx->group_fate = calloc(t->group_count + 1, 1);
    if (!nx->topics || !nx->topic_fresh || !nx->groups || !nx->group_fresh_id ||
        !nx->group_fresh_state || !nx->topic_fate || !nx->group_fate)
        return -ENOMEM;
    return 0;
}

/* 3-way comparison of a merge walk where either side may be exhausted. */
static int walk_cmp(const char *known, const char *now)
{
    if (!known)
        return 1;
    if (!now)
        return -1;
    return strcmp(known, now);
}

static int observe_topics(const struct tb_tracker *t, const struct tb_snapshot *s,
                          struct next_state *nx, struct pending *ev, int64_t time_s)
{
    size_t i = 0, j = 0;
    while (i < t->topic_count || j < s->topic_count) {
        const struct known_topic *k = i < t->topic_count ? &t->topics[i] : NULL;
        const struct tb_topic *st = j < s->topic_count ? &s->topics[j] : NULL;
        int r = walk_cmp(k ? k->name : NULL, st ? st->name : NULL);
        if (r < 0 && k) { /* known, absent now */
            if (k->misses + 1 >= t->topic_confirm) {
                if (push_topic(&ev->deleted, TB_EVENT_TOPIC_DELETED, k->name, 0, time_s) < 0)
                    return -ENOMEM;
            } else {
                struct known_topic *n = &nx->topics[nx->topic_count++];
                *n = *k;
                n->misses = k->misses + 1;
                nx->topic_fate[i] = FATE_KEEP;
            }
            i++;
        } else if (r > 0 && st) { /* new */
            if (push_topic(&ev->created, TB_EVENT_TOPIC_CREATED, st->name,
                           st->partition_count, time_s) < 0)
                return -ENOMEM;
            struct known_topic *n = &nx->topics[nx->topic_count];
            n->name = strdup(st->name);
            if (!n->name)
                return -ENOMEM;
            nx->topic_fresh[nx->topic_count++] = true;
            n->partitions = st->partition_count;
            n->misses = 0;
            j++;
        } else if (k && st) { /* in both */
            if (st->partition_count < k->partitions) {
                /* fewer partitions: deleted and recreated between two polls */
                if (push_topic(&ev->deleted, TB_EVENT_TOPIC_DELETED, k->name, 0, time_s) < 0 ||
                    push_topic(&ev->created, TB_EVENT_TOPIC_CREATED, st->name,
                               st->partition_count, time_s) < 0)
                    return -ENOMEM;
            }
            struct known_topic *n = &nx->topics[nx->topic_count++];
            n->name = k->name;
            n->partitions = st->partition_count;
            n->misses = 0;
            nx->topic_fate[i] = FATE_KEEP;
            i++;
            j++;
        } else {
            break; /* unreachable: the loop condition keeps one side non-empty */
        }
    }
    return 0;
}

static int observe_groups(const struct tb_tracker *t, const struct tb_snapshot *s,
                          struct next_state *nx, struct pending *ev, int64_t time_s)
{
    size_t i = 0, j = 0;
    while (i < t->group_count || j < s->group_count) {
        const struct known_group *k = i < t->group_count ? &t->groups[i] : NULL;
        const struct tb_group *sg = j < s->group_count ? &s->groups[j] : NULL;
        int r = walk_cmp(k ? k->id : NULL, sg ? sg->id : NULL);
        if (r < 0 && k) { /* known, absent now */
            if (k->misses + 1 >= t->group_confirm) {
                if (push_group(&ev->groups, k->id, "Dead", 0, time_s) < 0)
                    return -ENOMEM;
            } else {
                struct known_group *n = &nx->groups[nx->group_count++];
                *n = *k;
                n->misses = k->misses + 1;
                nx->group_fate[i] = FATE_KEEP;
            }
            i++;
        } else if (r > 0 && sg) { /* appeared */
            if (push_group(&ev->groups, sg->id, sg->state, sg->members, time_s) < 0)
                return -ENOMEM;
            size_t at = nx->group_count;
            struct known_group *n = &nx->groups[at];
            n->id = strdup(sg->id);
            nx->group_fresh_id[at] = n->id != NULL;
            n->state = strdup(sg->state);
            nx->group_fresh_state[at] = n->state != NULL;
            if (!n->id || !n->state)
                return -ENOMEM;
            n->members = sg->members;
            n->misses = 0;
            nx->group_count++;
            j++;
        } else if (k && sg) { /* in both */
            size_t at = nx->group_count;
            struct known_group *n = &nx->groups[at];
            n->id = k->id;
            n->state = k->state;
            n->members = sg->members;
            n->misses = 0;
            nx->group_fate[i] = FATE_KEEP;
            bool state_changed = strcmp(k->state, sg->state) != 0;
            if (state_changed || k->members != sg->members) {
                if (push_group(&ev->groups, sg->id, sg->state, sg->members, time_s) < 0)
                    return -ENOMEM;
            }
            if (state_changed) {
                n->state = strdup(sg->state);
                if (!n->state)
                    return -ENOMEM;
                nx->group_fresh_state[at] = true;
                nx->group_fate[i] = FATE_KEEP_ID;
            }
            nx->group_count++;
            i++;
            j++;
        } else {
            break; /* unreachable: the loop condition keeps one side non-empty */
        }
    }
    return 0;
}

/* Moves @from's events onto @to, whose capacity was reserved beforehand. */
static void append_reserved(struct tb_event_list *to, struct tb_event_list *from)
{
    if (from->count == 0)
        return;
    assert(to->cap - to->count >= from->count);
    memcpy(to->items + to->count, from->items, from->count * sizeof(*from->items));
    to->count += from->count;
    from->count = 0;
}

int tb_tracker_observe(struct tb_tracker *t, const struct tb_snapshot *snap,
                       struct tb_event_list *out)
{
    int64_t time_s = snap->taken_ms / 1000;
    struct pending ev;
    struct next_state nx = {0};
    pending_init(&ev);

    if (next_state_alloc(&nx, t, snap) < 0)
        goto fail;
    if (observe_topics(t, snap, &nx, &ev, time_s) < 0)
        goto fail;
    if (observe_groups(t, snap, &nx, &ev, time_s) < 0)
        goto fail;
    if (!t->baseline_done)
        pending_clear(&ev); /* the first snapshot is the baseline: no events */
    if (list_reserve(out, ev.deleted.count + ev.created.count + ev.groups.count) < 0)
        goto fail;

    /* ---- commit: nothing below can fail (room in @out is reserved) ---- */
    for (size_t i = 0; i < t->topic_count; i++)
        if (nx.topic_fate[i] == FATE_DROP)
            free(t->topics[i].name);
    for (size_t i = 0; i < t->group_count; i++) {
        if (nx.group_fate[i] == FATE_DROP)
            free(t->groups[i].id);
        if (nx.group_fate[i] != FATE_KEEP)
            free(t->groups[i].state);
    }
    free(t->topics);
    free(t->groups);
    t->topics = nx.topics;
    t->topic_count = nx.topic_count;
    t->groups = nx.groups;
    t->group_count = nx.group_count;
    t->baseline_done = true;
    append_reserved(out, &ev.deleted);
    append_reserved(out, &ev.created);
    append_reserved(out, &ev.groups);
    next_state_free(&nx, false);
    pending_clear(&ev);
    return 0;

fail:
    next_state_free(&nx, true);
    pending_clear(&ev);
    return -ENOMEM;
}
