/*
 * subs.c - one client's subscription set. See include/tb/subs.h for the semantics.
 *
 * Design
 *   Items are kept as a sorted (strcmp), de-duplicated array of owned strings, so the
 *   canonical key is just the items joined with '\n', and equal sets built in any order
 *   have byte-equal keys. Because "group:" < "topic:", all group items come first:
 *   n_group is the boundary. Matching binary-searches the kind's range for an exact
 *   pattern (most subscriptions name a topic) and runs fnmatch(3) only over the glob
 *   patterns, whose indexes are cached per kind. The key and the glob index are rebuilt
 *   lazily after a modification (dirty flag), through a const pointer: the caches are
 *   not part of the set's value. So a set is not thread-safe while it may be dirty (a
 *   session's set lives on the service thread); a fresh tb_subs_clone() is warmed and
 *   read-only until modified, so it can be handed to another thread.
 */
#include "tb/subs.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_LEN 6 /* "topic:" and "group:" */
#define PATTERN_MAX 249

struct tb_subs {
    size_t count, cap;
    char **items;      /* sorted, unique, owned */
    size_t n_group;    /* items[0 .. n_group) are "group:", the rest "topic:" */
    /* lazily rebuilt caches (valid when !dirty) */
    bool dirty;
    char *key;
    size_t n_globs;
    size_t *globs;     /* indexes of items whose pattern has glob characters */
};

struct tb_subs *tb_subs_new(void)
{
    struct tb_subs *s = calloc(1, sizeof(*s));
    if (s)
        s->dirty = true;
    return s;
}

void tb_subs_free(struct tb_subs *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->count; i++)
        free(s->items[i]);
    free(s->items);
    free(s->key);
    free(s->globs);
    free(s);
}

static bool refresh(const struct tb_subs *cs);

struct tb_subs *tb_subs_clone(const struct tb_subs *s)
{
    struct tb_subs *c = tb_subs_new();
    if (!c)
        return NULL;
    if (s && s->count > 0) {
        c->items = calloc(s->count, sizeof(*c->items));
        if (!c->items)
            goto fail;
        c->cap = s->count;
        for (size_t i = 0; i < s->count; i++) {
            c->items[i] = strdup(s->items[i]);
            if (!c->items[i])
                goto fail;
            c->count++;
        }
        c->n_group = s->n_group;
    }
    /* warm the caches: an unmodified clone is then strictly read-only */
    if (!refresh(c))
        goto fail;
    return c;
fail:
    tb_subs_free(c);
    return NULL;
}

int tb_subs_validate(const char *item, const char **why)
{
    const char *reason = NULL;
    if (!item)
        reason = "missing subscription item";
    else if (strncmp(item, "topic:", PREFIX_LEN) != 0 && strncmp(item, "group:", PREFIX_LEN) != 0)
        reason = "item must start with \"topic:\" or \"group:\"";
    else {
        const char *p = item + PREFIX_LEN;
        size_t len = strnlen(p, PATTERN_MAX + 1);
        if (len == 0)
            reason = "empty pattern";
        else if (len > PATTERN_MAX)
            reason = "pattern longer than 249 bytes";
        else
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e) {
                    reason = "pattern must be printable ASCII";
                    break;
                }
    }
    if (!reason)
        return 0;
    if (why)
        *why = reason;
    return -EINVAL;
}

/* Index of @item, or of where it would be inserted; *found tells which. */
static size_t locate(const struct tb_subs *s, const char *item, bool *found)
{
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(item, s->items[mid]);
        if (r == 0) {
            *found = true;
            return mid;
        }
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

int tb_subs_add(struct tb_subs *s, const char *item, const char **why)
{
    int rc = tb_subs_validate(item, why);
    if (rc < 0)
        return rc;
    bool found;
    size_t at = locate(s, item, &found);
    if (found)
        return 0;
    if (s->count >= TB_SUBS_MAX) {
        if (why)
            *why = "too many subscriptions (at most 256 per connection)";
        return -ENOSPC;
    }
    if (s->count == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        char **p = realloc(s->items, ncap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        s->items = p;
        s->cap = ncap;
    }
    char *copy = strdup(item);
    if (!copy)
        return -ENOMEM;
    memmove(s->items + at + 1, s->items + at, (s->count - at) * sizeof(*s->items));
    s->items[at] = copy;
    s->count++;
    if (item[0] == 'g')
        s->n_group++;
    s->dirty = true;
    return 0;
}

int tb_subs_remove(struct tb_subs *s, const char *item, const char **why)
{
    int rc = tb_subs_validate(item, why);
    if (rc < 0)
        return rc;
    bool found;
    size_t at = locate(s, item, &found);
    if (!found)
        return 0;
    free(s->items[at]);
    memmove(s->items + at, s->items + at + 1, (s->count - at - 1) * sizeof(*s->items));
    s->count--;
    if (item[0] == 'g')
        s->n_group--;
    s->dirty = true;
    return 0;
}

size_t tb_subs_count(const struct tb_subs *s)
{
    return s ? s->count : 0;
}

bool tb_subs_is_empty(const struct tb_subs *s)
{
    return !s || s->count == 0;
}

static bool has_glob(const char *pattern)
{
    return strpbrk(pattern, "*?[\\") != NULL;
}

/* Rebuilds the key and the glob index. The caches are not part of the set's value, so
 * this is done through a const pointer (the object itself is never const: it comes from
 * tb_subs_new). Returns false on OOM (the caches stay dirty). */
static bool refresh(const struct tb_subs *cs)
{
    struct tb_subs *s = (struct tb_subs *)cs;
    if (!s->dirty)
        return true;
    size_t total = 1;
    for (size_t i = 0; i < s->count; i++)
        total += strlen(s->items[i]) + 1;
    char *key = malloc(total);
    size_t *globs = malloc((s->count + 1) * sizeof(*globs));
    if (!key || !globs) {
        free(key);
        free(globs);
        return false;
    }
    size_t pos = 0, ng = 0;
    for (size_t i = 0; i < s->count; i++) {
        size_t len = strlen(s->items[i]);
        if (i > 0)
            key[pos++] = '\n';
        memcpy(key + pos, s->items[i], len);
        pos += len;
        if (has_glob(s->items[i] + PREFIX_LEN))
            globs[ng++] = i;
    }
    key[pos] = '\0';
    free(s->key);
    free(s->globs);
    s->key = key;
    s->globs = globs;
    s->n_globs = ng;
    s->dirty = false;
    return true;
}

const char *tb_subs_key(const struct tb_subs *s)
{
    if (!s)
        return "";
    return refresh(s) ? s->key : NULL;
}

/* Matching within items[lo, hi) (one kind). */
static bool match_range(const struct tb_subs *s, size_t lo, size_t hi, const char *name)
{
    /* exact: binary search on the pattern part (the prefix is equal within a kind) */
    size_t a = lo, b = hi;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        int r = strcmp(name, s->items[mid] + PREFIX_LEN);
        if (r == 0)
            return true;
        if (r < 0)
            b = mid;
        else
            a = mid + 1;
    }
    if (refresh(s)) {
        for (size_t k = 0; k < s->n_globs; k++) {
            size_t i = s->globs[k];
            if (i >= lo && i < hi && fnmatch(s->items[i] + PREFIX_LEN, name, 0) == 0)
                return true;
        }
        return false;
    }
    /* OOM building the index: check every item of the kind */
    for (size_t i = lo; i < hi; i++)
        if (fnmatch(s->items[i] + PREFIX_LEN, name, 0) == 0)
            return true;
    return false;
}

bool tb_subs_match_topic(const struct tb_subs *s, const char *topic)
{
    if (tb_subs_is_empty(s))
        return true;
    return match_range(s, s->n_group, s->count, topic);
}

bool tb_subs_match_group(const struct tb_subs *s, const char *group_id)
{
    if (tb_subs_is_empty(s))
        return true;
    return match_range(s, 0, s->n_group, group_id);
}
