/*
 * events.h - synthesizing topic_created / topic_deleted / group_updated from
 * successive snapshots. PURE.
 *
 * Rules (docs/protocol.md states them for users):
 *   - The first snapshot observed is the baseline: no events for what already exists.
 *   - Only COMPLETE snapshots may be observed. A failed or partial cycle is never passed
 *     to tb_tracker_observe(): it yields no events and changes no state.
 *   - topic_created {name, partitions}: a topic present now and unknown before.
 *   - topic_deleted {name}: a known topic absent from @topic_confirm consecutive
 *     observed snapshots (a topic that reappears before that resets its count).
 *   - A known topic whose partition count DECREASED was deleted and recreated between
 *     two polls: topic_deleted then topic_created (partitions can only grow in place).
 *   - group_updated {groupId, state, members}: a group that appears; a group whose
 *     state or member count changed; a known group absent from @group_confirm
 *     consecutive snapshots, reported with state "Dead" and members 0.
 *   - Order within one observation: topic_deleted (by name), topic_created (by name),
 *     group_updated (by group id). Deterministic.
 *   - Topic/group filters are applied by the collector BEFORE the snapshot is built, so
 *     filtered-out names never produce events.
 *
 * Decisions (core, implementation notes):
 *   - A known group that is missing for fewer than @group_confirm snapshots and then
 *     reappears yields group_updated only if its state or member count differs from the
 *     last values reported. Likewise a returning topic yields nothing unless its
 *     partition count decreased (then topic_deleted + topic_created).
 *   - tb_tracker_new() treats a confirm count < 1 as 1 (deleted on the first miss).
 *   - tb_event_list_clear() frees the strings AND the array (count = cap = 0); it is
 *     also the list's destructor. tb_event_list_move() may reuse @from's array.
 *   - tb_tracker_observe() is all-or-nothing: on -ENOMEM neither the tracker nor @out
 *     changed.
 */
#ifndef TB_EVENTS_H
#define TB_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "tb/snapshot.h"

enum tb_event_type {
    TB_EVENT_TOPIC_CREATED,
    TB_EVENT_TOPIC_DELETED,
    TB_EVENT_GROUP_UPDATED,
};

struct tb_event {
    enum tb_event_type type;
    char *name;          /* topic name or group id (owned) */
    int32_t partitions;  /* topic_created */
    char *state;         /* group_updated (owned) */
    int32_t members;     /* group_updated */
    int64_t time_s;      /* Unix seconds: the snapshot's taken_ms / 1000 */
};

struct tb_event_list {
    size_t count, cap;
    struct tb_event *items;
};

void tb_event_list_init(struct tb_event_list *l);
/* Deep-copies @ev onto the end of @l. Returns 0 or -ENOMEM. */
int tb_event_list_push(struct tb_event_list *l, const struct tb_event *ev);
/* Moves every event of @from onto the end of @to; @from is left empty. */
int tb_event_list_move(struct tb_event_list *to, struct tb_event_list *from);
void tb_event_list_clear(struct tb_event_list *l); /* frees items, keeps it usable */

const char *tb_event_type_name(enum tb_event_type t); /* "topic_created", ... */

struct tb_tracker;

struct tb_tracker *tb_tracker_new(int topic_confirm, int group_confirm);
void tb_tracker_free(struct tb_tracker *t); /* NULL is a no-op */

/*
 * Observe a complete, finalized snapshot. Appends this observation's events to @out
 * (in the order above). Borrows @snap (copies what it keeps). Returns 0 or -ENOMEM
 * (on -ENOMEM the tracker state is unchanged).
 */
int tb_tracker_observe(struct tb_tracker *t, const struct tb_snapshot *snap,
                       struct tb_event_list *out);

#endif
