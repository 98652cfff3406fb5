/*
 * snapshot.c - the immutable cluster picture built by one collector cycle.
 * See include/tb/snapshot.h for the contract.
 *
 * Design
 *   Topics, groups and offsets are plain arrays of structs grown geometrically by the
 *   builders (single owner: the collector thread). tb_snapshot_finalize() sorts them
 *   once so that every later lookup is a binary search and metrics/events can walk two
 *   snapshots in merge order. Sorting is stable with respect to insertion order (ties
 *   are broken by the original index), which is what makes de-duplication "keep the
 *   first one added" deterministic.
 *   After finalize the snapshot is never written again; the refcount is atomic so the
 *   collector and the service thread can share it.
 */
#include "tb/snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s)
{
    return strdup(s ? s : "");
}

/* Grows *arr (elements of @size bytes) so that it holds at least @need; 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / size)
            return -ENOMEM;
        ncap *= 2;
    }
    void *p = realloc(*arr, ncap * size);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

struct tb_snapshot *tb_snapshot_new(int64_t taken_ms)
{
    struct tb_snapshot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    s->taken_ms = taken_ms;
    s->controller_id = -1;
    s->disk_bytes = -1;
    return s;
}

struct tb_topic *tb_snapshot_add_topic(struct tb_snapshot *s, const char *name,
                                       size_t partition_count)
{
    void *arr = s->topics;
    if (grow(&arr, &s->topic_cap, s->topic_count + 1, sizeof(struct tb_topic)) < 0)
        return NULL;
    s->topics = arr;
    struct tb_topic *t = &s->topics[s->topic_count];
    memset(t, 0, sizeof(*t));
    t->name = dup_str(name);
    if (!t->name)
        return NULL;
    if (partition_count > 0) {
        t->partitions = calloc(partition_count, sizeof(*t->partitions));
        if (!t->partitions) {
            free(t->name);
            t->name = NULL;
            return NULL;
        }
        for (size_t i = 0; i < partition_count; i++) {
            t->partitions[i].id = (int32_t)i;
            t->partitions[i].leader = -1;
            t->partitions[i].log_start = -1;
            t->partitions[i].high_watermark = -1;
            t->partitions[i].log_bytes = -1;
        }
    }
    t->partition_count = partition_count;
    s->topic_count++;
    return t;
}

struct tb_group *tb_snapshot_add_group(struct tb_snapshot *s, const char *id,
                                       const char *state, int32_t members)
{
    void *arr = s->groups;
    if (grow(&arr, &s->group_cap, s->group_count + 1, sizeof(struct tb_group)) < 0)
        return NULL;
    s->groups = arr;
    struct tb_group *g = &s->groups[s->group_count];
    memset(g, 0, sizeof(*g));
    g->id = dup_str(id);
    g->state = dup_str(state);
    if (!g->id || !g->state) {
        free(g->id);
        free(g->state);
        return NULL;
    }
    g->members = members;
    s->group_count++;
    return g;
}

int tb_group_add_offset(struct tb_group *g, const char *topic, int32_t partition,
                        int64_t committed)
{
    if (committed < 0)
        return 0; /* no committed offset: not stored (header) */
    void *arr = g->offsets;
    if (grow(&arr, &g->offset_cap, g->offset_count + 1, sizeof(struct tb_group_offset)) < 0)
        return -ENOMEM;
    g->offsets = arr;
    char *t = dup_str(topic);
    if (!t)
        return -ENOMEM;
    struct tb_group_offset *o = &g->offsets[g->offset_count++];
    o->topic = t;
    o->partition = partition;
    o->committed = committed;
    return 0;
}

static void free_offsets(struct tb_group_offset *o, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(o[i].topic);
    free(o);
}

int tb_group_copy_offsets(struct tb_group *to, const struct tb_group *from)
{
    struct tb_group_offset *copy = NULL;
    size_t n = from->offset_count;
    if (n > 0) {
        copy = calloc(n, sizeof(*copy));
        if (!copy)
            return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
            copy[i] = from->offsets[i];
            copy[i].topic = dup_str(from->offsets[i].topic);
            if (!copy[i].topic) {
                free_offsets(copy, i);
                return -ENOMEM;
            }
        }
    }
    free_offsets(to->offsets, to->offset_count);
    to->offsets = copy;
    to->offset_count = n;
    to->offset_cap = n;
    return 0;
}

/* ---- finalize ---------------------------------------------------------------- */

/*
 * Stable sort + de-duplication of an array of @n elements of @size bytes. @cmp compares
 * two elements; duplicates (cmp == 0) after the first added are passed to @drop.
 * Returns the new count. Stability comes from sorting an index array with ties broken by
 * index (qsort_r, glibc). If that scratch memory cannot be had, falls back to an
 * in-place qsort: still sorted and unique, but which duplicate survives is unspecified.
 */
struct sort_ctx {
    const char *base;
    size_t size;
    int (*cmp)(const void *, const void *);
};

static int cmp_index(const void *a, const void *b, void *arg)
{
    const struct sort_ctx *c = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    int r = c->cmp(c->base + ia * c->size, c->base + ib * c->size);
    if (r)
        return r;
    return ia < ib ? -1 : ia > ib;
}

static size_t sort_unique(void *arr, size_t n, size_t size,
                          int (*cmp)(const void *, const void *), void (*drop)(void *))
{
    if (n < 2)
        return n;
    char *base = arr;
    size_t *idx = malloc(n * sizeof(*idx));
    char *tmp = malloc(n * size);
    if (!idx || !tmp) {
        free(idx);
        free(tmp);
        qsort(arr, n, size, cmp);
        size_t out = 1;
        for (size_t i = 1; i < n; i++) {
            if (cmp(base + (out - 1) * size, base + i * size) == 0)
                drop(base + i * size);
            else
                memmove(base + out++ * size, base + i * size, size);
        }
        return out;
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    struct sort_ctx ctx = {base, size, cmp};
    qsort_r(idx, n, sizeof(*idx), cmp_index, &ctx);
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        char *e = base + idx[i] * size;
        if (out > 0 && cmp(tmp + (out - 1) * size, e) == 0)
            drop(e);
        else
            memcpy(tmp + out++ * size, e, size);
    }
    memcpy(base, tmp, out * size);
    free(tmp);
    free(idx);
    return out;
}

static int cmp_topic(const void *a, const void *b)
{
    return strcmp(((const struct tb_topic *)a)->name, ((const struct tb_topic *)b)->name);
}

static int cmp_partition(const void *a, const void *b)
{
    int32_t x = ((const struct tb_partition *)a)->id, y = ((const struct tb_partition *)b)->id;
    return x < y ? -1 : x > y;
}

static int cmp_group(const void *a, const void *b)
{
    return strcmp(((const struct tb_group *)a)->id, ((const struct tb_group *)b)->id);
}

static int cmp_offset(const void *a, const void *b)
{
    const struct tb_group_offset *x = a, *y = b;
    int r = strcmp(x->topic, y->topic);
    if (r)
        return r;
    return x->partition < y->partition ? -1 : x->partition > y->partition;
}

static void drop_topic(void *p)
{
    struct tb_topic *t = p;
    free(t->name);
    free(t->partitions);
}

static void drop_nothing(void *p)
{
    (void)p;
}

static void drop_group(void *p)
{
    struct tb_group *g = p;
    free(g->id);
    free(g->state);
    free_offsets(g->offsets, g->offset_count);
}

static void drop_offset(void *p)
{
    free(((struct tb_group_offset *)p)->topic);
}

void tb_snapshot_finalize(struct tb_snapshot *s)
{
    s->topic_count = sort_unique(s->topics, s->topic_count, sizeof(struct tb_topic),
                                 cmp_topic, drop_topic);
    for (size_t i = 0; i < s->topic_count; i++) {
        struct tb_topic *t = &s->topics[i];
        t->partition_count = sort_unique(t->partitions, t->partition_count,
                                         sizeof(struct tb_partition), cmp_partition,
                                         drop_nothing);
    }
    s->group_count = sort_unique(s->groups, s->group_count, sizeof(struct tb_group),
                                 cmp_group, drop_group);
    for (size_t i = 0; i < s->group_count; i++) {
        struct tb_group *g = &s->groups[i];
        g->offset_count = sort_unique(g->offsets, g->offset_count,
                                      sizeof(struct tb_group_offset), cmp_offset,
                                      drop_offset);
    }
}

/* ---- lookups ----------------------------------------------------------------- */

const struct tb_topic *tb_snapshot_find_topic(const struct tb_snapshot *s, const char *name)
{
    size_t lo = 0, hi = s->topic_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(name, s->topics[mid].name);
        if (r == 0)
            return &s->topics[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct tb_group *tb_snapshot_find_group(const struct tb_snapshot *s, const char *id)
{
    size_t lo = 0, hi = s->group_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(id, s->groups[mid].id);
        if (r == 0)
            return &s->groups[mid];
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const struct tb_partition *tb_topic_find_partition(const struct tb_topic *t, int32_t id)
{
    /* Fast path: ids are normally 0..n-1, so partitions[id] is the one. */
    if (id >= 0 && (size_t)id < t->partition_count && t->partitions[id].id == id)
        return &t->partitions[id];
    size_t lo = 0, hi = t->partition_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int32_t m = t->partitions[mid].id;
        if (m == id)
            return &t->partitions[mid];
        if (id < m)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t tb_snapshot_total_partitions(const struct tb_snapshot *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->topic_count; i++)
        n += s->topics[i].partition_count;
    return n;
}

/* ---- lifetime ---------------------------------------------------------------- */

struct tb_snapshot *tb_snapshot_ref(struct tb_snapshot *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void tb_snapshot_unref(struct tb_snapshot *s)
{
    if (!s)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->topic_count; i++)
        drop_topic(&s->topics[i]);
    free(s->topics);
    for (size_t i = 0; i < s->group_count; i++)
        drop_group(&s->groups[i]);
    free(s->groups);
    free(s);
}
