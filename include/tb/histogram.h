/*
 * histogram.h - a sliding-window latency histogram with bounded memory. PURE (libc).
 *
 * Values are microseconds (uint64). Buckets are log-linear, like HdrHistogram with two
 * significant decimal digits:
 *   - values 0..127 us have one bucket each (exact, 1 us resolution);
 *   - above, every power of two [2^e, 2^(e+1)) is split into 128 equal buckets of width
 *     2^(e-7), so a bucket is at most 1/128 (0.79 %) of its lower bound wide;
 *   - values from TB_HIST_MAX_US (2^27 us, about 134 s) up are counted in the last
 *     bucket (they are clamped: percentiles never exceed ~134 s).
 *   TB_HIST_BUCKETS = 2688 buckets in all.
 * A percentile is reported as the MIDPOINT of the bucket that holds the nearest-rank
 * sample (rank = ceil(p/100 * n), at least 1), so the reported value is within half a
 * bucket width (<= 0.4 %, or exact below 128 us) of a real sample.
 *
 * Sliding window: the window (window_ms) is divided into TB_HIST_SLOTS = 12 slots of
 * window_ms / 12 each, every slot a full bucket array stamped with its slot number
 * (now_ms / slot_ms). Recording into a slot whose stamp is old clears it first. A query
 * merges the slots whose stamp is within the last 12 slot numbers, so it covers the
 * samples of the last 11/12 * window_ms to window_ms (the current slot is partial).
 * Memory is fixed at creation (12 x 2688 x 4 bytes + scratch, about 150 KB) whatever
 * the rate of samples.
 *
 * Time is passed in by the caller (any monotonic millisecond clock), so the histogram
 * is deterministic and testable. Not thread-safe: the owner serializes access.
 */
#ifndef TB_HISTOGRAM_H
#define TB_HISTOGRAM_H

#include <stddef.h>
#include <stdint.h>

#define TB_HIST_SUB_BITS 7
#define TB_HIST_SUB (1u << TB_HIST_SUB_BITS) /* 128 */
#define TB_HIST_MAX_US ((uint64_t)1 << 27)   /* first clamped value */
#define TB_HIST_BUCKETS (20u * TB_HIST_SUB + TB_HIST_SUB) /* 2688 */
#define TB_HIST_SLOTS 12

struct tb_hist;

/* A new, empty histogram over a window of @window_ms (>= TB_HIST_SLOTS). NULL on OOM
 * or invalid window. */
struct tb_hist *tb_hist_new(int64_t window_ms);
void tb_hist_free(struct tb_hist *h); /* NULL is a no-op */

/* Records one sample @value_us observed at @now_ms. */
void tb_hist_record(struct tb_hist *h, int64_t now_ms, uint64_t value_us);

/* Samples in the window at @now_ms. */
uint64_t tb_hist_count(struct tb_hist *h, int64_t now_ms);

/*
 * Percentiles of the window at @now_ms: for each ps[i] in (0, 100], out_us[i] receives
 * the midpoint of the bucket holding the nearest-rank sample. Returns the number of
 * samples in the window; when it is 0, @out_us is left untouched.
 */
uint64_t tb_hist_percentiles(struct tb_hist *h, int64_t now_ms, const double *ps, size_t n,
                             double *out_us);

/* Bucket of a value, and the inclusive value range [lo, hi] of a bucket (tests). */
size_t tb_hist_bucket(uint64_t value_us);
void tb_hist_bucket_range(size_t bucket, uint64_t *lo, uint64_t *hi);

#endif
