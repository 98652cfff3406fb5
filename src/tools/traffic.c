/*
 * traffic.c - takhin-traffic: makes a Kafka cluster look alive for a first run of the
 * bridge and the console (demo, smoke test, development).
 *
 * What it does, against the cluster named by -b:
 *   topics     creates <prefix>-orders, <prefix>-payments, <prefix>-clicks, ... (--topics N)
 *              with --partitions P and replication min(3, brokers), when missing.
 *   producer   one idempotent producer (so each acknowledged message is in the log
 *              exactly once, in order); topic i gets a target rate that varies smoothly,
 *              rate * (1 + 0.5 * sin(2*pi*t/60 s + phase_i)) messages/s, phases spread
 *              over the topics (jittered by --seed). Message seq N of a topic goes to
 *              partition N % partitions; the value is a small JSON object
 *              {"seq":N,"ts":EPOCH_MS,"topic":"...","amount":X}.
 *   groups     <prefix>-fast     one member on all topics, auto-commit every second;
 *              <prefix>-slow     one member on the first topic, consuming 30% of that
 *                                topic's produce rate, so its lag grows;
 *              <prefix>-stopped  one member on the first topic, at 50% of its rate,
 *                                3 s after its first message it commits its position
 *                                once and leaves: the group stays listed, Empty, with
 *                                a lag that grows from then on.
 *   churn      every --churn-interval s, alternately: create <prefix>-ephemeral-<n>
 *              (1 partition) and add a second member to <prefix>-fast; then delete that
 *              topic and close that member. 0 disables churn. At start, ephemeral topics
 *              a previous run left behind (cluster gone at its exit) are deleted.
 *   output     stdout, line-buffered: one "status" line every 5 s (unless --quiet) and
 *              one line per change ("created NAME", "deleted NAME", "member joined G",
 *              "member left G", "committed G TOPIC P:OFF ...", "closed G"), then a
 *              "final" line with the acknowledged totals. Diagnostics go to stderr
 *              through tb_log.
 *
 * Threads: this program starts none. Everything (producing, polling each consumer,
 * admin results, churn) runs in main()'s loop, which ticks every ~10 ms; librdkafka's
 * own threads live inside the handles and end in rd_kafka_destroy(). Every callback
 * (delivery reports, error_cb) is served from that loop, so no state is shared across
 * threads except the signal flag below.
 *
 * Shutdown (SIGINT/SIGTERM, or --duration elapsed): the handler only sets the flag; the
 * loop sees it and, all in parallel under one 7 s deadline, closes every consumer
 * (rd_kafka_consumer_close_queue), flushes the producer, deletes the ephemeral topic it
 * created (after a pending create's answer); then purges what is left and destroys every
 * handle. The shutdown takes < 10 s even with the cluster gone. Exit codes: 0 clean stop,
 * 64 bad usage, 69 Kafka unreachable or topics not creatable at start, 70 internal error
 * (e.g. the idempotent producer's fatal error; the shutdown still runs).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "tb/log.h"

#define COMP "traffic"
#define NAME_MAX_LEN 249          /* Kafka's topic name limit */
#define PREFIX_MAX_LEN 200        /* leaves room for "-ephemeral-NNNN" */
#define MAX_TOPICS 64
#define MAX_PARTITIONS 1000
#define RATE_PERIOD_S 60.0        /* period of the rate wave */
#define STATUS_EVERY_S 5.0
#define SLOW_SHARE 0.30           /* <prefix>-slow consumes 30% of the first topic's rate */
#define STOPPED_SHARE 0.50
#define STOPPED_AFTER_S 3.0       /* <prefix>-stopped commits 3 s after its first message */
#define TICK_MS 10
#define MAX_DRAIN 5000            /* messages one consumer handles per tick, at most */
#define ADMIN_TIMEOUT_MS 10000
#define START_TIMEOUT_S 30.0
#define MAX_XPROPS 32
#define SHUTDOWN_S 7.0            /* > session.timeout.ms: see shutdown_all() */

/* The one piece of global mutable state: written by the signal handler (any thread
 * librdkafka did not block signals in), read by main()'s loop. */
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char *const topic_kinds[] = {
    "orders", "payments", "clicks", "shipments", "inventory", "signups", "logins",
    "refunds", "reviews", "searches",
};
#define N_KINDS (sizeof(topic_kinds) / sizeof(topic_kinds[0]))

struct opts {
    const char *bootstrap;
    const char *prefix;
    long topics;
    long partitions;
    double rate_per_s;
    long duration_s;     /* 0 = until a signal */
    long churn_s;        /* 0 = no churn */
    uint64_t seed;
    int quiet;
    const char *xprops[MAX_XPROPS]; /* "name=value", borrowed from argv */
    int n_xprops;
};

struct topic {
    char name[NAME_MAX_LEN + 1];
    int partitions;
    double phase;
    double credit;          /* messages owed to the rate schedule */
    uint64_t seq;           /* next sequence number, also the round-robin counter */
    uint64_t acked;         /* delivery reports without error */
    uint64_t failed;        /* delivery reports with an error, or produce() refusals */
    rd_kafka_topic_t *rkt;  /* owned */
};

/* Error reporting state of one client handle (its rd_kafka opaque). */
struct client {
    const char *role;
    rd_kafka_resp_err_t last_err;
    double last_log_s;
    unsigned suppressed;
};

enum member_state { M_NONE, M_ACTIVE, M_CLOSING };

/* One consumer-group member: a consumer handle and its lifecycle. */
struct member {
    enum member_state state;
    rd_kafka_t *rk;           /* owned while state != M_NONE */
    rd_kafka_queue_t *closeq; /* owned while M_CLOSING */
    struct client cl;
};

enum eph_state { E_NONE, E_CREATING, E_EXISTS, E_DELETING };

struct traffic {
    struct opts o;
    double t0;
    uint64_t rng;
    char group_fast[NAME_MAX_LEN + 1];
    char group_slow[NAME_MAX_LEN + 1];
    char group_stopped[NAME_MAX_LEN + 1];

    rd_kafka_t *producer;       /* also runs the admin calls */
    struct client producer_cl;
    rd_kafka_queue_t *adminq;   /* admin results of churn operations */
    int brokers;

    struct topic topics[MAX_TOPICS];
    int ntopics;

    struct member fast, fast2, slow, stopped;
    uint64_t consumed_fast, consumed_slow, consumed_stopped;
    double slow_credit, stopped_credit;
    double stopped_first_s;     /* < 0 until the first message */
    int stopped_done;

    enum eph_state eph;
    char eph_name[NAME_MAX_LEN + 1];
    unsigned eph_seq;
    unsigned churn_n;
};

/* ------------------------------------------------------------------------------- */
/* small helpers                                                                   */
/* ------------------------------------------------------------------------------- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rng_next(uint64_t *s)  /* xorshift64* */
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double rng_unit(uint64_t *s)    /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static double topic_rate(const struct traffic *tr, const struct topic *t, double now)
{
    double x = 2.0 * M_PI * (now - tr->t0) / RATE_PERIOD_S + t->phase;
    return tr->o.rate_per_s * (1.0 + 0.5 * sin(x));
}

/* ------------------------------------------------------------------------------- */
/* command line                                                                    */
/* ------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: takhin-traffic -b BOOTSTRAP [options]\n"
        "Generate live-looking traffic on a Kafka cluster: topics with varying produce\n"
        "rates, consumer groups that keep up, fall behind or stopped, and churn.\n"
        "\n"
        "  -b, --bootstrap HOST:PORT[,...]  Kafka bootstrap servers (required)\n"
        "  -p, --prefix NAME        name prefix of topics and groups (default demo)\n"
        "  -t, --topics N           topics to create and feed, 1..%d (default 3)\n"
        "  -P, --partitions N       partitions per topic, 1..%d (default 3)\n"
        "  -r, --rate MSG_PER_S     base produce rate per topic, 0.1..100000 (default 50)\n"
        "  -d, --duration SECONDS   stop after this long; 0 = until SIGINT/SIGTERM (default 0)\n"
        "  -c, --churn-interval S   seconds between churn steps; 0 = no churn (default 20)\n"
        "  -s, --seed N             seed of the rate phases and payloads (default: clock)\n"
        "  -X NAME=VALUE            librdkafka property for every client (e.g. security)\n"
        "  -q, --quiet              print nothing on stdout\n"
        "  -v, --verbose            debug logging on stderr (with librdkafka's own logs)\n"
        "  -h, --help               this help\n"
        "\n"
        "Exit codes: 0 clean stop, 64 bad usage, 69 Kafka unreachable at start,\n"
        "70 internal error.\n",
        MAX_TOPICS, MAX_PARTITIONS);
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int valid_prefix(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > PREFIX_MAX_LEN)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Returns -1 to continue, otherwise an exit code. Fills @o (borrows argv strings). */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"prefix", required_argument, NULL, 'p'},
        {"topics", required_argument, NULL, 't'},
        {"partitions", required_argument, NULL, 'P'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"churn-interval", required_argument, NULL, 'c'},
        {"seed", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){
        .prefix = "demo", .topics = 3, .partitions = 3, .rate_per_s = 50.0,
        .duration_s = 0, .churn_s = 20,
        .seed = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32),
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:p:t:P:r:d:c:s:X:qvh", longopts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case 'b': o->bootstrap = optarg; break;
        case 'p':
            o->prefix = optarg;
            if (!valid_prefix(optarg))
                bad = "--prefix: 1..200 characters of [A-Za-z0-9._-]";
            break;
        case 't':
            if (parse_long(optarg, 1, MAX_TOPICS, &o->topics))
                bad = "--topics: an integer in 1..64";
            break;
        case 'P':
            if (parse_long(optarg, 1, MAX_PARTITIONS, &o->partitions))
                bad = "--partitions: an integer in 1..1000";
            break;
        case 'r':
            if (parse_double(optarg, 0.1, 100000.0, &o->rate_per_s))
                bad = "--rate: a number in 0.1..100000 (messages/s per topic)";
            break;
        case 'd':
            if (parse_long(optarg, 0, 365L * 24 * 3600, &o->duration_s))
                bad = "--duration: seconds, an integer >= 0 (0 = until a signal)";
            break;
        case 'c':
            if (parse_long(optarg, 0, 24L * 3600, &o->churn_s))
                bad = "--churn-interval: seconds, an integer in 0..86400 (0 = no churn)";
            break;
        case 's': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                bad = "--seed: a non-negative integer";
            else
                o->seed = (uint64_t)v;
            break;
        }
        case 'X':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                bad = "-X: NAME=VALUE";
            else if (o->n_xprops == MAX_XPROPS)
                bad = "-X: too many properties";
            else
                o->xprops[o->n_xprops++] = optarg;
            break;
        case 'q': o->quiet = 1; break;
        case 'v': tb_log_set_level(TB_LOG_DEBUG); break;
        case 'h': usage(stdout); return 0;
        case ':':
            fprintf(stderr, "takhin-traffic: option %s needs a value\n", argv[optind - 1]);
            fputs("Try 'takhin-traffic -h'.\n", stderr);
            return EX_USAGE;
        default:
            fprintf(stderr, "takhin-traffic: unknown option %s\n", argv[optind - 1]);
            fputs("Try 'takhin-traffic -h'.\n", stderr);
            return EX_USAGE;
        }
        if (bad) {
            fprintf(stderr, "takhin-traffic: %s (got \"%s\")\n", bad, optarg);
            return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "takhin-traffic: unexpected argument \"%s\"\n", argv[optind]);
        fputs("Try 'takhin-traffic -h'.\n", stderr);
        return EX_USAGE;
    }
    if (!o->bootstrap || !o->bootstrap[0]) {
        fprintf(stderr, "takhin-traffic: -b BOOTSTRAP is required\n");
        fputs("Try 'takhin-traffic -h'.\n", stderr);
        return EX_USAGE;
    }
    return -1;
}

/* ------------------------------------------------------------------------------- */
/* librdkafka handles                                                              */
/* ------------------------------------------------------------------------------- */

/* error_cb: runs in main()'s loop (served by rd_kafka_poll / consumer_poll). Repeats of
 * the same error on one handle are logged at most every 30 s, with a count. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct client *cl = opaque;
    double now = mono_s();
    if (cl->last_err == (rd_kafka_resp_err_t)err && now - cl->last_log_s < 30.0) {
        cl->suppressed++;
        return;
    }
    if (cl->suppressed)
        tb_warn(COMP, "%s: %s (%u similar suppressed)", cl->role, reason, cl->suppressed);
    else
        tb_warn(COMP, "%s: %s", cl->role, reason);
    cl->last_err = (rd_kafka_resp_err_t)err;
    cl->last_log_s = now;
    cl->suppressed = 0;
}

/* dr_msg_cb: runs in main()'s loop (rd_kafka_poll on the producer). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    struct topic *t = m->_private;
    if (m->err)
        t->failed++;
    else
        t->acked++;
}

/* log_cb: librdkafka's own log lines (any thread; tb_log is thread-safe). Errors that
 * matter reach on_error() too, so these are debug output only. */
static void on_rdkafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    tb_debug(COMP, "librdkafka %d %s: %s", level, fac, buf);
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        tb_error(COMP, "client property %s: %s", name, errstr);
        return -EINVAL;
    }
    return 0;
}

/* A configuration: the common properties, then @props (name, value, ..., NULL), then
 * the -X ones, so that the user's -X wins. Caller owns it; NULL on a refused property. */
static rd_kafka_conf_t *make_conf(const struct traffic *tr, struct client *cl,
                                  const char *const *props)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", tr->o.bootstrap) ||
        conf_set(conf, "client.id", "takhin-traffic"))
        goto fail;
    for (const char *const *p = props; *p; p += 2)
        if (conf_set(conf, p[0], p[1]))
            goto fail;
    for (int i = 0; i < tr->o.n_xprops; i++) {
        char name[256];
        const char *eq = strchr(tr->o.xprops[i], '=');
        size_t n = (size_t)(eq - tr->o.xprops[i]);
        if (n >= sizeof(name)) {
            tb_error(COMP, "-X %s: name too long", tr->o.xprops[i]);
            goto fail;
        }
        memcpy(name, tr->o.xprops[i], n);
        name[n] = '\0';
        if (conf_set(conf, name, eq + 1))
            goto fail;
    }
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_rdkafka_log);
    rd_kafka_conf_set_opaque(conf, cl);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static int producer_open(struct traffic *tr)
{
    char errstr[512];
    tr->producer_cl = (struct client){.role = "producer"};
    static const char *const props[] = {
        "linger.ms", "20",
        "enable.idempotence", "true",  /* acked == in the log, once, in order */
        "message.timeout.ms", "30000",
        NULL,
    };
    rd_kafka_conf_t *conf = make_conf(tr, &tr->producer_cl, props);
    if (!conf)
        return -EINVAL;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    tr->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!tr->producer) {
        tb_error(COMP, "producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    tr->adminq = rd_kafka_queue_new(tr->producer);
    return 0;
}

/* Starts a group member subscribed to @ntopics topics from tr->topics[first...]. */
static int member_open(struct traffic *tr, struct member *m, const char *group,
                       const char *role, int first, int ntopics, int auto_commit)
{
    char errstr[512];
    if (m->state != M_NONE)
        return -EBUSY;
    m->cl = (struct client){.role = role};
    const char *const props[] = {
        "group.id", group,
        "auto.offset.reset", "earliest",
        "enable.auto.commit", auto_commit ? "true" : "false",
        "auto.commit.interval.ms", "1000",
        "session.timeout.ms", "6000", /* the broker's minimum; bounds close() */
        "heartbeat.interval.ms", "1000",
        NULL,
    };
    rd_kafka_conf_t *conf = make_conf(tr, &m->cl, props);
    if (!conf)
        return -EINVAL;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (!rk) {
        tb_error(COMP, "%s: %s", role, errstr);
        rd_kafka_conf_destroy(conf);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(ntopics);
    for (int i = first; i < first + ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, tr->topics[i].name, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (err) {
        tb_error(COMP, "%s: subscribe: %s", role, rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return -EINVAL;
    }
    m->rk = rk;
    m->state = M_ACTIVE;
    return 0;
}

/* Starts an asynchronous close (leave the group, final auto-commit). */
static void member_close_start(struct member *m)
{
    if (m->state != M_ACTIVE)
        return;
    m->closeq = rd_kafka_queue_new(m->rk);
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(m->rk, m->closeq);
    if (e) {
        tb_warn(COMP, "%s: close: %s", m->cl.role, rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    m->state = M_CLOSING;
}

/* Serves a closing member's queue; returns 1 once it is closed and freed. */
static int member_close_poll(struct member *m, int timeout_ms)
{
    if (m->state != M_CLOSING)
        return m->state == M_NONE;
    rd_kafka_event_t *ev;
    while ((ev = rd_kafka_queue_poll(m->closeq, timeout_ms)) != NULL) {
        rd_kafka_event_destroy(ev);
        timeout_ms = 0;
    }
    if (!rd_kafka_consumer_closed(m->rk))
        return 0;
    rd_kafka_queue_destroy(m->closeq);
    rd_kafka_destroy(m->rk);
    *m = (struct member){.state = M_NONE};
    return 1;
}

/* Last resort at shutdown: a member whose close did not finish in time. */
static void member_abandon(struct member *m)
{
    if (m->state == M_NONE)
        return;
    tb_warn(COMP, "%s: close did not finish in time; destroying it", m->cl.role);
    if (m->closeq)
        rd_kafka_queue_destroy(m->closeq);
    rd_kafka_destroy_flags(m->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    *m = (struct member){.state = M_NONE};
}

/* Consumes up to @budget messages (or all available when budget < 0). Returns the
 * number of messages (not errors) consumed. */
static uint64_t member_drain(struct member *m, long budget)
{
    uint64_t n = 0;
    if (m->state != M_ACTIVE)
        return 0;
    long limit = budget < 0 ? MAX_DRAIN : (budget < MAX_DRAIN ? budget : MAX_DRAIN);
    for (long i = 0; i < limit; i++) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(m->rk, 0);
        if (!msg)
            break;
        if (msg->err) {
            if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                on_error(m->rk, msg->err, rd_kafka_message_errstr(msg), &m->cl);
        } else {
            n++;
        }
        rd_kafka_message_destroy(msg);
    }
    return n;
}

/* ------------------------------------------------------------------------------- */
/* topics and admin                                                                */
/* ------------------------------------------------------------------------------- */

/* Metadata of all topics (never by name: that may auto-create). Caller frees *md. */
static int fetch_metadata(struct traffic *tr, const struct rd_kafka_metadata **md,
                          int timeout_ms)
{
    rd_kafka_resp_err_t err = rd_kafka_metadata(tr->producer, 1, NULL, md, timeout_ms);
    if (err) {
        on_error(tr->producer, err, rd_kafka_err2str(err), &tr->producer_cl);
        return -EIO;
    }
    return 0;
}

static int topic_partitions(const struct rd_kafka_metadata *md, const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0 && !md->topics[i].err)
            return md->topics[i].partition_cnt;
    return -1;
}

static void out(const struct traffic *tr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void out(const struct traffic *tr, const char *fmt, ...)
{
    if (tr->o.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* Starts CreateTopics for @names (asynchronous; the result arrives on @q). */
static void create_topics_start(struct traffic *tr, const char **names, const int *parts,
                                int n, rd_kafka_queue_t *q)
{
    char errstr[512];
    rd_kafka_NewTopic_t *nt[MAX_TOPICS + 1];
    int rf = tr->brokers < 3 ? tr->brokers : 3;
    int k = 0;
    for (int i = 0; i < n; i++) {
        nt[k] = rd_kafka_NewTopic_new(names[i], parts[i], rf, errstr, sizeof(errstr));
        if (!nt[k])
            tb_error(COMP, "topic %s: %s", names[i], errstr);
        else
            k++;
    }
    rd_kafka_AdminOptions_t *ao =
        rd_kafka_AdminOptions_new(tr->producer, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(ao, ADMIN_TIMEOUT_MS - 1000, errstr,
                                                sizeof(errstr));
    rd_kafka_CreateTopics(tr->producer, nt, (size_t)k, ao, q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)k);
}

static void delete_topic_start(struct traffic *tr, const char *name, rd_kafka_queue_t *q)
{
    char errstr[512];
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    rd_kafka_AdminOptions_t *ao =
        rd_kafka_AdminOptions_new(tr->producer, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_AdminOptions_set_request_timeout(ao, ADMIN_TIMEOUT_MS, errstr, sizeof(errstr));
    rd_kafka_AdminOptions_set_operation_timeout(ao, ADMIN_TIMEOUT_MS - 1000, errstr,
                                                sizeof(errstr));
    rd_kafka_DeleteTopics(tr->producer, &dt, 1, ao, q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_DeleteTopic_destroy(dt);
}

/* Is @name "<prefix>-ephemeral-<digits>"? */
static int is_ephemeral(const struct traffic *tr, const char *name)
{
    size_t n = strlen(tr->o.prefix);
    static const char mid[] = "-ephemeral-";
    if (strncmp(name, tr->o.prefix, n) != 0 || strncmp(name + n, mid, sizeof(mid) - 1) != 0)
        return 0;
    const char *d = name + n + sizeof(mid) - 1;
    if (!*d)
        return 0;
    for (; *d; d++)
        if (*d < '0' || *d > '9')
            return 0;
    return 1;
}

/* The per-topic results of a Create/DeleteTopics result event (NULL on a request-level
 * error, which is logged). */
static const rd_kafka_topic_result_t **admin_results(rd_kafka_event_t *ev, size_t *cnt)
{
    *cnt = 0;
    if (rd_kafka_event_error(ev)) {
        tb_warn(COMP, "%s: %s", rd_kafka_event_name(ev), rd_kafka_event_error_string(ev));
        return NULL;
    }
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
        return rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev),
                                                   cnt);
    if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_DELETETOPICS_RESULT)
        return rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev),
                                                   cnt);
    return NULL;
}

/* Deletes the ephemeral topics a previous run could not delete (cluster gone at its
 * shutdown). Best effort: failures are logged. */
static void delete_leftovers(struct traffic *tr, const struct rd_kafka_metadata *md)
{
    for (int i = 0; i < md->topic_cnt && !stop_requested; i++) {
        if (md->topics[i].err || !is_ephemeral(tr, md->topics[i].topic))
            continue;
        rd_kafka_queue_t *q = rd_kafka_queue_new(tr->producer);
        delete_topic_start(tr, md->topics[i].topic, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res = ev ? admin_results(ev, &cnt) : NULL;
        if (res && cnt == 1 && !rd_kafka_topic_result_error(res[0]))
            out(tr, "deleted %s", md->topics[i].topic);
        else
            tb_warn(COMP, "could not delete the leftover topic %s: %s", md->topics[i].topic,
                    cnt == 1 ? rd_kafka_topic_result_error_string(res[0]) : "no answer");
        if (ev)
            rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
    }
}

/* Creates the missing base topics and waits until metadata shows every one of them.
 * Fills tr->topics[].partitions with the real counts. */
static int setup_topics(struct traffic *tr)
{
    const struct rd_kafka_metadata *md = NULL;
    double deadline = mono_s() + START_TIMEOUT_S;
    while (fetch_metadata(tr, &md, 5000)) {
        if (stop_requested)
            return -EINTR;
        if (mono_s() > deadline) {
            tb_error(COMP, "cannot reach Kafka at %s", tr->o.bootstrap);
            return -EIO;
        }
    }
    tr->brokers = md->broker_cnt > 0 ? md->broker_cnt : 1;
    delete_leftovers(tr, md);
    const char *names[MAX_TOPICS];
    int parts[MAX_TOPICS];
    int missing = 0;
    for (int i = 0; i < tr->ntopics; i++) {
        struct topic *t = &tr->topics[i];
        int p = topic_partitions(md, t->name);
        if (p > 0) {
            t->partitions = p;
            if (p != tr->o.partitions)
                tb_warn(COMP, "topic %s exists with %d partitions (not %ld); using it",
                        t->name, p, tr->o.partitions);
            out(tr, "exists %s", t->name);
        } else {
            names[missing] = t->name;
            parts[missing++] = (int)tr->o.partitions;
        }
    }
    rd_kafka_metadata_destroy(md);
    md = NULL;

    if (missing) {
        rd_kafka_queue_t *q = rd_kafka_queue_new(tr->producer);
        create_topics_start(tr, names, parts, missing, q);
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, ADMIN_TIMEOUT_MS + 5000);
        int rc = 0;
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res = ev ? admin_results(ev, &cnt) : NULL;
        if (!res)
            rc = -EIO;
        for (size_t i = 0; i < cnt; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            const char *name = rd_kafka_topic_result_name(res[i]);
            if (!e) {
                out(tr, "created %s", name);
            } else if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                out(tr, "exists %s", name);
            } else {
                tb_error(COMP, "create topic %s: %s", name,
                         rd_kafka_topic_result_error_string(res[i]));
                rc = -EIO;
            }
        }
        if (!ev)
            tb_error(COMP, "create topics: no answer from Kafka");
        else
            rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        if (rc)
            return rc;
    }

    /* Wait until metadata shows every topic, with its real partition count. */
    deadline = mono_s() + START_TIMEOUT_S;
    for (;;) {
        int seen = 0;
        if (fetch_metadata(tr, &md, 5000) == 0) {
            for (int i = 0; i < tr->ntopics; i++) {
                int p = topic_partitions(md, tr->topics[i].name);
                if (p > 0) {
                    tr->topics[i].partitions = p;
                    seen++;
                }
            }
            rd_kafka_metadata_destroy(md);
        }
        if (seen == tr->ntopics)
            return 0;
        if (stop_requested || mono_s() > deadline) {
            tb_error(COMP, "topics did not appear in metadata in time");
            return -EIO;
        }
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Serves churn admin results (create/delete of the ephemeral topic). */
static void poll_admin(struct traffic *tr, int timeout_ms)
{
    rd_kafka_event_t *ev;
    while ((ev = rd_kafka_queue_poll(tr->adminq, timeout_ms)) != NULL) {
        timeout_ms = 0;
        size_t cnt = 0;
        const rd_kafka_topic_result_t **res = admin_results(ev, &cnt);
        int creating = rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT;
        rd_kafka_resp_err_t e = cnt ? rd_kafka_topic_result_error(res[0])
                                    : RD_KAFKA_RESP_ERR__FAIL;
        if (creating && tr->eph == E_CREATING) {
            if (!e || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                out(tr, "created %s", tr->eph_name);
                tr->eph = E_EXISTS;
            } else {
                if (cnt)
                    tb_warn(COMP, "create topic %s: %s", tr->eph_name,
                            rd_kafka_topic_result_error_string(res[0]));
                tr->eph = E_NONE;
            }
        } else if (!creating && tr->eph == E_DELETING) {
            if (!e || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                out(tr, "deleted %s", tr->eph_name);
                tr->eph = E_NONE;
            } else {
                if (cnt)
                    tb_warn(COMP, "delete topic %s: %s", tr->eph_name,
                            rd_kafka_topic_result_error_string(res[0]));
                tr->eph = E_EXISTS; /* try again at the next churn step or at exit */
            }
        }
        rd_kafka_event_destroy(ev);
    }
}

/* ------------------------------------------------------------------------------- */
/* the loop's steps                                                                */
/* ------------------------------------------------------------------------------- */

static void produce_tick(struct traffic *tr, double now, double dt)
{
    for (int i = 0; i < tr->ntopics; i++) {
        struct topic *t = &tr->topics[i];
        t->credit += topic_rate(tr, t, now) * dt;
        while (t->credit >= 1.0) {
            char buf[512];
            int n = snprintf(buf, sizeof(buf),
                             "{\"seq\":%" PRIu64 ",\"ts\":%" PRId64
                             ",\"topic\":\"%s\",\"amount\":%.2f}",
                             t->seq, wall_ms(), t->name, 1.0 + 999.0 * rng_unit(&tr->rng));
            int32_t part = (int32_t)(t->seq % (uint64_t)t->partitions);
            if (rd_kafka_produce(t->rkt, part, RD_KAFKA_MSG_F_COPY, buf, (size_t)n, NULL, 0,
                                 t) != 0) {
                rd_kafka_resp_err_t e = rd_kafka_last_error();
                if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                    t->failed++;
                    on_error(tr->producer, e, rd_kafka_err2str(e), &tr->producer_cl);
                }
                t->credit = 0; /* behind schedule: drop the backlog, do not burst */
                break;
            }
            t->seq++;
            t->credit -= 1.0;
        }
    }
}

static void consume_tick(struct traffic *tr, double now, double dt)
{
    tr->consumed_fast += member_drain(&tr->fast, -1);
    tr->consumed_fast += member_drain(&tr->fast2, -1);

    /* slow and stopped: a budget that follows the first topic's produce rate */
    double r0 = topic_rate(tr, &tr->topics[0], now);
    tr->slow_credit += SLOW_SHARE * r0 * dt;
    double cap = SLOW_SHARE * r0 * 2.0 + 1.0;
    if (tr->slow_credit > cap)
        tr->slow_credit = cap;
    if (tr->slow_credit >= 1.0) {
        uint64_t n = member_drain(&tr->slow, (long)tr->slow_credit);
        tr->consumed_slow += n;
        tr->slow_credit -= (double)n;
    }

    if (tr->stopped.state == M_ACTIVE && !tr->stopped_done) {
        tr->stopped_credit += STOPPED_SHARE * r0 * dt;
        cap = STOPPED_SHARE * r0 * 2.0 + 1.0;
        if (tr->stopped_credit > cap)
            tr->stopped_credit = cap;
        if (tr->stopped_credit >= 1.0) {
            uint64_t n = member_drain(&tr->stopped, (long)tr->stopped_credit);
            tr->consumed_stopped += n;
            tr->stopped_credit -= (double)n;
            if (n && tr->stopped_first_s < 0)
                tr->stopped_first_s = now;
        }
    }
}

/* <prefix>-stopped: commit the current position once (synchronously), print exactly
 * what was committed, then start leaving the group. */
static void stopped_finish(struct traffic *tr)
{
    struct member *m = &tr->stopped;
    if (m->state != M_ACTIVE || tr->stopped_done)
        return;
    tr->stopped_done = 1;
    rd_kafka_topic_partition_list_t *asg = NULL;
    if (rd_kafka_assignment(m->rk, &asg) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_position(m->rk, asg) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new(asg->cnt);
        char line[4096];
        size_t used = 0;
        for (int i = 0; i < asg->cnt; i++) {
            const rd_kafka_topic_partition_t *p = &asg->elems[i];
            if (p->offset < 0)
                continue; /* nothing consumed there */
            rd_kafka_topic_partition_list_add(commit, p->topic, p->partition)->offset =
                p->offset;
            if (used < sizeof(line)) {
                int n = snprintf(line + used, sizeof(line) - used, " %s:%" PRId32 ":%" PRId64,
                                 p->topic, p->partition, p->offset);
                used += n > 0 ? (size_t)n : 0;
            }
        }
        if (commit->cnt > 0) {
            rd_kafka_topic_partition_list_sort(commit, NULL, NULL);
            rd_kafka_resp_err_t e = rd_kafka_commit(m->rk, commit, 0);
            if (e)
                tb_warn(COMP, "%s: commit: %s", m->cl.role, rd_kafka_err2str(e));
            else
                out(tr, "committed %s%s", tr->group_stopped, line);
        }
        rd_kafka_topic_partition_list_destroy(commit);
    }
    if (asg)
        rd_kafka_topic_partition_list_destroy(asg);
    member_close_start(m);
}

static void churn_step(struct traffic *tr)
{
    tr->churn_n++;
    /* the ephemeral topic: create, then (next step) delete */
    if (tr->eph == E_NONE) {
        tr->eph_seq++;
        snprintf(tr->eph_name, sizeof(tr->eph_name), "%s-ephemeral-%u", tr->o.prefix,
                 tr->eph_seq);
        const char *names[1] = {tr->eph_name};
        int parts[1] = {1};
        tr->eph = E_CREATING;
        create_topics_start(tr, names, parts, 1, tr->adminq);
    } else if (tr->eph == E_EXISTS) {
        tr->eph = E_DELETING;
        delete_topic_start(tr, tr->eph_name, tr->adminq);
    } /* else: an operation is still pending; try at the next step */

    /* a second member of <prefix>-fast: join, then (next step) leave */
    if (tr->fast2.state == M_NONE) {
        if (member_open(tr, &tr->fast2, tr->group_fast, "fast member 2", 0, tr->ntopics, 1) ==
            0)
            out(tr, "member joined %s", tr->group_fast);
    } else if (tr->fast2.state == M_ACTIVE) {
        member_close_start(&tr->fast2);
        out(tr, "member left %s", tr->group_fast);
    }
}

static void print_totals(const struct traffic *tr, const char *what, double now)
{
    if (tr->o.quiet)
        return;
    char line[16384];
    size_t used = 0;
    uint64_t failed = 0;
#define APPEND(...)                                                                    \
    do {                                                                               \
        if (used < sizeof(line)) {                                                     \
            int n_ = snprintf(line + used, sizeof(line) - used, __VA_ARGS__);         \
            used += n_ > 0 ? (size_t)n_ : 0;                                           \
        }                                                                              \
    } while (0)
    APPEND("%s t=%.0fs produced", what, now - tr->t0);
    for (int i = 0; i < tr->ntopics; i++) {
        APPEND(" %s=%" PRIu64, tr->topics[i].name, tr->topics[i].acked);
        failed += tr->topics[i].failed;
    }
    APPEND(" errors=%" PRIu64 " consumed %s=%" PRIu64 " %s=%" PRIu64 " %s=%" PRIu64, failed,
           tr->group_fast, tr->consumed_fast, tr->group_slow, tr->consumed_slow,
           tr->group_stopped, tr->consumed_stopped);
#undef APPEND
    printf("%s\n", line);
}

/* ------------------------------------------------------------------------------- */
/* shutdown                                                                        */
/* ------------------------------------------------------------------------------- */

/* Everything in parallel, under one deadline: leave every group (members with
 * auto-commit commit on the way), deliver what the producer holds, delete the ephemeral
 * topic. With the cluster gone a consumer's close takes session.timeout.ms (6 s), so the
 * deadline is a little above that; what is still pending then is abandoned. */
static void shutdown_all(struct traffic *tr)
{
    double deadline = mono_s() + SHUTDOWN_S;
    if (tr->stopped.state == M_ACTIVE && !tr->stopped_done && tr->consumed_stopped > 0)
        stopped_finish(tr); /* commits the position it reached, once */
    struct member *all[] = {&tr->fast, &tr->fast2, &tr->slow, &tr->stopped};
    size_t nall = sizeof(all) / sizeof(all[0]);
    for (size_t i = 0; i < nall; i++)
        member_close_start(all[i]);
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < nall; i++)
            pending += !member_close_poll(all[i], 0);
        poll_admin(tr, 0);
        if (tr->eph == E_EXISTS) { /* also right after a pending create succeeded */
            tr->eph = E_DELETING;
            delete_topic_start(tr, tr->eph_name, tr->adminq);
        }
        pending += tr->eph != E_NONE;
        pending += rd_kafka_outq_len(tr->producer) > 0;
        if (!pending || mono_s() >= deadline)
            break;
        rd_kafka_poll(tr->producer, TICK_MS); /* delivery reports; the loop's sleep */
    }
    for (size_t i = 0; i < nall; i++)
        member_abandon(all[i]);
    int left = rd_kafka_outq_len(tr->producer);
    if (left > 0) {
        tb_warn(COMP, "shutdown: %d message(s)/request(s) not delivered in time; dropped",
                left);
        rd_kafka_purge(tr->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    }
    rd_kafka_poll(tr->producer, 0); /* delivery reports of the purged messages */
    if (tr->eph != E_NONE)
        tb_warn(COMP, "topic %s may be left behind (no answer from Kafka in time)",
                tr->eph_name);
}

static void destroy_all(struct traffic *tr)
{
    for (int i = 0; i < tr->ntopics; i++)
        if (tr->topics[i].rkt)
            rd_kafka_topic_destroy(tr->topics[i].rkt);
    if (tr->adminq)
        rd_kafka_queue_destroy(tr->adminq);
    if (tr->producer)
        rd_kafka_destroy(tr->producer);
}

/* ------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct traffic *tr = calloc(1, sizeof(*tr));
    if (!tr) {
        fprintf(stderr, "takhin-traffic: out of memory\n");
        return EX_OSERR;
    }
    int rc = parse_args(argc, argv, &tr->o);
    if (rc >= 0) {
        free(tr);
        return rc;
    }
    rc = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    tr->rng = tr->o.seed ? tr->o.seed : 0x9E3779B97F4A7C15ULL;
    tr->ntopics = (int)tr->o.topics;
    snprintf(tr->group_fast, sizeof(tr->group_fast), "%s-fast", tr->o.prefix);
    snprintf(tr->group_slow, sizeof(tr->group_slow), "%s-slow", tr->o.prefix);
    snprintf(tr->group_stopped, sizeof(tr->group_stopped), "%s-stopped", tr->o.prefix);
    for (int i = 0; i < tr->ntopics; i++) {
        struct topic *t = &tr->topics[i];
        if ((size_t)i < N_KINDS)
            snprintf(t->name, sizeof(t->name), "%s-%s", tr->o.prefix, topic_kinds[i]);
        else
            snprintf(t->name, sizeof(t->name), "%s-events-%d", tr->o.prefix, i);
        t->partitions = (int)tr->o.partitions;
        t->phase = 2.0 * M_PI * ((double)i + 0.5 * rng_unit(&tr->rng)) / (double)tr->ntopics;
    }
    tr->stopped_first_s = -1.0;

    if (producer_open(tr)) {
        rc = EX_USAGE; /* a -X property was refused */
        goto out;
    }
    if (setup_topics(tr)) {
        rc = stop_requested ? 0 : EX_UNAVAILABLE;
        goto out;
    }
    for (int i = 0; i < tr->ntopics; i++)
        tr->topics[i].rkt = rd_kafka_topic_new(tr->producer, tr->topics[i].name, NULL);
    if (member_open(tr, &tr->fast, tr->group_fast, "fast member", 0, tr->ntopics, 1) ||
        member_open(tr, &tr->slow, tr->group_slow, "slow member", 0, 1, 1) ||
        member_open(tr, &tr->stopped, tr->group_stopped, "stopped member", 0, 1, 0)) {
        rc = EX_SOFTWARE;
        shutdown_all(tr);
        goto out;
    }
    char churn[64] = "no churn";
    if (tr->o.churn_s)
        snprintf(churn, sizeof(churn), "churn every %lds", tr->o.churn_s);
    tb_info(COMP, "running: %d topic(s), base rate %.1f msg/s each, seed %" PRIu64 ", %s%s",
            tr->ntopics, tr->o.rate_per_s, tr->o.seed, churn,
            tr->o.duration_s ? "" : ", until SIGINT/SIGTERM");

    tr->t0 = mono_s();
    double last = tr->t0;
    double next_status = tr->t0 + STATUS_EVERY_S;
    double next_churn = tr->t0 + (double)tr->o.churn_s;
    while (!stop_requested) {
        double now = mono_s();
        double dt = now - last;
        if (dt > 1.0)
            dt = 1.0; /* a stall (blocking commit, suspended process) must not burst */
        last = now;
        if (tr->o.duration_s && now - tr->t0 >= (double)tr->o.duration_s)
            break;
        char fatal[512];
        if (rd_kafka_fatal_error(tr->producer, fatal, sizeof(fatal))) {
            tb_error(COMP, "producer: fatal error: %s", fatal);
            rc = EX_SOFTWARE;
            break;
        }

        produce_tick(tr, now, dt);
        consume_tick(tr, now, dt);
        if (tr->stopped_first_s >= 0 && !tr->stopped_done &&
            now - tr->stopped_first_s >= STOPPED_AFTER_S)
            stopped_finish(tr);
        if (member_close_poll(&tr->stopped, 0) && tr->stopped_done && tr->stopped_first_s >= 0) {
            out(tr, "closed %s", tr->group_stopped);
            tr->stopped_first_s = -2.0; /* announced once */
        }
        member_close_poll(&tr->fast2, 0);
        poll_admin(tr, 0);
        if (tr->o.churn_s && now >= next_churn) {
            churn_step(tr);
            next_churn += (double)tr->o.churn_s;
        }
        if (now >= next_status) {
            print_totals(tr, "status", now);
            next_status += STATUS_EVERY_S;
        }
        rd_kafka_poll(tr->producer, TICK_MS); /* delivery reports; also the tick's sleep */
    }

    tb_info(COMP, "stopping");
    shutdown_all(tr);
    print_totals(tr, "final", mono_s());
out:
    destroy_all(tr);
    free(tr);
    return rc;
}
