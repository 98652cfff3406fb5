/*
 * histogram.c - sliding-window log-linear histogram. See include/tb/histogram.h.
 *
 * Design
 *   Bucket of v (us): v < 128 -> v; else with e = floor(log2 v) (7..26) and
 *   shift = e - 7: (e - 7) * 128 + (v >> shift). The top 8 bits of v select the bucket,
 *   so consecutive powers of two continue each other's index range without gaps
 *   (255 -> 255, 256 -> 256, 511 -> 383, 512 -> 384). Integer arithmetic only: the
 *   bucket of a value is exact and the tests can compute it by hand.
 *   The window is a ring of TB_HIST_SLOTS bucket arrays, each stamped with the slot
 *   number it holds (now_ms / slot_ms); a stale slot is cleared lazily when it is
 *   written again, and ignored by queries. Queries merge the live slots into a scratch
 *   array owned by the histogram (no allocation after tb_hist_new()).
 */
#include "tb/histogram.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct tb_hist {
    int64_t slot_ms;
    int64_t stamp[TB_HIST_SLOTS];   /* slot number held; INT64_MIN = never used */
    uint64_t total[TB_HIST_SLOTS];
    uint32_t counts[TB_HIST_SLOTS][TB_HIST_BUCKETS];
    uint64_t merged[TB_HIST_BUCKETS]; /* query scratch */
};

size_t tb_hist_bucket(uint64_t v)
{
    if (v >= TB_HIST_MAX_US)
        v = TB_HIST_MAX_US - 1;
    if (v < TB_HIST_SUB)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - TB_HIST_SUB_BITS;
    return (size_t)shift * TB_HIST_SUB + (size_t)(v >> shift);
}

void tb_hist_bucket_range(size_t b, uint64_t *lo, uint64_t *hi)
{
    if (b < TB_HIST_SUB) {
        *lo = *hi = b;
        return;
    }
    size_t group = b / TB_HIST_SUB; /* >= 1 */
    size_t sub = b % TB_HIST_SUB;
    unsigned shift = (unsigned)(group - 1);
    *lo = (uint64_t)(TB_HIST_SUB + sub) << shift;
    *hi = *lo + ((uint64_t)1 << shift) - 1;
}

struct tb_hist *tb_hist_new(int64_t window_ms)
{
    if (window_ms < TB_HIST_SLOTS)
        return NULL;
    struct tb_hist *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->slot_ms = window_ms / TB_HIST_SLOTS;
    for (size_t i = 0; i < TB_HIST_SLOTS; i++)
        h->stamp[i] = INT64_MIN;
    return h;
}

void tb_hist_free(struct tb_hist *h)
{
    free(h);
}

static size_t slot_of(int64_t stamp)
{
    int64_t r = stamp % TB_HIST_SLOTS;
    return (size_t)(r < 0 ? r + TB_HIST_SLOTS : r);
}

static bool slot_live(const struct tb_hist *h, size_t i, int64_t now_stamp)
{
    return h->stamp[i] != INT64_MIN && h->stamp[i] <= now_stamp &&
           h->stamp[i] > now_stamp - TB_HIST_SLOTS;
}

void tb_hist_record(struct tb_hist *h, int64_t now_ms, uint64_t value_us)
{
    int64_t stamp = now_ms / h->slot_ms;
    size_t i = slot_of(stamp);
    if (h->stamp[i] != stamp) {
        memset(h->counts[i], 0, sizeof(h->counts[i]));
        h->total[i] = 0;
        h->stamp[i] = stamp;
    }
    size_t b = tb_hist_bucket(value_us);
    if (h->counts[i][b] < UINT32_MAX) {
        h->counts[i][b]++;
        h->total[i]++;
    }
}

uint64_t tb_hist_count(struct tb_hist *h, int64_t now_ms)
{
    int64_t now_stamp = now_ms / h->slot_ms;
    uint64_t n = 0;
    for (size_t i = 0; i < TB_HIST_SLOTS; i++)
        if (slot_live(h, i, now_stamp))
            n += h->total[i];
    return n;
}

uint64_t tb_hist_percentiles(struct tb_hist *h, int64_t now_ms, const double *ps, size_t n,
                             double *out_us)
{
    int64_t now_stamp = now_ms / h->slot_ms;
    uint64_t total = 0;
    memset(h->merged, 0, sizeof(h->merged));
    for (size_t i = 0; i < TB_HIST_SLOTS; i++) {
        if (!slot_live(h, i, now_stamp) || h->total[i] == 0)
            continue;
        total += h->total[i];
        for (size_t b = 0; b < TB_HIST_BUCKETS; b++)
            h->merged[b] += h->counts[i][b];
    }
    if (total == 0)
        return 0;
    for (size_t k = 0; k < n; k++) {
        double p = ps[k];
        if (!(p > 0.0))
            p = 0.0;
        if (p > 100.0)
            p = 100.0;
        /* p * total first: exact for integer percentiles (95 * 20 / 100 = 19, where
         * 0.95 * 20 would be 19.000000000000004); the epsilon absorbs the rest. */
        uint64_t rank = (uint64_t)ceil(p * (double)total / 100.0 - 1e-9);
        if (rank < 1)
            rank = 1;
        if (rank > total)
            rank = total;
        uint64_t cum = 0;
        size_t b = 0;
        for (; b < TB_HIST_BUCKETS; b++) {
            cum += h->merged[b];
            if (cum >= rank)
                break;
        }
        if (b == TB_HIST_BUCKETS)
            b = TB_HIST_BUCKETS - 1; /* unreachable: cum reaches total */
        uint64_t lo, hi;
        tb_hist_bucket_range(b, &lo, &hi);
        out_us[k] = (double)lo + (double)(hi - lo) / 2.0;
    }
    return total;
}
