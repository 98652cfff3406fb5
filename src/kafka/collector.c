/*
 * collector.c - the librdkafka adapter: one client handle, one thread, one cycle per
 * kafka.poll_interval_ms. See include/tb/collector.h for the contract.
 *
 * Design
 *   - ONE rd_kafka_t of type CONSUMER, without group.id and never subscribed: it serves
 *     Metadata, the legacy rd_kafka_list_groups() (ListGroups + DescribeGroups), the
 *     admin ListConsumerGroupOffsets and rd_kafka_offsets_for_times() (ListOffsets).
 *     A consumer handle is used because isolation.level (needed for high watermarks,
 *     read_uncommitted) is a consumer property. It is destroyed with
 *     RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE (there is no group to leave).
 *   - Enforced client properties (applied after kafka.properties, with a warning if the
 *     user set them differently): isolation.level=read_uncommitted,
 *     enable.auto.commit=false, allow.auto.create.topics=false, bootstrap.servers and
 *     statistics.interval.ms from their own options. Defaults the user may override:
 *     client.id=takhin-bridge, topic.metadata.refresh.interval.ms=60000.
 *   - Never used (traps in librdkafka 2.0.2, see docs/notes): DescribeConsumerGroups
 *     (deadlocks on error), query_watermark_offsets (2 requests/partition, blocks past
 *     its timeout), metadata for a topic by name (auto-creation).
 *
 * One cycle (run_cycle), each step checked against the stop flag before it starts:
 *   1. metadata of all topics; internal ("__*") topics dropped unless
 *      collector.include_internal_topics; include/exclude fnmatch filters. Topic-level
 *      errors: UNKNOWN_TOPIC_OR_PART / TOPIC_AUTHORIZATION_FAILED / INVALID_TOPIC -> the
 *      topic is absent; any other error with partitions listed (e.g.
 *      LEADER_NOT_AVAILABLE while a topic is being created) -> present as reported;
 *      an error with no partitions -> carried from the previous good snapshot if it
 *      was known there (a transient error must not look like a deletion), else absent.
 *   2. rd_kafka_list_groups(): anything but NO_ERROR (including _PARTIAL) fails the
 *      cycle. Groups are de-duplicated by id (first kept) and filtered. ALL protocol
 *      types are kept ("consumer", "" for offset-only groups, "connect", ...): a group
 *      without committed offsets simply has no lag. A group whose DescribeGroups part
 *      failed (per-group error) keeps the state/members of the previous good snapshot,
 *      or "Unknown"/0 if it is new. Groups on the new consumer protocol (KIP-848),
 *      which the classic DescribeGroups reports as "Dead" with no protocol type, get
 *      their state from one admin ListConsumerGroups call (made only in cycles that
 *      have such groups); their member count is unknown to librdkafka 2.0.2 and is 0.
 *   3. committed offsets: admin ListConsumerGroupOffsets, one group per request, NULL
 *      partitions (= all), at most kafka.max_in_flight in flight on a queue created for
 *      this cycle (late results of an abandoned cycle can never be mistaken for this
 *      one's), opaque = group index + 1. A group whose request fails, or that has any
 *      per-partition error, keeps its previous offsets (offsets_carried) or has
 *      offsets_known = false. Offsets < 0 (no commit) are skipped; offsets of topics
 *      the topic filters exclude are not stored.
 *   4. THEN log start offsets (RD_KAFKA_OFFSET_BEGINNING) and end offsets
 *      (RD_KAFKA_OFFSET_END, high watermarks since isolation.level=read_uncommitted),
 *      rd_kafka_offsets_for_times() per chunk of kafka.list_offsets_chunk partitions
 *      that have a leader (grouped by leader, so a chunk reaches few brokers); a failed
 *      chunk is retried once, a second failure fails the cycle. Log start is read before the end offsets so that both are monotone
 *      w.r.t. each other (log_start <= end). snap->mono_ms is taken right after the end
 *      offsets. A leaderless partition, or a per-partition error, leaves -1 (unknown).
 *   4b. sizes from the pod's log directories (pod.log_dirs, src/core/pod.c), right
 *      after the end offsets; a failed scan never fails the cycle, it only leaves the
 *      snapshot without sizes (sizes_known = false).
 *   5. finalize -> tracker (events) -> metrics (rates against the previous GOOD
 *      snapshot) -> tb_mailbox_publish(). A failed cycle publishes the last good
 *      metrics (or NULL) with last_ok = false and no events, and changes neither the
 *      previous snapshot nor the tracker. Every cycle publishes, including the first
 *      failed one, so readers can show "no data yet: <error>". A cycle interrupted by
 *      tb_collector_stop() publishes nothing.
 *
 * Requests per cycle are estimated (1 Metadata, 2 per broker for ListGroups +
 * DescribeGroups, 1 OffsetFetch per group plus 1 FindCoordinator per group when there
 * are more groups than librdkafka 2.0.2's coordinator cache holds (11 entries, LRU:
 * groups fetched in the same order every cycle then always miss), 1 ListOffsets per
 * distinct leader per chunk and per attempt), published as
 * tb_status.requests_last_cycle and logged at debug level with the cycle summary and
 * the duration of each step. Checked against librdkafka's own request counter
 * (statistics "tx") by tests/bench/collector: see docs/benchmarks.md.
 *
 * Logging: librdkafka's log and error callbacks go to tb_log (component "kafka")
 * through a rate limiter: the first occurrence of a message is logged; identical
 * messages are then
 * logged at most once per 30 s, with the number suppressed meanwhile. "Identical"
 * ignores librdkafka's varying " (after Nms in state X ...)" suffix. The log callback
 * runs on librdkafka's internal threads, so the limiter has its own mutex. librdkafka
 * logs every connection failure twice (a "FAIL" log line and an error event with the
 * same text): the log callback drops "FAIL" lines and the error callback reports them.
 *
 * Pod signals and canary: every published status (good or failed cycle) carries the
 * canary's latest measures (tb_canary_read) and a fresh sample of the pod's
 * connections, memory and threads (tb_pod_sample). The canary (canary.enabled) has its
 * own clients and threads (src/kafka/canary.c); the collector starts it in
 * tb_collector_start() and stops it in tb_collector_stop(), after its own thread. The
 * canary's topic is excluded from the reported topics (topic_wanted), whatever its name.
 *
 * Threads
 *   - tb_collector_start()/tb_collector_stop(): the caller's thread.
 *   - everything else, including the stats and error callbacks (served by
 *     rd_kafka_poll() in the cycle), runs on the collector thread and touches the
 *     collector-thread-only fields of struct tb_collector without locks.
 *   - log_cb: any librdkafka thread; touches only the rate limiter (own mutex).
 *   - stop flag: atomic; the sleep between cycles is a pthread_cond_timedwait on a
 *     CLOCK_MONOTONIC condvar, signalled by tb_collector_stop().
 */
#include "tb/collector.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "tb/canary.h"
#include "tb/events.h"
#include "tb/kafka_stats.h"
#include "tb/log.h"
#include "tb/logdirs.h"
#include "tb/metrics.h"
#include "tb/pod.h"
#include "tb/snapshot.h"

#define COMP "kafka"
#define RL_SLOTS 32
#define RL_WINDOW_MS 30000
/* Extra wait beyond request_timeout_ms for an admin result before giving up on it. */
#define ADMIN_GRACE_MS 2000
/* Granularity of stop-flag checks while waiting on admin results. */
#define POLL_SLICE_MS 200
/* librdkafka 2.0.2 caches at most this many group coordinators (rdkafka_coord.c,
 * LRU); ListConsumerGroupOffsets for a group not in it sends FindCoordinator first. */
#define COORD_CACHE_ENTRIES 11

/* ---------------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------------- */

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
static int64_t wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

/* ---------------------------------------------------------------------------------
 * Rate-limited logging of librdkafka's messages
 * ------------------------------------------------------------------------------- */

struct rl_slot {
    uint64_t key;          /* 0 = free */
    int64_t last_logged_ms;
    uint64_t suppressed;
};

struct ratelimit {
    pthread_mutex_t lock;
    struct rl_slot slots[RL_SLOTS];
};

/* FNV-1a over @a, then @b up to librdkafka's varying " (after Nms in state X, N
 * identical error(s) suppressed)" suffix, so repeats of one broker's failure share a
 * key while different brokers' failures do not. */
static uint64_t message_key(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = a; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
    const char *end = b ? strstr(b, " (after ") : NULL;
    for (const char *s = b; s && *s && s != end; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

/* true if the message with @key may be logged now; *suppressed receives how many
 * identical messages were swallowed since it was last logged. */
static bool ratelimit_allow(struct ratelimit *rl, uint64_t key, uint64_t *suppressed)
{
    int64_t now = mono_ms();
    bool allow;
    *suppressed = 0;
    pthread_mutex_lock(&rl->lock);
    struct rl_slot *slot = NULL, *victim = NULL;
    for (int i = 0; i < RL_SLOTS; i++) {
        struct rl_slot *s = &rl->slots[i];
        if (s->key == key) {
            slot = s;
            break;
        }
        /* Reuse a free slot, else the one logged longest ago. */
        if (!victim || (victim->key != 0 &&
                        (s->key == 0 || s->last_logged_ms < victim->last_logged_ms)))
            victim = s;
    }
    if (!slot) {
        struct rl_slot *oldest = victim;
        oldest->key = key;
        oldest->last_logged_ms = now;
        oldest->suppressed = 0;
        allow = true;
    } else if (now - slot->last_logged_ms >= RL_WINDOW_MS) {
        *suppressed = slot->suppressed;
        slot->suppressed = 0;
        slot->last_logged_ms = now;
        allow = true;
    } else {
        slot->suppressed++;
        allow = false;
    }
    pthread_mutex_unlock(&rl->lock);
    return allow;
}

static void log_limited(struct ratelimit *rl, enum tb_log_level level, const char *kind,
                        const char *msg)
{
    uint64_t suppressed = 0;
    if (rl && !ratelimit_allow(rl, message_key(kind, msg), &suppressed))
        return;
    if (suppressed)
        tb_log(level, COMP, "%s (%" PRIu64 " similar message(s) suppressed in the last %d s)",
               msg, suppressed, RL_WINDOW_MS / 1000);
    else
        tb_log(level, COMP, "%s", msg);
}

/* What the librdkafka callbacks reach through rd_kafka_opaque(). */
struct client_ctx {
    struct ratelimit rl;
    struct tb_collector *c; /* NULL for the probe's handle */
};

static enum tb_log_level syslog_to_tb(int level)
{
    if (level <= 3)
        return TB_LOG_ERROR;
    if (level == 4)
        return TB_LOG_WARN;
    if (level <= 6)
        return TB_LOG_INFO;
    return TB_LOG_DEBUG;
}

/* Any librdkafka thread. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    struct client_ctx *ctx = rk ? rd_kafka_opaque(rk) : NULL;
    enum tb_log_level lvl = syslog_to_tb(level);
    if (lvl < tb_log_get_level())
        return;
    if (fac && strcmp(fac, "FAIL") == 0)
        return; /* the same text arrives through error_cb */
    char line[1024];
    snprintf(line, sizeof(line), "librdkafka %s: %s", fac ? fac : "-", buf ? buf : "");
    log_limited(ctx ? &ctx->rl : NULL, lvl, fac, line);
}

/* Collector (or probe) thread, from rd_kafka_poll(). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct client_ctx *ctx = opaque;
    char line[1024];
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char fatal[512];
        rd_kafka_resp_err_t ferr = rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        snprintf(line, sizeof(line), "fatal client error: %s: %s", rd_kafka_err2name(ferr),
                 fatal);
        log_limited(ctx ? &ctx->rl : NULL, TB_LOG_ERROR, "fatal", line);
        return;
    }
    snprintf(line, sizeof(line), "client error %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
             reason ? reason : "");
    /* Single connection problems are the normal face of a broker restart: warn. */
    enum tb_log_level lvl = TB_LOG_WARN;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
        err == RD_KAFKA_RESP_ERR__SSL || err == RD_KAFKA_RESP_ERR__RESOLVE)
        lvl = TB_LOG_ERROR;
    log_limited(ctx ? &ctx->rl : NULL, lvl, "error", line);
}

/* ---------------------------------------------------------------------------------
 * Collector state
 * ------------------------------------------------------------------------------- */

struct tb_collector {
    const struct tb_config *cfg; /* borrowed */
    struct tb_mailbox *mb;       /* borrowed */
    rd_kafka_t *rk;
    struct client_ctx *ctx;      /* owned; outlives rk */

    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    pthread_mutex_t lock; /* guards the sleep below (with cond) */
    pthread_cond_t cond;  /* CLOCK_MONOTONIC */

    /* Collector thread only. */
    struct tb_tracker *tracker;
    struct tb_snapshot *prev;      /* last complete snapshot (owned ref) or NULL */
    struct tb_metrics *last_good;  /* its metrics (owned ref) or NULL */
    uint64_t cycles_ok, cycles_failed;
    int64_t last_success_ms;
    struct tb_client_stats stats;  /* latest statistics callback */
    unsigned requests;             /* estimate for the cycle in progress */
    int32_t cycle_broker_count;     /* brokers in this cycle's metadata (>= 1) */
    char error[256];               /* failure of the cycle in progress */
    struct tb_pod *pod;            /* pod signals (collector thread) */
    struct tb_canary *canary;      /* NULL unless canary.enabled; own threads */
};

static bool stopping(struct tb_collector *c)
{
    return atomic_load_explicit(&c->stop, memory_order_acquire);
}

/* Collector thread, from rd_kafka_poll(). Returns 0: librdkafka frees @json. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
    (void)rk;
    (void)json_len;
    struct client_ctx *ctx = opaque;
    struct tb_client_stats st;
    if (!ctx || !ctx->c)
        return 0;
    if (tb_stats_parse(json, &st) == 0) {
        /* rtt is a window reset at every statistics interval; one without requests
         * (the collector idles between cycles) keeps the last measured percentiles. */
        struct tb_client_stats *cur = &ctx->c->stats;
        if (!st.available && cur->available) {
            st.available = true;
            st.rtt_p50_ms = cur->rtt_p50_ms;
            st.rtt_p95_ms = cur->rtt_p95_ms;
            st.rtt_p99_ms = cur->rtt_p99_ms;
        }
        *cur = st;
    } else
        tb_debug(COMP, "unparsable statistics JSON ignored");
    return 0;
}

/* ---------------------------------------------------------------------------------
 * Client creation
 * ------------------------------------------------------------------------------- */

static const char *const enforced_props[] = {
    "isolation.level", "enable.auto.commit", "allow.auto.create.topics",
    "bootstrap.servers", "metadata.broker.list", "statistics.interval.ms",
};

static bool is_enforced(const char *name)
{
    for (size_t i = 0; i < sizeof(enforced_props) / sizeof(enforced_props[0]); i++)
        if (strcmp(name, enforced_props[i]) == 0)
            return true;
    return false;
}

/* Sets one property; on failure writes "@where: @option: reason" (secrets' values
 * are never echoed). */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    const char *where, const char *option, char *err, size_t errlen)
{
    char rderr[512];
    if (rd_kafka_conf_set(conf, name, value, rderr, sizeof(rderr)) == RD_KAFKA_CONF_OK)
        return 0;
    if (tb_config_property_is_secret(name))
        snprintf(err, errlen, "%s: %s: invalid setting for \"%s\" (value redacted)", where,
                 option, name);
    else
        snprintf(err, errlen, "%s: %s: %s", where, option, rderr);
    return -EINVAL;
}

/*
 * Builds the client configuration and creates the handle. @ctx becomes the handle's
 * opaque (callbacks); @with_stats installs the statistics callback. Returns 0 or
 * -errno with "FILE:LINE: message" in @err.
 */
static int client_new(const struct tb_config *cfg, struct client_ctx *ctx, bool with_stats,
                      rd_kafka_t **out, char *err, size_t errlen)
{
    const char *src = cfg->source_path ? cfg->source_path : "<config>";
    char where[512], num[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        snprintf(err, errlen, "%s: out of memory", src);
        return -ENOMEM;
    }
    rd_kafka_conf_set_opaque(conf, ctx);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (with_stats)
        rd_kafka_conf_set_stats_cb(conf, stats_cb);

    /* Defaults the user may override. */
    snprintf(where, sizeof(where), "%s", src);
    if (conf_set(conf, "client.id", "takhin-bridge", where, "kafka", err, errlen) ||
        conf_set(conf, "topic.metadata.refresh.interval.ms", "60000", where, "kafka", err, errlen))
        goto fail;

    for (size_t i = 0; i < cfg->property_count; i++) {
        const struct tb_kafka_property *p = &cfg->properties[i];
        snprintf(where, sizeof(where), "%s:%d", src, p->line);
        if (is_enforced(p->name)) {
            tb_warn(COMP, "%s: kafka.properties: \"%s\" is managed by the bridge; setting ignored%s",
                    where, p->name,
                    strcmp(p->name, "statistics.interval.ms") == 0
                        ? " (use kafka.statistics_interval_ms)"
                        : strstr(p->name, "broker") || strstr(p->name, "bootstrap")
                              ? " (use kafka.bootstrap_servers)"
                              : "");
            continue;
        }
        if (conf_set(conf, p->name, p->value, where, "kafka.properties", err, errlen))
            goto fail;
    }

    /* Enforced: lag semantics and safety. */
    snprintf(where, sizeof(where), "%s", src);
    snprintf(num, sizeof(num), "%d", with_stats ? cfg->statistics_interval_ms : 0);
    if (conf_set(conf, "bootstrap.servers", cfg->bootstrap_servers ? cfg->bootstrap_servers : "",
                 where, "kafka.bootstrap_servers", err, errlen) ||
        conf_set(conf, "statistics.interval.ms", num, where, "kafka.statistics_interval_ms", err,
                 errlen) ||
        conf_set(conf, "isolation.level", "read_uncommitted", where, "kafka", err, errlen) ||
        conf_set(conf, "enable.auto.commit", "false", where, "kafka", err, errlen) ||
        conf_set(conf, "allow.auto.create.topics", "false", where, "kafka", err, errlen))
        goto fail;

    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!rk) {
        snprintf(err, errlen, "%s: kafka: cannot create client: %s", src, rderr);
        goto fail;
    }
    *out = rk; /* rd_kafka_new() took ownership of conf */
    return 0;

fail:
    rd_kafka_conf_destroy(conf);
    return -EINVAL;
}

static void client_destroy(rd_kafka_t *rk)
{
    if (rk)
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

static struct client_ctx *ctx_new(struct tb_collector *c)
{
    struct client_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return NULL;
    if (pthread_mutex_init(&ctx->rl.lock, NULL) != 0) {
        free(ctx);
        return NULL;
    }
    ctx->c = c;
    return ctx;
}

static void ctx_free(struct client_ctx *ctx)
{
    if (!ctx)
        return;
    pthread_mutex_destroy(&ctx->rl.lock);
    free(ctx);
}

/* ---------------------------------------------------------------------------------
 * Filters
 * ------------------------------------------------------------------------------- */

static bool matches_any(const struct tb_strlist *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (fnmatch(l->items[i], name, 0) == 0)
            return true;
    return false;
}

static bool topic_wanted(const struct tb_config *cfg, const char *name)
{
    if (!cfg->include_internal_topics && name[0] == '_' && name[1] == '_')
        return false;
    /* the canary's probe topic is the bridge's own traffic, whatever its name */
    if (cfg->canary_enabled && cfg->canary_topic && strcmp(name, cfg->canary_topic) == 0)
        return false;
    if (cfg->topics_include.count && !matches_any(&cfg->topics_include, name))
        return false;
    return !matches_any(&cfg->topics_exclude, name);
}

static bool group_wanted(const struct tb_config *cfg, const char *id)
{
    if (cfg->groups_include.count && !matches_any(&cfg->groups_include, id))
        return false;
    return !matches_any(&cfg->groups_exclude, id);
}

/* ---------------------------------------------------------------------------------
 * One cycle
 * ------------------------------------------------------------------------------- */

/* Step results. */
enum { STEP_OK = 0, STEP_FAILED = -1, STEP_STOPPED = -2 };

static int fail_step(struct tb_collector *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail_step(struct tb_collector *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    return STEP_FAILED;
}

/* Copies @from's partitions into a new topic of @snap (carrying a topic over a
 * transient metadata error). Leaders are unknown meanwhile (-1), so its offsets are
 * not queried and stay unknown this cycle. */
static int carry_topic(struct tb_snapshot *snap, const struct tb_topic *from)
{
    struct tb_topic *t = tb_snapshot_add_topic(snap, from->name, from->partition_count);
    if (!t)
        return -ENOMEM;
    for (size_t i = 0; i < from->partition_count; i++) {
        t->partitions[i] = from->partitions[i];
        t->partitions[i].leader = -1;
        t->partitions[i].log_start = -1;
        t->partitions[i].high_watermark = -1;
        t->partitions[i].log_bytes = -1;
    }
    return 0;
}

static bool topic_err_means_absent(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
           err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION;
}

/* Step 1. */
static int step_metadata(struct tb_collector *c, rd_kafka_t *rk, struct tb_snapshot *snap)
{
    const struct tb_config *cfg = c->cfg;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, cfg->request_timeout_ms);
    c->requests++;
    if (err)
        return fail_step(c, "metadata: %s", rd_kafka_err2str(err));

    int rc = STEP_OK;
    snap->broker_count = md->broker_cnt;
    snap->controller_id = -1; /* not exposed by rd_kafka_metadata() in 2.0.2 */
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[i];
        if (!mt->topic || !topic_wanted(cfg, mt->topic))
            continue;
        if (mt->err && topic_err_means_absent(mt->err))
            continue;
        if (mt->err && mt->partition_cnt <= 0) {
            const struct tb_topic *old = c->prev ? tb_snapshot_find_topic(c->prev, mt->topic) : NULL;
            tb_debug(COMP, "topic %s: metadata error %s: %s", mt->topic, rd_kafka_err2name(mt->err),
                     old ? "previous partitions kept" : "skipped this cycle");
            if (old && carry_topic(snap, old) != 0) {
                rc = fail_step(c, "metadata: out of memory");
                break;
            }
            continue;
        }
        size_t n = mt->partition_cnt > 0 ? (size_t)mt->partition_cnt : 0;
        struct tb_topic *t = tb_snapshot_add_topic(snap, mt->topic, n);
        if (!t) {
            rc = fail_step(c, "metadata: out of memory");
            break;
        }
        for (size_t j = 0; j < n; j++) {
            const struct rd_kafka_metadata_partition *mp = &mt->partitions[j];
            t->partitions[j].id = mp->id;
            t->partitions[j].leader = mp->leader >= 0 ? mp->leader : -1;
            t->partitions[j].log_start = -1;
            t->partitions[j].high_watermark = -1;
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

struct group_ref {
    const struct rd_kafka_group_info *gi;
    size_t order;
};

static int cmp_group_ref(const void *a, const void *b)
{
    const struct group_ref *x = a, *y = b;
    int r = strcmp(x->gi->group, y->gi->group);
    if (r)
        return r;
    return x->order < y->order ? -1 : x->order > y->order;
}

/*
 * Groups on the new consumer protocol (KIP-848, Kafka 4.x) are listed by ListGroups
 * but unknown to the classic DescribeGroups that rd_kafka_list_groups() sends: they
 * come back with NO_ERROR, state "Dead", no protocol type and no members, even while
 * consuming. For those groups only, the state is taken from the admin
 * ListConsumerGroups (plain ListGroups, which reports their real state); their member
 * count cannot be read with librdkafka 2.0.2 (no ConsumerGroupDescribe) and stays 0.
 */
static bool needs_listed_state(const struct rd_kafka_group_info *gi)
{
    return !gi->err && gi->state && strcmp(gi->state, "Dead") == 0 &&
           (!gi->protocol_type || !gi->protocol_type[0]);
}

struct listed_state {
    char *id;
    const char *state; /* static, from rd_kafka_consumer_group_state_name() */
};

static int cmp_listed_state(const void *a, const void *b)
{
    return strcmp(((const struct listed_state *)a)->id, ((const struct listed_state *)b)->id);
}

static void listed_states_free(struct listed_state *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].id);
    free(v);
}

/* One ListConsumerGroups round. Returns 0 with *out sorted by id; -EIO if the
 * request or any broker failed (an incomplete listing is not used); -ECANCELED when
 * the collector is stopping. */
static int list_group_states(struct tb_collector *c, rd_kafka_t *rk, struct listed_state **out,
                             size_t *count)
{
    char errstr[512];
    int rc = -EIO;
    rd_kafka_event_t *ev = NULL;
    struct listed_state *v = NULL;
    const rd_kafka_ListConsumerGroups_result_t *res;
    const rd_kafka_ConsumerGroupListing_t **gs;
    size_t n = 0, nerr = 0, k = 0;
    int64_t deadline;
    *out = NULL;
    *count = 0;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    if (!q || !opts ||
        rd_kafka_AdminOptions_set_request_timeout(opts, c->cfg->request_timeout_ms, errstr,
                                                  sizeof(errstr)))
        goto out;
    rd_kafka_ListConsumerGroups(rk, opts, q);
    c->requests += (unsigned)c->cycle_broker_count;
    deadline = mono_ms() + c->cfg->request_timeout_ms + ADMIN_GRACE_MS;
    while (!ev) {
        if (stopping(c)) {
            rc = -ECANCELED;
            goto out;
        }
        if (mono_ms() > deadline)
            goto out;
        ev = rd_kafka_queue_poll(q, POLL_SLICE_MS);
        if (ev && rd_kafka_event_type(ev) != RD_KAFKA_EVENT_LISTCONSUMERGROUPS_RESULT) {
            rd_kafka_event_destroy(ev);
            ev = NULL;
        }
    }
    res = rd_kafka_event_ListConsumerGroups_result(ev);
    if (rd_kafka_event_error(ev) || !res)
        goto out;
    /* Per-broker errors arrive with a NO_ERROR event: the listing is incomplete. */
    rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
    if (nerr)
        goto out;
    gs = rd_kafka_ListConsumerGroups_result_valid(res, &n);
    v = calloc(n ? n : 1, sizeof(*v));
    if (!v)
        goto out;
    for (size_t i = 0; i < n; i++) {
        v[k].id = strdup(rd_kafka_ConsumerGroupListing_group_id(gs[i]));
        if (!v[k].id)
            goto out;
        v[k].state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(gs[i]));
        k++;
    }
    /* Sort; duplicates (a group reported by two brokers) are harmless for lookups. */
    qsort(v, k, sizeof(*v), cmp_listed_state);
    *out = v;
    *count = k;
    v = NULL;
    rc = 0;
out:
    if (v)
        listed_states_free(v, n);
    if (ev)
        rd_kafka_event_destroy(ev);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    return rc;
}

/* Step 2. */
static int step_groups(struct tb_collector *c, rd_kafka_t *rk, struct tb_snapshot *snap)
{
    const struct tb_config *cfg = c->cfg;
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t err = rd_kafka_list_groups(rk, NULL, &gl, cfg->request_timeout_ms);
    c->cycle_broker_count = snap->broker_count > 0 ? snap->broker_count : 1;
    c->requests += 2u * (unsigned)c->cycle_broker_count;
    if (err) {
        if (gl) /* _PARTIAL hands over an incomplete list */
            rd_kafka_group_list_destroy(gl);
        return fail_step(c, "list groups: %s", rd_kafka_err2str(err));
    }

    int rc = STEP_OK;
    size_t n = 0;
    struct group_ref *refs = calloc(gl->group_cnt > 0 ? (size_t)gl->group_cnt : 1, sizeof(*refs));
    if (!refs) {
        rd_kafka_group_list_destroy(gl);
        return fail_step(c, "list groups: out of memory");
    }
    for (int i = 0; i < gl->group_cnt; i++) {
        const struct rd_kafka_group_info *gi = &gl->groups[i];
        if (!gi->group || !group_wanted(cfg, gi->group))
            continue;
        refs[n].gi = gi;
        refs[n].order = (size_t)i;
        n++;
    }
    /* Sorted by (id, original position): the first of each run is the first reported. */
    qsort(refs, n, sizeof(*refs), cmp_group_ref);

    struct listed_state *listed = NULL;
    size_t listed_count = 0;
    int listed_rc = 1; /* 1 = not needed */
    for (size_t i = 0; i < n && listed_rc == 1; i++)
        if (needs_listed_state(refs[i].gi))
            listed_rc = list_group_states(c, rk, &listed, &listed_count);
    if (listed_rc == -ECANCELED) {
        free(refs);
        rd_kafka_group_list_destroy(gl);
        return STEP_STOPPED;
    }
    if (listed_rc < 0)
        tb_debug(COMP, "list consumer groups failed: states of non-classic groups kept");

    for (size_t i = 0; i < n; i++) {
        const struct rd_kafka_group_info *gi = refs[i].gi;
        if (i > 0 && strcmp(refs[i - 1].gi->group, gi->group) == 0)
            continue;
        const char *state = gi->state && gi->state[0] ? gi->state : "Unknown";
        int32_t members = gi->member_cnt > 0 ? gi->member_cnt : 0;
        const struct tb_group *old = c->prev ? tb_snapshot_find_group(c->prev, gi->group) : NULL;
        if (gi->err) {
            tb_debug(COMP, "group %s: describe error %s: %s", gi->group, rd_kafka_err2name(gi->err),
                     old ? "previous state kept" : "state unknown");
            state = old ? old->state : "Unknown";
            members = old ? old->members : 0;
        } else if (needs_listed_state(gi)) {
            struct listed_state key = {.id = (char *)gi->group};
            const struct listed_state *ls =
                listed_rc == 0 ? bsearch(&key, listed, listed_count, sizeof(*listed), cmp_listed_state)
                               : NULL;
            if (ls) {
                state = ls->state;
                members = 0;
            } else if (listed_rc == 0) {
                state = "Dead"; /* really gone: not listed any more */
                members = 0;
            } else {
                state = old ? old->state : "Unknown";
                members = old ? old->members : 0;
            }
        }
        if (!tb_snapshot_add_group(snap, gi->group, state, members)) {
            rc = fail_step(c, "list groups: out of memory");
            break;
        }
    }
    listed_states_free(listed, listed_count);
    free(refs);
    rd_kafka_group_list_destroy(gl);
    return rc;
}

/* Step 3 helpers. */
enum { FETCH_PENDING = 0, FETCH_OK, FETCH_FAILED };

/* Stores the committed offsets of one result into @g; returns 0, -EAGAIN when the
 * result carries an error (then nothing is stored), -ENOMEM. */
static int apply_offsets(struct tb_collector *c, struct tb_group *g, rd_kafka_event_t *ev,
                         char *why, size_t whylen)
{
    if (rd_kafka_event_error(ev)) {
        snprintf(why, whylen, "%s", rd_kafka_event_error_string(ev));
        return -EAGAIN;
    }
    const rd_kafka_ListConsumerGroupOffsets_result_t *res =
        rd_kafka_event_ListConsumerGroupOffsets_result(ev);
    size_t cnt = 0;
    const rd_kafka_group_result_t **groups =
        res ? rd_kafka_ListConsumerGroupOffsets_result_groups(res, &cnt) : NULL;
    if (!groups || cnt != 1) {
        snprintf(why, whylen, "unexpected result (%zu groups)", cnt);
        return -EAGAIN;
    }
    const rd_kafka_error_t *gerr = rd_kafka_group_result_error(groups[0]);
    if (gerr) {
        snprintf(why, whylen, "%s", rd_kafka_error_string(gerr));
        return -EAGAIN;
    }
    const rd_kafka_topic_partition_list_t *parts = rd_kafka_group_result_partitions(groups[0]);
    if (parts) {
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].err) {
                snprintf(why, whylen, "%s [%" PRId32 "]: %s", parts->elems[i].topic,
                         parts->elems[i].partition, rd_kafka_err2str(parts->elems[i].err));
                return -EAGAIN;
            }
        for (int i = 0; i < parts->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &parts->elems[i];
            if (p->offset < 0 || !topic_wanted(c->cfg, p->topic))
                continue;
            if (tb_group_add_offset(g, p->topic, p->partition, p->offset) != 0)
                return -ENOMEM;
        }
    }
    g->offsets_known = true;
    g->offsets_carried = false;
    g->offsets_taken_ms = wall_ms();
    return 0;
}

static int carry_offsets(struct tb_collector *c, struct tb_group *g)
{
    const struct tb_group *old = c->prev ? tb_snapshot_find_group(c->prev, g->id) : NULL;
    if (!old || !old->offsets_known) {
        g->offsets_known = false;
        g->offsets_carried = false;
        return 0;
    }
    if (tb_group_copy_offsets(g, old) != 0)
        return -ENOMEM;
    g->offsets_known = true;
    g->offsets_carried = true;
    g->offsets_taken_ms = old->offsets_taken_ms;
    return 0;
}

/* Step 3. */
static int step_offsets(struct tb_collector *c, rd_kafka_t *rk, struct tb_snapshot *snap)
{
    const struct tb_config *cfg = c->cfg;
    size_t n = snap->group_count;
    if (n == 0)
        return STEP_OK;

    int rc = STEP_OK;
    char errstr[512];
    unsigned char *state = calloc(n, 1);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    if (!state || !q || !opts) {
        rc = fail_step(c, "committed offsets: out of memory");
        goto out;
    }
    if (rd_kafka_AdminOptions_set_request_timeout(opts, cfg->request_timeout_ms, errstr,
                                                  sizeof(errstr))) {
        rc = fail_step(c, "committed offsets: %s", errstr);
        goto out;
    }

    size_t next = 0, outstanding = 0, done = 0, failed = 0;
    size_t max_in_flight = cfg->max_in_flight > 0 ? (size_t)cfg->max_in_flight : 1;
    /* OffsetFetch, plus FindCoordinator when the coordinator cache cannot hold them all
     * (with fewer groups only the first cycle looks coordinators up: not counted). */
    unsigned per_group = n > COORD_CACHE_ENTRIES ? 2u : 1u;
    int64_t last_progress = mono_ms();
    char why[512];
    while (done < n) {
        while (outstanding < max_in_flight && next < n) {
            rd_kafka_ListConsumerGroupOffsets_t *req =
                rd_kafka_ListConsumerGroupOffsets_new(snap->groups[next].id, NULL);
            if (!req) {
                rc = fail_step(c, "committed offsets: out of memory");
                goto out;
            }
            rd_kafka_AdminOptions_set_opaque(opts, (void *)(uintptr_t)(next + 1));
            /* Copies @req and @opts. */
            rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, opts, q);
            rd_kafka_ListConsumerGroupOffsets_destroy(req);
            c->requests += per_group;
            next++;
            outstanding++;
            last_progress = mono_ms();
        }
        if (stopping(c)) {
            rc = STEP_STOPPED;
            goto out;
        }
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, POLL_SLICE_MS);
        if (!ev) {
            if (mono_ms() - last_progress > (int64_t)cfg->request_timeout_ms + ADMIN_GRACE_MS) {
                /* Results overdue: treat every outstanding group as failed. */
                for (size_t i = 0; i < next; i++)
                    if (state[i] == FETCH_PENDING) {
                        state[i] = FETCH_FAILED;
                        failed++;
                        done++;
                        if (carry_offsets(c, &snap->groups[i]) != 0) {
                            rc = fail_step(c, "committed offsets: out of memory");
                            goto out;
                        }
                    }
                outstanding = 0;
                last_progress = mono_ms();
                log_limited(&c->ctx->rl, TB_LOG_WARN, "offsets",
                            "committed offsets: results overdue; previous offsets kept");
            }
            continue;
        }
        if (rd_kafka_event_type(ev) != RD_KAFKA_EVENT_LISTCONSUMERGROUPOFFSETS_RESULT) {
            rd_kafka_event_destroy(ev);
            continue;
        }
        uintptr_t tag = (uintptr_t)rd_kafka_event_opaque(ev);
        if (tag == 0 || tag > next || state[tag - 1] != FETCH_PENDING) {
            rd_kafka_event_destroy(ev);
            continue;
        }
        size_t gi = tag - 1;
        struct tb_group *g = &snap->groups[gi];
        int r = apply_offsets(c, g, ev, why, sizeof(why));
        rd_kafka_event_destroy(ev);
        outstanding--;
        done++;
        last_progress = mono_ms();
        if (r == -ENOMEM) {
            rc = fail_step(c, "committed offsets: out of memory");
            goto out;
        }
        if (r == 0) {
            state[gi] = FETCH_OK;
            continue;
        }
        state[gi] = FETCH_FAILED;
        failed++;
        char line[640];
        snprintf(line, sizeof(line), "committed offsets of a group failed: %s", why);
        log_limited(&c->ctx->rl, TB_LOG_WARN, "offsets", line);
        tb_debug(COMP, "group %s: committed offsets failed: %s", g->id, why);
        if (carry_offsets(c, g) != 0) {
            rc = fail_step(c, "committed offsets: out of memory");
            goto out;
        }
    }
    if (failed) {
        char line[160];
        snprintf(line, sizeof(line),
                 "committed offsets: %zu of %zu groups failed this cycle (previous offsets kept)",
                 failed, n);
        log_limited(&c->ctx->rl, TB_LOG_INFO, "offsets", line);
    }

out:
    /* Destroying the queue while requests are outstanding is safe: late results are
     * dropped by librdkafka. */
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    free(state);
    return rc;
}

/* A partition to query, with its topic's name (borrowed from the snapshot). */
struct query_entry {
    struct tb_partition *part;
    const char *topic;
};

static int cmp_entry_leader(const void *a, const void *b)
{
    int32_t x = ((const struct query_entry *)a)->part->leader;
    int32_t y = ((const struct query_entry *)b)->part->leader;
    return x < y ? -1 : x > y;
}

/* Entries are sorted by leader: distinct leaders = ListOffsets requests per attempt. */
static unsigned distinct_leaders(const struct query_entry *e, size_t n)
{
    unsigned d = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || e[i].part->leader != e[i - 1].part->leader)
            d++;
    return d;
}

/* One chunk of one kind (RD_KAFKA_OFFSET_END / _BEGINNING), with one retry. */
static int query_chunk(struct tb_collector *c, rd_kafka_t *rk, const struct query_entry *e,
                       size_t n, int64_t which)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    unsigned leaders = distinct_leaders(e, n);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (stopping(c))
            return STEP_STOPPED;
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)n);
        if (!l)
            return fail_step(c, "list offsets: out of memory");
        for (size_t i = 0; i < n; i++)
            rd_kafka_topic_partition_list_add(l, e[i].topic, e[i].part->id)->offset = which;
        c->requests += leaders;
        err = rd_kafka_offsets_for_times(rk, l, c->cfg->request_timeout_ms);
        if (!err) {
            /* The list is updated in place, order preserved; verify anyway. */
            for (int i = 0; i < l->cnt && (size_t)i < n; i++) {
                const rd_kafka_topic_partition_t *r = &l->elems[i];
                if (r->partition != e[i].part->id || strcmp(r->topic, e[i].topic) != 0)
                    continue;
                int64_t v = (r->err || r->offset < 0) ? -1 : r->offset;
                if (which == RD_KAFKA_OFFSET_END)
                    e[i].part->high_watermark = v;
                else
                    e[i].part->log_start = v;
            }
            rd_kafka_topic_partition_list_destroy(l);
            return STEP_OK;
        }
        rd_kafka_topic_partition_list_destroy(l);
        if (attempt == 0)
            tb_debug(COMP, "list offsets chunk of %zu partitions failed (%s); retrying", n,
                     rd_kafka_err2name(err));
    }
    return fail_step(c, "list %s offsets: %s", which == RD_KAFKA_OFFSET_END ? "end" : "start",
                     rd_kafka_err2str(err));
}

/* Step 4: log start offsets, then end offsets; records snap->mono_ms. */
static int step_end_offsets(struct tb_collector *c, rd_kafka_t *rk, struct tb_snapshot *snap)
{
    size_t total = tb_snapshot_total_partitions(snap), n = 0;
    int rc = STEP_OK;
    size_t chunk = c->cfg->list_offsets_chunk > 0 ? (size_t)c->cfg->list_offsets_chunk : 1000;
    struct query_entry *e = calloc(total ? total : 1, sizeof(*e));
    if (!e)
        return fail_step(c, "list offsets: out of memory");
    /* Partition pointers are stable now: no topic is added after step 1. */
    for (size_t t = 0; t < snap->topic_count; t++)
        for (size_t p = 0; p < snap->topics[t].partition_count; p++)
            if (snap->topics[t].partitions[p].leader >= 0) {
                e[n].part = &snap->topics[t].partitions[p];
                e[n].topic = snap->topics[t].name;
                n++;
            }
    /* Grouped by leader, a chunk reaches as few brokers as possible. */
    qsort(e, n, sizeof(*e), cmp_entry_leader);

    static const int64_t kinds[2] = {RD_KAFKA_OFFSET_BEGINNING, RD_KAFKA_OFFSET_END};
    for (int k = 0; k < 2 && rc == STEP_OK; k++)
        for (size_t off = 0; off < n && rc == STEP_OK; off += chunk)
            rc = query_chunk(c, rk, e + off, n - off < chunk ? n - off : chunk, kinds[k]);
    snap->mono_ms = mono_ms();
    free(e);
    return rc;
}

/* Step 4b (never fails the cycle): sizes from the pod's log directories. A failed scan
 * leaves the snapshot without sizes (sizes_known = false: fields unavailable). */
static void step_log_sizes(struct tb_collector *c, struct tb_snapshot *snap)
{
    if (!tb_pod_has_log_dirs(c->pod))
        return;
    struct tb_logdir_scan scan;
    if (tb_pod_scan_logs(c->pod, &scan) != 0)
        return;
    snap->sizes_mono_ms = mono_ms();
    for (size_t t = 0; t < snap->topic_count; t++) {
        struct tb_topic *tp = &snap->topics[t];
        for (size_t p = 0; p < tp->partition_count; p++) {
            const struct tb_logdir_partition *lp =
                tb_logdir_scan_find(&scan, tp->name, tp->partitions[p].id);
            tp->partitions[p].log_bytes = lp ? lp->log_bytes : -1;
        }
    }
    snap->disk_bytes = scan.disk_bytes;
    snap->sizes_known = true;
    tb_logdir_scan_release(&scan);
}

/* Fills the status fields common to both outcomes. */
static void fill_status(struct tb_collector *c, struct tb_status *st, int64_t cycle_ms, bool ok)
{
    memset(st, 0, sizeof(*st));
    st->published_ms = wall_ms();
    st->last_success_ms = c->last_success_ms;
    st->cycle_ms = cycle_ms;
    st->requests_last_cycle = c->requests;
    st->cycles_ok = c->cycles_ok;
    st->cycles_failed = c->cycles_failed;
    st->last_ok = ok;
    if (!ok)
        snprintf(st->last_error, sizeof(st->last_error), "%s", c->error);
    st->stale_after_ms = c->cfg->stale_after_ms;
    st->client = c->stats;
    tb_canary_read(c->canary, &st->canary);
    tb_pod_sample(c->pod, &st->pod);
}

static void publish(struct tb_collector *c, struct tb_metrics *m, const struct tb_status *st,
                    struct tb_event_list *events)
{
    struct tb_update *u = tb_update_new(m, st);
    if (!u) {
        tb_error(COMP, "out of memory: update not published");
        tb_event_list_clear(events);
        return;
    }
    tb_mailbox_publish(c->mb, u, events);
}

static void run_cycle(struct tb_collector *c)
{
    int64_t t0 = mono_ms();
    c->requests = 0;
    c->error[0] = '\0';
    rd_kafka_poll(c->rk, 0); /* serve stats and error callbacks */

    struct tb_event_list events;
    tb_event_list_init(&events);
    struct tb_metrics *m = NULL;
    struct tb_snapshot *snap = tb_snapshot_new(wall_ms());
    int rc;
    if (!snap) {
        rc = fail_step(c, "out of memory");
        goto failed;
    }

    /* Step durations (ms), for the debug cycle summary. */
    int64_t t_md = 0, t_gr = 0, t_off = 0, t_end = 0, t_mark = t0;
    rc = step_metadata(c, c->rk, snap);
    t_md = mono_ms() - t_mark;
    t_mark += t_md;
    if (rc == STEP_OK)
        rc = stopping(c) ? STEP_STOPPED : step_groups(c, c->rk, snap);
    rd_kafka_poll(c->rk, 0);
    t_gr = mono_ms() - t_mark;
    t_mark += t_gr;
    if (rc == STEP_OK)
        rc = stopping(c) ? STEP_STOPPED : step_offsets(c, c->rk, snap);
    t_off = mono_ms() - t_mark;
    t_mark += t_off;
    if (rc == STEP_OK)
        rc = stopping(c) ? STEP_STOPPED : step_end_offsets(c, c->rk, snap);
    if (rc == STEP_OK)
        step_log_sizes(c, snap);
    rd_kafka_poll(c->rk, 0);
    t_end = mono_ms() - t_mark;
    t_mark += t_end;
    if (rc == STEP_STOPPED)
        goto stopped;
    if (rc != STEP_OK)
        goto failed;

    tb_snapshot_finalize(snap);
    m = tb_metrics_compute(c->prev, snap);
    if (!m) {
        rc = fail_step(c, "out of memory computing metrics");
        goto failed;
    }
    if (tb_tracker_observe(c->tracker, snap, &events) != 0) {
        rc = fail_step(c, "out of memory computing events");
        goto failed;
    }

    int64_t now = wall_ms();
    c->cycles_ok++;
    c->last_success_ms = now;
    tb_snapshot_unref(c->prev);
    c->prev = snap; /* our reference moves */
    snap = NULL;
    tb_metrics_unref(c->last_good);
    c->last_good = m; /* our reference moves */
    m = NULL;

    struct tb_status st;
    fill_status(c, &st, mono_ms() - t0, true);
    tb_debug(COMP,
             "cycle ok in %" PRId64 " ms: %" PRId32 " brokers, %zu topics, %zu partitions, "
             "%zu groups, %zu events, ~%u requests (ms: metadata %" PRId64 ", groups %" PRId64
             ", committed %" PRId64 ", end offsets %" PRId64 ", metrics %" PRId64 ")",
             st.cycle_ms, c->prev->broker_count, c->prev->topic_count,
             tb_snapshot_total_partitions(c->prev), c->prev->group_count, events.count,
             c->requests, t_md, t_gr, t_off, t_end, st.cycle_ms - (t_mark - t0));
    publish(c, c->last_good, &st, &events);
    return;

failed:
    tb_metrics_unref(m);
    tb_snapshot_unref(snap);
    tb_event_list_clear(&events);
    c->cycles_failed++;
    {
        struct tb_status fst;
        fill_status(c, &fst, mono_ms() - t0, false);
        log_limited(&c->ctx->rl, TB_LOG_WARN, "cycle", c->error);
        tb_debug(COMP, "cycle failed in %" PRId64 " ms (~%u requests): %s", fst.cycle_ms,
                 c->requests, c->error);
        publish(c, c->last_good, &fst, &events);
    }
    return;

stopped:
    tb_metrics_unref(m);
    tb_snapshot_unref(snap);
    tb_event_list_clear(&events);
}

/* ---------------------------------------------------------------------------------
 * Thread
 * ------------------------------------------------------------------------------- */

/* Sleeps until CLOCK_MONOTONIC @deadline_ms or until stopped. */
static void sleep_until(struct tb_collector *c, int64_t deadline_ms)
{
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000L};
    pthread_mutex_lock(&c->lock);
    while (!stopping(c) && mono_ms() < deadline_ms)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&c->lock);
}

static void *collector_main(void *arg)
{
    struct tb_collector *c = arg;
    tb_debug(COMP, "collector thread started (poll every %d ms)", c->cfg->poll_interval_ms);
    while (!stopping(c)) {
        int64_t start = mono_ms();
        run_cycle(c);
        sleep_until(c, start + c->cfg->poll_interval_ms);
    }
    tb_debug(COMP, "collector thread stopping");
    return NULL;
}

static void collector_free(struct tb_collector *c)
{
    tb_canary_stop(c->canary); /* after the thread: it was the canary's only reader */
    tb_pod_free(c->pod);
    client_destroy(c->rk); /* after the thread: no callback can run any more */
    ctx_free(c->ctx);
    tb_tracker_free(c->tracker);
    tb_snapshot_unref(c->prev);
    tb_metrics_unref(c->last_good);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int tb_collector_start(const struct tb_config *cfg, struct tb_mailbox *mb,
                       struct tb_collector **out, char *err, size_t errlen)
{
    *out = NULL;
    struct tb_collector *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->cfg = cfg;
    c->mb = mb;
    atomic_init(&c->stop, false);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc) {
        free(c);
        snprintf(err, errlen, "pthread_cond_init: %s", strerror(rc));
        return -rc;
    }
    rc = pthread_mutex_init(&c->lock, NULL);
    if (rc) {
        pthread_cond_destroy(&c->cond);
        free(c);
        snprintf(err, errlen, "pthread_mutex_init: %s", strerror(rc));
        return -rc;
    }

    c->ctx = ctx_new(c);
    c->tracker = tb_tracker_new(cfg->topic_delete_confirm_cycles, cfg->group_delete_confirm_cycles);
    if (!c->ctx || !c->tracker) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    rc = client_new(cfg, c->ctx, cfg->statistics_interval_ms > 0, &c->rk, err, errlen);
    if (rc)
        goto fail;
    struct tb_pod_options po = {
        .proc_root = cfg->pod_proc_root,
        .broker_port = cfg->pod_broker_port,
        .process_match = cfg->pod_process_match,
        .log_dirs = (const char *const *)cfg->pod_log_dirs.items,
        .log_dir_count = cfg->pod_log_dirs.count,
    };
    c->pod = tb_pod_new(&po);
    if (!c->pod) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    if (cfg->canary_enabled && (rc = tb_canary_start(cfg, &c->canary, err, errlen)) != 0)
        goto fail;

    /* The collector thread takes no signals: main handles them. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&c->thread, NULL, collector_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        snprintf(err, errlen, "cannot start collector thread: %s", strerror(rc));
        rc = -rc;
        goto fail;
    }
    c->thread_started = true;
    *out = c;
    return 0;

fail:
    collector_free(c);
    return rc;
}

void tb_collector_stop(struct tb_collector *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    atomic_store_explicit(&c->stop, true, memory_order_release);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    collector_free(c);
}

int tb_collector_probe(const struct tb_config *cfg, int *brokers, int *topics, char *err,
                       size_t errlen)
{
    *brokers = 0;
    *topics = 0;
    struct client_ctx *ctx = ctx_new(NULL);
    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    rd_kafka_t *rk = NULL;
    int rc = client_new(cfg, ctx, false, &rk, err, errlen);
    if (rc)
        goto out;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_metadata(rk, 1, NULL, &md, cfg->request_timeout_ms);
    rd_kafka_poll(rk, 0); /* serve the error callback (logs why, rate-limited) */
    if (kerr) {
        snprintf(err, errlen, "cannot fetch metadata from %s: %s", cfg->bootstrap_servers,
                 rd_kafka_err2str(kerr));
        rc = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? -ETIMEDOUT : -EIO;
        goto out;
    }
    *brokers = md->broker_cnt;
    for (int i = 0; i < md->topic_cnt; i++)
        if (md->topics[i].topic && !topic_err_means_absent(md->topics[i].err) &&
            topic_wanted(cfg, md->topics[i].topic))
            (*topics)++;
    rd_kafka_metadata_destroy(md);
out:
    client_destroy(rk);
    ctx_free(ctx);
    return rc;
}
