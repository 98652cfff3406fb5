/*
 * canary.c - end-to-end latency probe. See include/tb/canary.h for what is measured.
 *
 * Design
 *   Two librdkafka handles: a PRODUCER (acks=all, linger.ms=0, enable.idempotence=false,
 *   message.timeout.ms = canary.lost_after_ms) and a CONSUMER without group.id, read
 *   with the simple (legacy) consumer API: rd_kafka_consume_start_queue() per partition
 *   at an explicit offset, all partitions on one queue. A group.id would make the
 *   consumer look up a coordinator and could surface a group in the cluster (and in the
 *   bridge's own group list); assign() and consumer_poll() refuse to work without one.
 *   A partition starts at its end offset read with rd_kafka_offsets_for_times() right
 *   before the first probe to it, so no probe can be skipped by a late OFFSET_END
 *   resolution; partitions that stay are never restarted. Both handles get the user's
 *   kafka.properties (TLS, SASL, ...) and allow.auto.create.topics=false.
 *
 *   In-flight probes live in a fixed ring indexed by seq % cap (cap = partitions x
 *   (lost_after / interval + 2), bounded by MAX_PROBES): memory does not grow with
 *   time or outages. A probe still pending when its slot is needed again is counted
 *   lost (only possible beyond MAX_PROBES in flight).
 *
 *   Threads
 *     canary thread: owns the consumer (and serves its callbacks); refreshes metadata (before a round of sends,
 *       so that no probe is in flight while it blocks), creates the topic, sends the
 *       probes, polls the consumer (wakes as soon as a probe arrives, at most every
 *       100 ms), expires lost probes. Fields marked "canary thread" are its own.
 *     delivery-report thread: rd_kafka_poll(producer, 100 ms) in a loop, so delivery
 *       reports (and rd_kafka_message_latency(), which is measured when it is called)
 *       are served at once.
 *     any thread: tb_canary_read() (the collector, once per cycle).
 *   Everything both sides touch (histograms, ring, counters, error text) is guarded by
 *   c->lock; critical sections are short (the histogram query merges 12 x 2688
 *   counters, a few microseconds).
 *
 *   Availability (tb_canary_read): a side is available when its window has samples and
 *   its last success (ack, resp. receipt) is at most lost_after_ms + interval_ms old;
 *   otherwise its percentiles are withheld (state "failing") even though old samples
 *   are still in the window. The error text is the latest problem (metadata, topic
 *   creation, produce or consume errors, lost probes, client errors) and is cleared
 *   by the next probe that comes back.
 *
 *   Logging: librdkafka's own log lines go to debug; the canary logs its state changes
 *   (starting -> ok, ok -> failing with the reason, failing -> ok) and topic problems
 *   once per change.
 */
#include "tb/canary.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "tb/histogram.h"
#include "tb/log.h"

#define COMP "canary"
#define META_REFRESH_MS 30000
#define RETRY_MS 1000          /* refresh retry before the first partitions are known */
#define RETRY_PROBING_MS 10000 /* ... and while known partitions are being probed */
#define POLL_MAX_MS 100
#define ADMIN_GRACE_MS 2000
#define MAX_PROBES (1u << 18)
#define PAYLOAD_MAGIC "takhin-canary/1"
#define TOPIC_RETENTION_MS "3600000"

struct probe {
    uint64_t seq;
    int64_t sent_us; /* CLOCK_MONOTONIC */
    int32_t partition;
    bool pending;
};

struct tb_canary {
    const struct tb_config *cfg; /* borrowed */
    rd_kafka_t *prod, *cons;
    rd_kafka_topic_t *rkt;  /* the topic on the consumer */
    rd_kafka_queue_t *queue; /* every consumed partition's messages */
    char run_id[17];
    int64_t window_ms;

    pthread_t thread, dr_thread;
    bool started, dr_started;
    atomic_bool stop;

    pthread_mutex_t lock; /* guards everything down to the next comment */
    struct tb_hist *produce_hist, *fetch_hist;
    struct probe *probes;
    size_t cap;
    uint64_t next_seq;
    uint64_t sent, acked, received, lost, produce_errors;
    int64_t last_ack_ms, last_recv_ms; /* CLOCK_MONOTONIC; 0 = never */
    int32_t probing;                   /* partitions probed per round */
    char error[192];
    char last_state[16];               /* for logging state changes */

    /* canary thread */
    int32_t *assigned;                 /* sorted partition ids being consumed */
    size_t nassigned;
    char coverage[160];                /* last leader-coverage warning ("" = none) */
    char topic_problem[192];           /* last logged topic problem */
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ms(void) { return mono_us() / 1000; }

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool stopping(struct tb_canary *c)
{
    return atomic_load_explicit(&c->stop, memory_order_acquire);
}

/* Records the latest problem (shown while the canary is failing). Takes the lock. */
static void set_error(struct tb_canary *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(struct tb_canary *c, const char *fmt, ...)
{
    char buf[sizeof(c->error)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&c->lock);
    memcpy(c->error, buf, sizeof(buf));
    pthread_mutex_unlock(&c->lock);
    tb_debug(COMP, "%s", buf);
}

/* A topic problem: recorded, and logged once per distinct problem (canary thread). */
static void topic_problem(struct tb_canary *c, enum tb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void topic_problem(struct tb_canary *c, enum tb_log_level level, const char *fmt, ...)
{
    char buf[sizeof(c->topic_problem)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (strcmp(buf, c->topic_problem) != 0)
        tb_log(level, COMP, "%s", buf);
    memcpy(c->topic_problem, buf, sizeof(buf));
    set_error(c, "%s", buf);
}

/* ---------------------------------------------------------------------------------
 * librdkafka callbacks
 * ------------------------------------------------------------------------------- */

/* Any librdkafka thread. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    if (tb_log_get_level() > TB_LOG_DEBUG)
        return;
    tb_debug(COMP, "librdkafka %s: %s", fac ? fac : "-", buf ? buf : "");
}

/* The thread polling the handle (canary thread or delivery-report thread). */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct tb_canary *c = opaque;
    set_error(c, "client: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
              reason ? reason : "");
}

/* Delivery-report thread. */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct tb_canary *c = opaque;
    int64_t latency_us = rd_kafka_message_latency(m); /* measured now: call it first */
    int64_t now = mono_ms();
    if (m->err) {
        pthread_mutex_lock(&c->lock);
        c->produce_errors++;
        snprintf(c->error, sizeof(c->error), "produce to partition %" PRId32 ": %s",
                 m->partition, rd_kafka_err2str(m->err));
        pthread_mutex_unlock(&c->lock);
        return;
    }
    pthread_mutex_lock(&c->lock);
    c->acked++;
    c->last_ack_ms = now;
    if (latency_us >= 0)
        tb_hist_record(c->produce_hist, now, (uint64_t)latency_us);
    pthread_mutex_unlock(&c->lock);
}

/* ---------------------------------------------------------------------------------
 * Clients
 * ------------------------------------------------------------------------------- */

/* Set by the canary whatever kafka.properties says. */
static const char *const managed[] = {
    "bootstrap.servers", "metadata.broker.list", "statistics.interval.ms",
    "allow.auto.create.topics", "isolation.level", "enable.auto.commit",
    "enable.auto.offset.store", "enable.partition.eof", "acks", "request.required.acks",
    "linger.ms", "queue.buffering.max.ms", "message.timeout.ms", "delivery.timeout.ms",
    "enable.idempotence", "transactional.id",
};

static bool is_managed(const char *name)
{
    for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++)
        if (strcmp(name, managed[i]) == 0)
            return true;
    return false;
}

static int set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
               size_t errlen)
{
    char rderr[512];
    if (rd_kafka_conf_set(conf, name, value, rderr, sizeof(rderr)) == RD_KAFKA_CONF_OK)
        return 0;
    if (tb_config_property_is_secret(name))
        snprintf(err, errlen, "canary: invalid setting for \"%s\" (value redacted)", name);
    else
        snprintf(err, errlen, "canary: %s", rderr);
    return -EINVAL;
}

static int client_new(struct tb_canary *c, rd_kafka_type_t type, rd_kafka_t **out, char *err,
                      size_t errlen)
{
    const struct tb_config *cfg = c->cfg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];
    if (!conf) {
        snprintf(err, errlen, "canary: out of memory");
        return -ENOMEM;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (set(conf, "client.id", "takhin-bridge-canary", err, errlen))
        goto fail;
    for (size_t i = 0; i < cfg->property_count; i++)
        if (!is_managed(cfg->properties[i].name) &&
            set(conf, cfg->properties[i].name, cfg->properties[i].value, err, errlen))
            goto fail;
    if (set(conf, "bootstrap.servers", cfg->bootstrap_servers ? cfg->bootstrap_servers : "",
            err, errlen) ||
        set(conf, "statistics.interval.ms", "0", err, errlen) ||
        set(conf, "allow.auto.create.topics", "false", err, errlen))
        goto fail;
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        snprintf(num, sizeof(num), "%d", cfg->canary_lost_after_ms);
        if (set(conf, "acks", "all", err, errlen) || set(conf, "linger.ms", "0", err, errlen) ||
            set(conf, "enable.idempotence", "false", err, errlen) ||
            set(conf, "message.timeout.ms", num, err, errlen))
            goto fail;
    } else {
        if (set(conf, "enable.auto.commit", "false", err, errlen) ||
            set(conf, "enable.auto.offset.store", "false", err, errlen) ||
            set(conf, "enable.partition.eof", "false", err, errlen) ||
            set(conf, "isolation.level", "read_uncommitted", err, errlen) ||
            set(conf, "auto.offset.reset", "latest", err, errlen) ||
            set(conf, "fetch.wait.max.ms", "100", err, errlen))
            goto fail;
    }
    char rderr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, rderr, sizeof(rderr));
    if (!rk) {
        snprintf(err, errlen, "canary: cannot create client: %s", rderr);
        goto fail;
    }
    *out = rk;
    return 0;
fail:
    rd_kafka_conf_destroy(conf);
    return -EINVAL;
}

/* ---------------------------------------------------------------------------------
 * Topic and assignment (canary thread)
 * ------------------------------------------------------------------------------- */

static int create_topic(struct tb_canary *c, int brokers)
{
    const struct tb_config *cfg = c->cfg;
    int partitions = cfg->canary_partitions > 0 ? cfg->canary_partitions : (brokers > 0 ? brokers : 1);
    int rf = cfg->canary_replication_factor > 0 ? cfg->canary_replication_factor : -1;
    char errstr[512];
    int rc = -EIO;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(cfg->canary_topic, partitions, rf, errstr,
                                                    sizeof(errstr));
    rd_kafka_queue_t *q = rd_kafka_queue_new(c->prod);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(c->prod, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (!nt || !q || !opts) {
        topic_problem(c, TB_LOG_WARN, "create topic %s: %s", cfg->canary_topic,
                      nt ? "out of memory" : errstr);
        goto out;
    }
    rd_kafka_NewTopic_set_config(nt, "retention.ms", TOPIC_RETENTION_MS);
    rd_kafka_AdminOptions_set_request_timeout(opts, cfg->request_timeout_ms, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(opts, cfg->request_timeout_ms, errstr,
                                                sizeof(errstr));
    rd_kafka_CreateTopics(c->prod, &nt, 1, opts, q);
    int64_t deadline = mono_ms() + cfg->request_timeout_ms + ADMIN_GRACE_MS;
    while (!ev && !stopping(c) && mono_ms() < deadline)
        ev = rd_kafka_queue_poll(q, 200);
    if (!ev) {
        if (!stopping(c))
            topic_problem(c, TB_LOG_WARN, "create topic %s: no answer within %d ms",
                          cfg->canary_topic, cfg->request_timeout_ms);
        goto out;
    }
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
    rd_kafka_resp_err_t err = rd_kafka_event_error(ev);
    const char *why = rd_kafka_event_error_string(ev);
    if (!err && tr && n == 1) {
        err = rd_kafka_topic_result_error(tr[0]);
        why = rd_kafka_topic_result_error_string(tr[0]);
    }
    if (!err || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        tb_info(COMP, "created topic %s (%d partitions, replication factor %s)",
                cfg->canary_topic, partitions, rf > 0 ? "as configured" : "broker default");
        rc = 0;
    } else {
        topic_problem(c, TB_LOG_WARN, "create topic %s: %s", cfg->canary_topic,
                      why && why[0] ? why : rd_kafka_err2str(err));
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (q)
        rd_kafka_queue_destroy(q);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static bool was_assigned(const struct tb_canary *c, int32_t id)
{
    return c->nassigned > 0 &&
           bsearch(&id, c->assigned, c->nassigned, sizeof(*c->assigned), cmp_i32) != NULL;
}

/* Warns (once per change) when a broker leads none of the topic's partitions. */
static void check_coverage(struct tb_canary *c, const struct rd_kafka_metadata *md,
                           const struct rd_kafka_metadata_topic *t)
{
    char missing[sizeof(c->coverage)] = "";
    size_t used = 0;
    for (int b = 0; b < md->broker_cnt; b++) {
        bool leads = false;
        for (int p = 0; p < t->partition_cnt && !leads; p++)
            leads = t->partitions[p].leader == md->brokers[b].id;
        if (!leads && used + 16 < sizeof(missing))
            used += (size_t)snprintf(missing + used, sizeof(missing) - used, "%s%" PRId32,
                                     used ? ", " : "", md->brokers[b].id);
    }
    if (strcmp(missing, c->coverage) != 0) {
        if (missing[0])
            tb_warn(COMP,
                    "topic %s: broker(s) %s lead none of its %d partition(s): their latency "
                    "is not probed (add partitions or move leaders)",
                    c->cfg->canary_topic, missing, t->partition_cnt);
        else if (c->coverage[0])
            tb_info(COMP, "topic %s: every broker leads a partition again", c->cfg->canary_topic);
        memcpy(c->coverage, missing, sizeof(missing));
    }
}

/* Re-sizes the in-flight ring for @parts partitions, keeping pending probes. Lock held. */
static int resize_ring(struct tb_canary *c, size_t parts)
{
    const struct tb_config *cfg = c->cfg;
    size_t per = (size_t)(cfg->canary_lost_after_ms / cfg->canary_interval_ms) + 2;
    size_t cap = parts * per;
    if (cap < 64)
        cap = 64;
    if (cap > MAX_PROBES)
        cap = MAX_PROBES;
    if (cap == c->cap)
        return 0;
    struct probe *ring = calloc(cap, sizeof(*ring));
    if (!ring)
        return -ENOMEM;
    for (size_t i = 0; i < c->cap; i++) {
        const struct probe *p = &c->probes[i];
        if (!p->pending)
            continue;
        struct probe *slot = &ring[p->seq % cap];
        if (slot->pending)
            c->lost++; /* no room: counted lost, never silently dropped */
        *slot = *p;
    }
    free(c->probes);
    c->probes = ring;
    c->cap = cap;
    return 0;
}

static bool in_list(const int32_t *ids, size_t n, int32_t id)
{
    return n > 0 && bsearch(&id, ids, n, sizeof(*ids), cmp_i32) != NULL;
}

/* Consumes exactly the partitions @ids (sorted): new ones start at their end offset
 * read now, gone ones stop, the others go on undisturbed. 0 or -1 (error recorded). */
static int assign(struct tb_canary *c, const int32_t *ids, size_t n)
{
    const char *topic = c->cfg->canary_topic;
    rd_kafka_topic_partition_list_t *query = rd_kafka_topic_partition_list_new((int)n);
    int32_t *copy = malloc(n * sizeof(*copy));
    int rc = -1;
    if (!query || !copy)
        goto out;
    /* Created once the topic is known to exist: a topic object makes the client ask
     * for the topic's metadata by name, which must not happen while it is missing. */
    if (!c->rkt && !(c->rkt = rd_kafka_topic_new(c->cons, topic, NULL))) {
        set_error(c, "consume %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (!was_assigned(c, ids[i]))
            rd_kafka_topic_partition_list_add(query, topic, ids[i])->offset = RD_KAFKA_OFFSET_END;
    if (query->cnt) {
        rd_kafka_resp_err_t err =
            rd_kafka_offsets_for_times(c->cons, query, c->cfg->request_timeout_ms);
        if (err) {
            set_error(c, "end offsets of %s: %s", topic, rd_kafka_err2str(err));
            goto out;
        }
        for (int i = 0; i < query->cnt; i++)
            if (query->elems[i].err || query->elems[i].offset < 0) {
                set_error(c, "end offset of %s [%" PRId32 "]: %s", topic,
                          query->elems[i].partition, rd_kafka_err2str(query->elems[i].err));
                goto out;
            }
    }
    for (size_t i = 0; i < c->nassigned; i++)
        if (!in_list(ids, n, c->assigned[i]))
            rd_kafka_consume_stop(c->rkt, c->assigned[i]);
    size_t kept = 0;
    for (size_t i = 0; i < c->nassigned; i++)
        if (in_list(ids, n, c->assigned[i]))
            copy[kept++] = c->assigned[i];
    for (int i = 0; i < query->cnt; i++) {
        const rd_kafka_topic_partition_t *q = &query->elems[i];
        if (rd_kafka_consume_start_queue(c->rkt, q->partition, q->offset, c->queue) != 0) {
            set_error(c, "consume %s [%" PRId32 "]: %s", topic, q->partition,
                      rd_kafka_err2str(rd_kafka_last_error()));
            continue; /* retried at the next refresh: it is not in the consumed list */
        }
        copy[kept++] = q->partition;
    }
    qsort(copy, kept, sizeof(*copy), cmp_i32);
    free(c->assigned);
    c->assigned = copy;
    c->nassigned = kept;
    copy = NULL;
    pthread_mutex_lock(&c->lock);
    int r = resize_ring(c, kept);
    if (r == 0)
        c->probing = (int32_t)kept;
    pthread_mutex_unlock(&c->lock);
    if (r == 0 && kept == n) {
        tb_info(COMP, "probing %zu partition(s) of %s every %d ms", n, topic,
                c->cfg->canary_interval_ms);
        rc = 0;
    }
out:
    free(copy);
    if (query)
        rd_kafka_topic_partition_list_destroy(query);
    return rc;
}

/* Metadata -> topic present (created if allowed) -> assignment up to date. 0 when
 * probing can go on, -1 otherwise (error recorded). */
static int refresh(struct tb_canary *c)
{
    const struct tb_config *cfg = c->cfg;
    const struct rd_kafka_metadata *md = NULL;
    /* While probing, a refresh blocks the rounds: keep it short (a failed one is
     * simply retried later, the known partitions stay probed meanwhile). */
    int timeout = cfg->request_timeout_ms;
    if (c->nassigned && timeout > cfg->canary_interval_ms)
        timeout = cfg->canary_interval_ms > 1000 ? cfg->canary_interval_ms : 1000;
    if (timeout > cfg->request_timeout_ms)
        timeout = cfg->request_timeout_ms;
    rd_kafka_resp_err_t err = rd_kafka_metadata(c->prod, 1, NULL, &md, timeout);
    if (err) {
        set_error(c, "metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    const struct rd_kafka_metadata_topic *t = NULL;
    for (int i = 0; i < md->topic_cnt && !t; i++)
        if (md->topics[i].topic && strcmp(md->topics[i].topic, cfg->canary_topic) == 0)
            t = &md->topics[i];
    int rc = -1;
    if (!t || (t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART && t->partition_cnt == 0)) {
        if (!cfg->canary_create_topic)
            topic_problem(c, TB_LOG_WARN,
                          "topic %s does not exist and canary.create_topic is false",
                          cfg->canary_topic);
        else
            create_topic(c, md->broker_cnt);
        goto out;
    }
    if (t->partition_cnt <= 0) {
        topic_problem(c, TB_LOG_WARN, "topic %s: %s", cfg->canary_topic,
                      rd_kafka_err2str(t->err));
        goto out;
    }
    c->topic_problem[0] = '\0';
    check_coverage(c, md, t);
    size_t n = (size_t)t->partition_cnt;
    int32_t *ids = malloc(n * sizeof(*ids));
    if (!ids)
        goto out;
    for (size_t i = 0; i < n; i++)
        ids[i] = t->partitions[i].id;
    qsort(ids, n, sizeof(*ids), cmp_i32);
    bool same = n == c->nassigned && memcmp(ids, c->assigned, n * sizeof(*ids)) == 0;
    rc = same ? 0 : assign(c, ids, n);
    free(ids);
out:
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* ---------------------------------------------------------------------------------
 * Probes (canary thread)
 * ------------------------------------------------------------------------------- */

static void send_round(struct tb_canary *c)
{
    for (size_t i = 0; i < c->nassigned && !stopping(c); i++) {
        int32_t part = c->assigned[i];
        pthread_mutex_lock(&c->lock);
        uint64_t seq = c->next_seq++;
        struct probe *slot = &c->probes[seq % c->cap];
        if (slot->pending)
            c->lost++;
        int64_t sent_us = mono_us();
        *slot = (struct probe){.seq = seq, .sent_us = sent_us, .partition = part, .pending = true};
        c->sent++;
        pthread_mutex_unlock(&c->lock);
        char payload[128];
        int len = snprintf(payload, sizeof(payload), PAYLOAD_MAGIC " %s %" PRIu64 " %" PRId64
                           " %" PRId64, c->run_id, seq, sent_us, wall_ms());
        rd_kafka_resp_err_t err = rd_kafka_producev(
            c->prod, RD_KAFKA_V_TOPIC(c->cfg->canary_topic), RD_KAFKA_V_PARTITION(part),
            RD_KAFKA_V_VALUE(payload, (size_t)len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq), RD_KAFKA_V_END);
        if (err) {
            /* the probe stays pending and will be counted lost */
            pthread_mutex_lock(&c->lock);
            c->produce_errors++;
            snprintf(c->error, sizeof(c->error), "produce to partition %" PRId32 ": %s", part,
                     rd_kafka_err2str(err));
            pthread_mutex_unlock(&c->lock);
        }
    }
}

static void received(struct tb_canary *c, const rd_kafka_message_t *m)
{
    int64_t now_us = mono_us();
    if (m->err) {
        set_error(c, "consume: %s", rd_kafka_message_errstr(m));
        return;
    }
    char buf[128], run[17];
    size_t len = m->len < sizeof(buf) - 1 ? m->len : sizeof(buf) - 1;
    if (!m->payload)
        return;
    memcpy(buf, m->payload, len);
    buf[len] = '\0';
    uint64_t seq = 0;
    if (sscanf(buf, PAYLOAD_MAGIC " %16s %" SCNu64, run, &seq) != 2 || strcmp(run, c->run_id) != 0)
        return; /* another bridge's probe, or not a probe at all */
    pthread_mutex_lock(&c->lock);
    struct probe *slot = c->cap ? &c->probes[seq % c->cap] : NULL;
    if (slot && slot->pending && slot->seq == seq) {
        slot->pending = false;
        c->received++;
        c->last_recv_ms = now_us / 1000;
        tb_hist_record(c->fetch_hist, now_us / 1000, (uint64_t)(now_us - slot->sent_us));
        c->error[0] = '\0'; /* a probe made it all the way: earlier problems are over */
    }
    pthread_mutex_unlock(&c->lock);
}

static void expire(struct tb_canary *c)
{
    int64_t now_us = mono_us();
    int64_t limit = (int64_t)c->cfg->canary_lost_after_ms * 1000;
    uint64_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->cap; i++) {
        struct probe *p = &c->probes[i];
        if (p->pending && now_us - p->sent_us > limit) {
            p->pending = false;
            n++;
        }
    }
    c->lost += n;
    if (n)
        snprintf(c->error, sizeof(c->error), "%" PRIu64 " probe(s) not consumed back within %d ms",
                 n, c->cfg->canary_lost_after_ms);
    pthread_mutex_unlock(&c->lock);
}

static void *canary_main(void *arg)
{
    struct tb_canary *c = arg;
    const int interval = c->cfg->canary_interval_ms;
    int64_t next_send = 0, next_meta = 0;
    while (!stopping(c)) {
        int64_t now = mono_ms();
        if (now >= next_send) {
            /* refresh right before a round: no probe of ours is in flight then */
            if (now >= next_meta) {
                int rc = refresh(c);
                next_meta = mono_ms() + (rc == 0          ? META_REFRESH_MS
                                         : c->nassigned ? RETRY_PROBING_MS
                                                        : RETRY_MS);
                now = mono_ms();
            }
            /* Known partitions are probed even when a refresh failed: an outage must
             * show as lost probes, round after round, not as silence. */
            if (c->nassigned)
                send_round(c);
            next_send = next_send && now - next_send < interval ? next_send + interval
                                                                : now + interval;
        }
        expire(c);
        int64_t wait = next_send - mono_ms();
        if (wait > POLL_MAX_MS)
            wait = POLL_MAX_MS;
        if (wait < 0)
            wait = 0;
        rd_kafka_message_t *m = rd_kafka_consume_queue(c->queue, (int)wait);
        if (m) {
            received(c, m);
            rd_kafka_message_destroy(m);
        }
        rd_kafka_poll(c->cons, 0); /* its error and log callbacks */
    }
    return NULL;
}

static void *dr_main(void *arg)
{
    struct tb_canary *c = arg;
    while (!stopping(c))
        rd_kafka_poll(c->prod, POLL_MAX_MS);
    return NULL;
}

/* ---------------------------------------------------------------------------------
 * Lifecycle and reading
 * ------------------------------------------------------------------------------- */

static void make_run_id(char out[17])
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint64_t)mono_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)wall_ms();
    snprintf(out, 17, "%016" PRIx64, r);
}

void tb_canary_stop(struct tb_canary *c)
{
    if (!c)
        return;
    atomic_store_explicit(&c->stop, true, memory_order_release);
    if (c->started)
        pthread_join(c->thread, NULL);
    if (c->dr_started)
        pthread_join(c->dr_thread, NULL);
    for (size_t i = 0; i < c->nassigned; i++)
        rd_kafka_consume_stop(c->rkt, c->assigned[i]);
    if (c->queue)
        rd_kafka_queue_destroy(c->queue);
    if (c->rkt)
        rd_kafka_topic_destroy(c->rkt);
    if (c->cons)
        rd_kafka_destroy(c->cons);
    if (c->prod) {
        rd_kafka_purge(c->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(c->prod, 0); /* their delivery reports (errors) */
        rd_kafka_destroy(c->prod);
    }
    tb_hist_free(c->produce_hist);
    tb_hist_free(c->fetch_hist);
    free(c->probes);
    free(c->assigned);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int tb_canary_start(const struct tb_config *cfg, struct tb_canary **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    struct tb_canary *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "canary: out of memory");
        return -ENOMEM;
    }
    c->cfg = cfg;
    c->window_ms = (int64_t)cfg->canary_window_s * 1000;
    atomic_init(&c->stop, false);
    make_run_id(c->run_id);
    int rc = pthread_mutex_init(&c->lock, NULL);
    if (rc) {
        free(c);
        snprintf(err, errlen, "canary: pthread_mutex_init: %s", strerror(rc));
        return -rc;
    }
    c->produce_hist = tb_hist_new(c->window_ms);
    c->fetch_hist = tb_hist_new(c->window_ms);
    if (!c->produce_hist || !c->fetch_hist) {
        snprintf(err, errlen, "canary: out of memory");
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = client_new(c, RD_KAFKA_PRODUCER, &c->prod, err, errlen)) != 0 ||
        (rc = client_new(c, RD_KAFKA_CONSUMER, &c->cons, err, errlen)) != 0)
        goto fail;
    c->queue = rd_kafka_queue_new(c->cons);
    if (!c->queue) {
        snprintf(err, errlen, "canary: cannot create the consumer's queue: %s",
                 rd_kafka_err2str(rd_kafka_last_error()));
        rc = -ENOMEM;
        goto fail;
    }

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&c->dr_thread, NULL, dr_main, c);
    if (rc == 0) {
        c->dr_started = true;
        rc = pthread_create(&c->thread, NULL, canary_main, c);
        if (rc == 0)
            c->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        snprintf(err, errlen, "canary: cannot start thread: %s", strerror(rc));
        rc = -rc;
        goto fail;
    }
    tb_info(COMP, "started: topic %s, a probe per partition every %d ms, lost after %d ms, "
                  "%d s window (run %s)",
            cfg->canary_topic, cfg->canary_interval_ms, cfg->canary_lost_after_ms,
            cfg->canary_window_s, c->run_id);
    *out = c;
    return 0;
fail:
    tb_canary_stop(c);
    return rc;
}

void tb_canary_read(struct tb_canary *c, struct tb_canary_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!c) {
        snprintf(out->state, sizeof(out->state), "disabled");
        return;
    }
    static const double ps[3] = {50, 95, 99};
    double pv[3], fv[3];
    const struct tb_config *cfg = c->cfg;
    int64_t recent = (int64_t)cfg->canary_lost_after_ms + cfg->canary_interval_ms;
    int64_t now = mono_ms();
    char old_state[sizeof(c->last_state)];
    out->enabled = true;
    out->window_ms = c->window_ms;

    pthread_mutex_lock(&c->lock);
    out->produce_samples = tb_hist_percentiles(c->produce_hist, now, ps, 3, pv);
    out->fetch_samples = tb_hist_percentiles(c->fetch_hist, now, ps, 3, fv);
    out->produce_available = out->produce_samples > 0 && c->last_ack_ms > 0 &&
                             now - c->last_ack_ms <= recent;
    out->fetch_available = out->fetch_samples > 0 && c->last_recv_ms > 0 &&
                           now - c->last_recv_ms <= recent;
    out->sent = c->sent;
    out->acked = c->acked;
    out->received = c->received;
    out->lost = c->lost;
    out->produce_errors = c->produce_errors;
    out->partitions = c->probing;
    memcpy(out->error, c->error, sizeof(out->error));
    memcpy(old_state, c->last_state, sizeof(old_state));
    const char *state;
    if (out->produce_available && out->fetch_available)
        state = "ok";
    else if (c->received + c->lost + c->produce_errors == 0 && !c->error[0])
        state = "starting";
    else
        state = "failing";
    snprintf(c->last_state, sizeof(c->last_state), "%s", state);
    pthread_mutex_unlock(&c->lock);

    if (out->produce_available) {
        out->produce_p50_ms = pv[0] / 1000.0;
        out->produce_p95_ms = pv[1] / 1000.0;
        out->produce_p99_ms = pv[2] / 1000.0;
    }
    if (out->fetch_available) {
        out->fetch_p50_ms = fv[0] / 1000.0;
        out->fetch_p95_ms = fv[1] / 1000.0;
        out->fetch_p99_ms = fv[2] / 1000.0;
    }
    snprintf(out->state, sizeof(out->state), "%s", state);
    if (strcmp(state, "ok") == 0) {
        out->error[0] = '\0';
    } else if (strcmp(state, "failing") == 0 && !out->error[0]) {
        snprintf(out->error, sizeof(out->error), "no probe %s within the last %" PRId64 " ms",
                 out->produce_available ? "consumed back" : "acknowledged", recent);
    }
    if (strcmp(old_state, state) != 0) {
        if (strcmp(state, "ok") == 0)
            tb_info(COMP, "ok: produce p50 %.3f ms, fetch p50 %.3f ms (%" PRIu64 " lost so far)",
                    out->produce_p50_ms, out->fetch_p50_ms, out->lost);
        else if (strcmp(state, "failing") == 0)
            tb_warn(COMP, "failing: %s; latency reported as unavailable", out->error);
    }
}
