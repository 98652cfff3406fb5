/*
 * metrics.c - consumer lag, produce/fetch rates and collector status.
 * See include/tb/metrics.h for the rules (lag floor, expired, rate availability).
 *
 * Design
 *   Everything is derived from finalized (sorted) snapshots with merge walks and binary
 *   searches, never nested scans: at 10,000 partitions and 1,000 groups a cycle costs
 *   O(P + O log T) where O is the number of committed offsets and T the topic count.
 *     - produce rate: per topic, a merge walk of the cur/prev partition arrays (both
 *       sorted by id), after one bsearch of the topic in @prev.
 *     - fetch rate: the groups of @cur and @prev are walked in id order; for each group
 *       present (and fresh) in both, its offset arrays (sorted by topic, partition) are
 *       merged; each run of one topic costs one bsearch in @cur, whose index selects
 *       the per-topic accumulator.
 *     - lag: each group's offsets are walked run by run (one topic bsearch per run);
 *       the partition lookup is O(1) on dense ids.
 *   Memory: the public struct tb_metrics is embedded in a private one that also owns
 *   two flat arrays (all topic lags, all partition lags), so a whole metrics object is
 *   4 allocations regardless of the cluster size; tb_group_lag/tb_topic_lag point into
 *   them. Names are borrowed from the snapshot, which the metrics keep a reference on.
 */
#include "tb/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct metrics_impl {
    struct tb_metrics pub;          /* first: the public pointer is the impl pointer */
    struct tb_topic_lag *all_topics;
    struct tb_partition_lag *all_parts;
};

static struct metrics_impl *impl_of(struct tb_metrics *m)
{
    return (struct metrics_impl *)(void *)m;
}

static void metrics_free(struct tb_metrics *m)
{
    struct metrics_impl *im = impl_of(m);
    free(im->all_parts);
    free(im->all_topics);
    free(m->groups);
    free(m->topics);
    tb_snapshot_unref(m->snap);
    free(im);
}

static bool group_fresh(const struct tb_group *g)
{
    return g->offsets_known && !g->offsets_carried;
}

/* Produce rate of one topic: returns false when unavailable (new topic, hwm went down). */
static bool produce_delta(const struct tb_topic *cur, const struct tb_topic *prev,
                          int64_t *delta)
{
    int64_t sum = 0;
    size_t i = 0, j = 0;
    while (i < cur->partition_count && j < prev->partition_count) {
        const struct tb_partition *c = &cur->partitions[i], *p = &prev->partitions[j];
        if (c->id < p->id) {
            i++;
        } else if (c->id > p->id) {
            j++;
        } else {
            if (c->high_watermark >= 0 && p->high_watermark >= 0) {
                if (c->high_watermark < p->high_watermark)
                    return false; /* deleted and recreated: never a negative rate */
                sum += c->high_watermark - p->high_watermark;
            }
            i++;
            j++;
        }
    }
    *delta = sum;
    return true;
}

/* Bytes appended to one topic's logs (header rule): false when unavailable. */
static bool bytes_delta(const struct tb_topic *cur, const struct tb_topic *prev, int64_t *delta)
{
    int64_t sum = 0;
    size_t i = 0, j = 0;
    while (i < cur->partition_count && j < prev->partition_count) {
        const struct tb_partition *c = &cur->partitions[i], *p = &prev->partitions[j];
        if (c->id < p->id) {
            if (c->log_bytes >= 0)
                return false; /* a new partition hosted here */
            i++;
        } else if (c->id > p->id) {
            if (p->log_bytes >= 0)
                return false; /* a partition gone from here */
            j++;
        } else {
            if ((c->log_bytes >= 0) != (p->log_bytes >= 0))
                return false; /* the replica moved in or out */
            if (c->log_bytes >= 0) {
                if (c->log_bytes < p->log_bytes)
                    return false; /* retention/compaction/recreation: appended unknown */
                sum += c->log_bytes - p->log_bytes;
            }
            i++;
            j++;
        }
    }
    for (; i < cur->partition_count; i++)
        if (cur->partitions[i].log_bytes >= 0)
            return false;
    for (; j < prev->partition_count; j++)
        if (prev->partitions[j].log_bytes >= 0)
            return false;
    *delta = sum;
    return true;
}

/* Adds to @acc[topic index in @cur] the committed deltas of one group present in both. */
static void fetch_deltas(const struct tb_snapshot *cur, const struct tb_group *gc,
                         const struct tb_group *gp, int64_t *acc)
{
    size_t i = 0, j = 0;
    const char *run_topic = NULL;
    const struct tb_topic *run = NULL;
    while (i < gc->offset_count && j < gp->offset_count) {
        const struct tb_group_offset *c = &gc->offsets[i], *p = &gp->offsets[j];
        int r = strcmp(c->topic, p->topic);
        if (r == 0)
            r = c->partition < p->partition ? -1 : c->partition > p->partition;
        if (r < 0) {
            i++;
            continue;
        }
        if (r > 0) {
            j++;
            continue;
        }
        if (!run_topic || strcmp(run_topic, c->topic) != 0) {
            run_topic = c->topic;
            run = tb_snapshot_find_topic(cur, c->topic);
        }
        if (run && c->committed > p->committed && tb_topic_find_partition(run, c->partition))
            acc[run - cur->topics] += c->committed - p->committed;
        i++;
        j++;
    }
}

/* Lag of one partition, per the header's rule. */
static void partition_lag(const struct tb_partition *p, int64_t committed,
                          struct tb_partition_lag *out)
{
    out->partition = p->id;
    out->committed = committed;
    out->end = p->high_watermark;
    out->log_start = p->log_start;
    int64_t from = committed;
    out->expired = p->log_start >= 0 && committed < p->log_start;
    if (out->expired)
        from = p->log_start;
    if (p->high_watermark < 0) {
        out->end_unknown = true;
        out->lag = 0;
    } else {
        out->end_unknown = false;
        out->lag = p->high_watermark > from ? p->high_watermark - from : 0;
    }
}

/* Fills the lag of one group, using @topics/@parts as storage; returns how much of each
 * it used. */
static void group_lag(const struct tb_snapshot *s, const struct tb_group *g,
                      struct tb_group_lag *gl, struct tb_topic_lag *topics,
                      struct tb_partition_lag *parts, size_t *used_topics, size_t *used_parts)
{
    gl->group_id = g->id;
    gl->state = g->state;
    gl->members = g->members;
    gl->offsets_known = g->offsets_known;
    gl->offsets_carried = g->offsets_carried;
    gl->total_lag = 0;
    gl->topic_count = 0;
    gl->topics = NULL;
    size_t nt = 0, np = 0;
    if (g->offsets_known) {
        size_t i = 0;
        while (i < g->offset_count) {
            const char *name = g->offsets[i].topic;
            size_t end = i + 1;
            while (end < g->offset_count && strcmp(g->offsets[end].topic, name) == 0)
                end++;
            const struct tb_topic *t = tb_snapshot_find_topic(s, name);
            if (t) {
                struct tb_topic_lag *tl = &topics[nt];
                tl->topic = t->name;
                tl->total_lag = 0;
                tl->partitions = &parts[np];
                tl->partition_count = 0;
                for (size_t k = i; k < end; k++) {
                    const struct tb_partition *p =
                        tb_topic_find_partition(t, g->offsets[k].partition);
                    if (!p)
                        continue;
                    struct tb_partition_lag *pl = &parts[np++];
                    partition_lag(p, g->offsets[k].committed, pl);
                    tl->partition_count++;
                    tl->total_lag += pl->lag;
                }
                if (tl->partition_count > 0) {
                    gl->total_lag += tl->total_lag;
                    nt++;
                }
            }
            i = end;
        }
    }
    if (nt > 0) {
        gl->topics = topics;
        gl->topic_count = nt;
    }
    *used_topics = nt;
    *used_parts = np;
}

struct tb_metrics *tb_metrics_compute(const struct tb_snapshot *prev, struct tb_snapshot *cur)
{
    struct metrics_impl *im = calloc(1, sizeof(*im));
    int64_t *fetch_acc = NULL;
    if (!im)
        return NULL;
    struct tb_metrics *m = &im->pub;
    atomic_init(&m->refs, 1);
    m->snap = tb_snapshot_ref(cur);
    m->total_partitions = (int64_t)tb_snapshot_total_partitions(cur);

    double dt = prev ? (double)(cur->mono_ms - prev->mono_ms) / 1000.0 : 0.0;
    bool rates = prev && dt > 0;
    m->rates_available = rates;
    m->rate_window_s = rates ? dt : 0.0;
    double dtb = prev && prev->sizes_known && cur->sizes_known
                     ? (double)(cur->sizes_mono_ms - prev->sizes_mono_ms) / 1000.0
                     : 0.0;
    bool brates = dtb > 0;
    m->bytes_rate_available = brates;
    m->bytes_window_s = brates ? dtb : 0.0;

    /* ---- topics and rates ---- */
    m->topic_count = cur->topic_count;
    if (cur->topic_count) {
        m->topics = calloc(cur->topic_count, sizeof(*m->topics));
        fetch_acc = calloc(cur->topic_count, sizeof(*fetch_acc));
        if (!m->topics || !fetch_acc)
            goto fail;
    }
    if (rates) {
        size_t i = 0, j = 0;
        while (i < cur->group_count && j < prev->group_count) {
            const struct tb_group *gc = &cur->groups[i], *gp = &prev->groups[j];
            int r = strcmp(gc->id, gp->id);
            if (r < 0) {
                i++;
            } else if (r > 0) {
                j++;
            } else {
                if (group_fresh(gc) && group_fresh(gp))
                    fetch_deltas(cur, gc, gp, fetch_acc);
                i++;
                j++;
            }
        }
    }
    for (size_t i = 0; i < cur->topic_count; i++) {
        const struct tb_topic *t = &cur->topics[i];
        struct tb_topic_stats *ts = &m->topics[i];
        ts->name = t->name;
        ts->partitions = (int32_t)t->partition_count;
        for (size_t k = 0; k < t->partition_count; k++) {
            if (t->partitions[k].high_watermark > 0)
                ts->total_messages += t->partitions[k].high_watermark;
            if (t->partitions[k].log_bytes > 0)
                ts->total_bytes += t->partitions[k].log_bytes;
        }
        ts->bytes_available = cur->sizes_known;
        const struct tb_topic *pt =
            rates || brates ? tb_snapshot_find_topic(prev, t->name) : NULL;
        int64_t bdelta = 0;
        if (brates && pt && bytes_delta(t, pt, &bdelta)) {
            ts->produce_bytes_available = true;
            ts->produce_bytes_rate = (double)bdelta / dtb;
            m->produce_bytes_rate += ts->produce_bytes_rate;
        }
        if (!rates || !pt)
            continue; /* no prev, dt <= 0, or a new topic: both rates unavailable */
        int64_t delta = 0;
        if (produce_delta(t, pt, &delta)) {
            ts->produce_rate_available = true;
            ts->produce_rate = (double)delta / dt;
            m->produce_rate += ts->produce_rate;
        }
        ts->fetch_rate_available = true;
        ts->fetch_rate = (double)fetch_acc[i] / dt;
        m->fetch_rate += ts->fetch_rate;
    }
    free(fetch_acc);
    fetch_acc = NULL;

    /* ---- lag ---- */
    size_t max_parts = 0, max_topics = 0;
    for (size_t i = 0; i < cur->group_count; i++) {
        const struct tb_group *g = &cur->groups[i];
        if (!g->offsets_known)
            continue;
        max_parts += g->offset_count;
        for (size_t k = 0; k < g->offset_count; k++)
            if (k == 0 || strcmp(g->offsets[k].topic, g->offsets[k - 1].topic) != 0)
                max_topics++;
    }
    m->group_count = cur->group_count;
    if (cur->group_count) {
        m->groups = calloc(cur->group_count, sizeof(*m->groups));
        if (!m->groups)
            goto fail;
    }
    if (max_parts) {
        im->all_parts = malloc(max_parts * sizeof(*im->all_parts));
        im->all_topics = malloc(max_topics * sizeof(*im->all_topics));
        if (!im->all_parts || !im->all_topics)
            goto fail;
    }
    size_t tpos = 0, ppos = 0;
    for (size_t i = 0; i < cur->group_count; i++) {
        size_t ut = 0, up = 0;
        /* (no offsets anywhere: the arrays are NULL and never touched) */
        group_lag(cur, &cur->groups[i], &m->groups[i],
                  im->all_topics ? im->all_topics + tpos : NULL,
                  im->all_parts ? im->all_parts + ppos : NULL, &ut, &up);
        tpos += ut;
        ppos += up;
    }
    return m;

fail:
    free(fetch_acc);
    metrics_free(m);
    return NULL;
}

struct tb_metrics *tb_metrics_ref(struct tb_metrics *m)
{
    if (m)
        atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void tb_metrics_unref(struct tb_metrics *m)
{
    if (!m)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    metrics_free(m);
}

int64_t tb_status_age_ms(const struct tb_status *st, int64_t now_ms)
{
    if (!st || st->last_success_ms <= 0)
        return -1;
    int64_t age = now_ms - st->last_success_ms;
    return age > 0 ? age : 0;
}

bool tb_status_is_stale(const struct tb_status *st, int64_t now_ms)
{
    int64_t age = tb_status_age_ms(st, now_ms);
    if (age < 0)
        return true;
    return st->stale_after_ms > 0 && age > st->stale_after_ms;
}
