/*
 * logdirs.h - sizes from a Kafka broker's log directories (a read-only volume shared
 * with the bridge's pod). PURE (libc only): directory walking and stat, no state.
 *
 * Layout (Apache Kafka, also Confluent Platform, Strimzi and Bitnami images, ZooKeeper
 * and KRaft mode alike): each log directory (log.dirs) holds meta.properties, a few
 * checkpoint files, and one directory per partition replica hosted by the broker,
 * named <topic>-<partition>, holding segment files <base offset>.log plus .index,
 * .timeindex, .snapshot, .txnindex, leader-epoch-checkpoint, partition.metadata.
 *
 * What is measured
 *   - log_bytes of a partition: the sum of st_size of its "*.log" segment files, i.e.
 *     the bytes of record batches the broker stores for it. This is what Kafka itself
 *     reports as the partition's size (kafka.log:type=Log,name=Size, DescribeLogDirs).
 *     Index files are not data (and are preallocated sparse files: a 10 MB .index may
 *     occupy 0 blocks), nor are segments already renamed for deletion (*.log.deleted)
 *     or compaction temporaries (*.cleaned, *.swap).
 *   - disk_bytes: the space actually allocated on disk (st_blocks * 512, what du
 *     reports) by EVERY regular file under the log directories, at any depth: data,
 *     indexes, checkpoints, internal topics (__consumer_offsets, __cluster_metadata),
 *     directories being deleted (<topic>-<partition>.<id>-delete), replicas being moved
 *     between log directories (-future) and stray replicas (-stray). Directories
 *     themselves are not counted.
 *   Symbolic links are not followed below the configured directories (which may
 *   themselves be links).
 *
 * Directory names: <topic>-<partition> is split at the LAST '-' and must end in 1 to 9
 * decimal digits after it, with a non-empty topic before it (topic names may contain
 * '-'). Anything else (e.g. "orders-0.3f2a...-delete") is not a partition.
 *
 * A configured directory must contain meta.properties, else it is not a Kafka log
 * directory (wrong path, or a volume that is not mounted: an empty mount point must not
 * read as "0 bytes"). Files or directories that vanish during the walk (retention,
 * deletion) are skipped silently; any other error fails the whole scan, since partial
 * sums would be wrong.
 */
#ifndef TB_LOGDIRS_H
#define TB_LOGDIRS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tb_logdir_partition {
    char *topic;        /* owned */
    int32_t partition;
    int64_t log_bytes;  /* sum of *.log sizes (a replica found in two dirs: summed) */
};

struct tb_logdir_scan {
    size_t count;
    struct tb_logdir_partition *parts; /* sorted by (topic, partition), unique */
    int64_t log_bytes;  /* sum over parts */
    int64_t disk_bytes; /* allocated bytes of every regular file */
    size_t cap;         /* private */
};

/*
 * Scans the @n directories @dirs. On success returns 0 and fills @out (release it with
 * tb_logdir_scan_release()). On failure returns -errno, writes "PATH: reason" into
 * @err and leaves @out empty.
 */
int tb_logdirs_scan(const char *const *dirs, size_t n, struct tb_logdir_scan *out, char *err,
                    size_t errlen);
void tb_logdir_scan_release(struct tb_logdir_scan *s); /* NULL is a no-op */

/* Binary search in a successful scan; NULL if the replica is not hosted there. */
const struct tb_logdir_partition *tb_logdir_scan_find(const struct tb_logdir_scan *s,
                                                      const char *topic, int32_t partition);

/* "<topic>-<partition>" -> true with the topic's length and the partition. */
bool tb_logdir_parse_name(const char *name, size_t *topic_len, int32_t *partition);

#endif
