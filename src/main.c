/*
 * main.c - command line, wiring and lifecycle. No business logic lives here.
 *
 * Threads
 *   main thread      parses the command line, loads the configuration, then runs the
 *                    libwebsockets service loop (tb_server_run) until a stop.
 *   signal thread    the only thread with SIGINT/SIGTERM/SIGHUP unblocked in effect:
 *                    every thread blocks them and this one sigwait()s, then asks the
 *                    server (or the --once printer) to stop. Nothing runs in a handler.
 *   collector thread owned by src/kafka (tb_collector_start/stop).
 *
 * Run order: config -> log level -> block signals -> server (binds) -> collector ->
 * signal thread -> service loop -> (stop) collector stop -> server free -> config free.
 * The server binds before the collector starts so that a port conflict fails fast.
 */
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libconfig.h>
#include <libwebsockets.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include "tb/collector.h"
#include "tb/config.h"
#include "tb/encode.h"
#include "tb/log.h"
#include "tb/mailbox.h"
#include "tb/server.h"

#define DEFAULT_CONFIG "/etc/takhin-bridge/takhin-bridge.cfg"

static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: takhin-bridge [OPTIONS]\n"
            "Serve the Takhin Console WebSocket API from any Kafka-protocol cluster.\n"
            "\n"
            "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t, --check-config    validate the configuration, print one line, exit\n"
            "  -T, --dump-config     print the effective configuration (secrets redacted)\n"
            "      --once            run one collector cycle, print its messages as JSON\n"
            "                        lines on stdout, exit (0 if the cycle succeeded)\n"
            "      --cycles N        like --once, for N consecutive cycles\n"
            "  -l, --log-level LVL   override log.level (debug, info, warn, error)\n"
            "  -V, --version         print versions of the bridge and its libraries\n"
            "  -h, --help            this help\n"
            "\n"
            "Exit codes (sysexits.h): 0 ok, 64 usage, 69 Kafka unavailable (--once),\n"
            "70 internal error, 71 cannot start the server (e.g. port in use),\n"
            "78 configuration error.\n"
            "Docs: docs/configuration.md, docs/protocol.md, docs/operations.md\n");
}

static void print_version(void)
{
    printf("takhin-bridge %s\n", TB_VERSION);
    printf("librdkafka %s\n", rd_kafka_version_str());
    printf("libwebsockets %s\n", lws_get_library_version());
    printf("json-c %s\n", json_c_version());
    printf("libconfig %d.%d.%d\n", LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
           LIBCONFIG_VER_REVISION);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- signals ------------------------------------------------------------------ */

struct signal_ctx {
    sigset_t set;
    pthread_mutex_t mu;                /* guards server, lock, cond */
    struct tb_server *server;          /* NULL in --once mode */
    pthread_mutex_t *lock;             /* --once mode: wake the printer */
    pthread_cond_t *cond;
    atomic_bool *stop;
};

/* Called by the main thread to say whom a stop signal must reach. */
static void signal_targets(struct signal_ctx *ctx, struct tb_server *server,
                           pthread_mutex_t *lock, pthread_cond_t *cond)
{
    pthread_mutex_lock(&ctx->mu);
    ctx->server = server;
    ctx->lock = lock;
    ctx->cond = cond;
    pthread_mutex_unlock(&ctx->mu);
}

static void *signal_thread(void *arg)
{
    struct signal_ctx *ctx = arg;
    for (;;) {
        int sig = 0;
        if (sigwait(&ctx->set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            tb_info("main", "SIGHUP ignored: restart the process to reload the configuration");
            continue;
        }
        if (sig == SIGUSR1) /* internal: thread exit at the end of main */
            return NULL;
        tb_info("main", "received %s, stopping", strsignal(sig));
        atomic_store(ctx->stop, true);
        pthread_mutex_lock(&ctx->mu);
        if (ctx->server)
            tb_server_request_stop(ctx->server);
        if (ctx->lock) {
            pthread_mutex_lock(ctx->lock);
            pthread_cond_broadcast(ctx->cond);
            pthread_mutex_unlock(ctx->lock);
        }
        pthread_mutex_unlock(&ctx->mu);
    }
}

/* ---- --once / --cycles: print collector results as JSON lines ------------------ */

struct printer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool woken;
};

static void printer_wake(void *arg)
{
    struct printer *p = arg;
    pthread_mutex_lock(&p->lock);
    p->woken = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void print_buf(struct tb_buf *b)
{
    fwrite(tb_buf_payload(b), 1, b->len, stdout);
    fputc('\n', stdout);
    tb_buf_release(b);
}

static int run_cycles(const struct tb_config *cfg, long cycles, atomic_bool *stop,
                      struct signal_ctx *sctx)
{
    struct tb_mailbox mb;
    struct printer pr = {.woken = false};
    struct tb_collector *col = NULL;
    char err[512];
    int rc = EX_OK;
    bool last_ok = false;

    pthread_mutex_init(&pr.lock, NULL);
    pthread_cond_init(&pr.cond, NULL);
    if (tb_mailbox_init(&mb) != 0)
        return EX_SOFTWARE;
    tb_mailbox_set_wake(&mb, printer_wake, &pr);
    signal_targets(sctx, NULL, &pr.lock, &pr.cond);

    if (tb_collector_start(cfg, &mb, &col, err, sizeof(err)) != 0) {
        tb_error("main", "%s", err);
        rc = EX_CONFIG;
        goto out;
    }

    uint64_t seen = 0;
    for (long done = 0; done < cycles && !atomic_load(stop);) {
        pthread_mutex_lock(&pr.lock);
        while (!pr.woken && !atomic_load(stop))
            pthread_cond_wait(&pr.cond, &pr.lock);
        pr.woken = false;
        pthread_mutex_unlock(&pr.lock);

        struct tb_update *u = NULL;
        struct tb_event_list events;
        tb_event_list_init(&events);
        tb_mailbox_take(&mb, seen, &u, &events);
        for (size_t i = 0; i < events.count; i++) {
            struct tb_buf b = {0};
            if (tb_encode_event(&events.items[i], &b) == 0)
                print_buf(&b);
        }
        tb_event_list_clear(&events);
        if (!u)
            continue;
        seen = u->seq;
        struct tb_buf b = {0};
        if (tb_encode_metrics(u->metrics, &u->status, NULL, wall_ms(), &b) == 0)
            print_buf(&b);
        fflush(stdout);
        last_ok = u->status.last_ok;
        if (!last_ok)
            tb_warn("main", "cycle failed: %s", u->status.last_error);
        tb_update_unref(u);
        done++;
    }
    if (!last_ok)
        rc = EX_UNAVAILABLE;
out:
    tb_collector_stop(col);
    signal_targets(sctx, NULL, NULL, NULL);
    tb_mailbox_release(&mb);
    pthread_cond_destroy(&pr.cond);
    pthread_mutex_destroy(&pr.lock);
    return atomic_load(stop) ? EX_OK : rc;
}

/* ---- the daemon ----------------------------------------------------------------- */

static int run_daemon(const struct tb_config *cfg, struct signal_ctx *sctx)
{
    struct tb_mailbox mb;
    struct tb_server *srv = NULL;
    struct tb_collector *col = NULL;
    char err[512];
    int rc = EX_OK;

    if (tb_mailbox_init(&mb) != 0)
        return EX_SOFTWARE;

    int brokers = 0, topics = 0;
    if (tb_collector_probe(cfg, &brokers, &topics, err, sizeof(err)) == 0)
        tb_info("main", "connected to %s: %d broker(s), %d topic(s)", cfg->bootstrap_servers,
                brokers, topics);
    else
        tb_warn("main", "Kafka not reachable yet (%s); will keep trying every %d ms", err,
                cfg->poll_interval_ms);

    if (tb_server_new(cfg, &mb, &srv, err, sizeof(err)) != 0) {
        tb_error("main", "%s", err);
        rc = EX_OSERR;
        goto out;
    }
    signal_targets(sctx, srv, NULL, NULL);
    if (atomic_load(sctx->stop))
        goto out;
    if (tb_collector_start(cfg, &mb, &col, err, sizeof(err)) != 0) {
        tb_error("main", "%s", err);
        rc = EX_CONFIG;
        goto out;
    }
    if (tb_server_run(srv) != 0)
        rc = EX_SOFTWARE;
out:
    tb_collector_stop(col);
    signal_targets(sctx, NULL, NULL, NULL);
    tb_server_free(srv);
    tb_mailbox_release(&mb);
    if (rc == EX_OK)
        tb_info("main", "stopped");
    return rc;
}

int main(int argc, char **argv)
{
    const char *config_path = DEFAULT_CONFIG;
    const char *log_level = NULL;
    bool check = false, dump = false;
    long cycles = 0;

    enum { OPT_ONCE = 256, OPT_CYCLES };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"dump-config", no_argument, NULL, 'T'},
        {"log-level", required_argument, NULL, 'l'},
        {"once", no_argument, NULL, OPT_ONCE},
        {"cycles", required_argument, NULL, OPT_CYCLES},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:tTl:Vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 't': check = true; break;
        case 'T': dump = true; break;
        case 'l': log_level = optarg; break;
        case OPT_ONCE: cycles = 1; break;
        case OPT_CYCLES: {
            char *end = NULL;
            errno = 0;
            cycles = strtol(optarg, &end, 10);
            if (errno || !end || *end || cycles < 1 || cycles > 1000000) {
                fprintf(stderr, "takhin-bridge: --cycles takes a number from 1 to 1000000\n");
                return EX_USAGE;
            }
            break;
        }
        case 'V': print_version(); return EX_OK;
        case 'h': print_usage(stdout); return EX_OK;
        default: print_usage(stderr); return EX_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "takhin-bridge: unexpected argument '%s'\n", argv[optind]);
        print_usage(stderr);
        return EX_USAGE;
    }
    if (log_level && tb_log_level_parse(log_level) < 0) {
        fprintf(stderr, "takhin-bridge: --log-level must be debug, info, warn or error\n");
        return EX_USAGE;
    }

    struct tb_config *cfg = NULL;
    char err[1024];
    if (tb_config_load(config_path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return EX_CONFIG;
    }
    if (check) {
        printf("%s: configuration OK\n", config_path);
        tb_config_free(cfg);
        return EX_OK;
    }
    if (dump) {
        int rc = tb_config_dump(cfg, stdout) == 0 ? EX_OK : EX_IOERR;
        tb_config_free(cfg);
        return rc;
    }
    tb_log_set_level((enum tb_log_level)tb_log_level_parse(log_level ? log_level : cfg->log_level));
    tb_info("main", "takhin-bridge %s starting (librdkafka %s, libwebsockets %s)", TB_VERSION,
            rd_kafka_version_str(), lws_get_library_version());

    /* Block the stop signals in every thread created from here on; one thread waits. */
    atomic_bool stop = false;
    struct signal_ctx sctx = {.stop = &stop};
    pthread_mutex_init(&sctx.mu, NULL);
    sigemptyset(&sctx.set);
    sigaddset(&sctx.set, SIGINT);
    sigaddset(&sctx.set, SIGTERM);
    sigaddset(&sctx.set, SIGHUP);
    sigaddset(&sctx.set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sctx.set, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t sig_tid;
    if (pthread_create(&sig_tid, NULL, signal_thread, &sctx) != 0) {
        tb_error("main", "cannot start the signal thread");
        tb_config_free(cfg);
        return EX_OSERR;
    }

    int rc = cycles > 0 ? run_cycles(cfg, cycles, &stop, &sctx) : run_daemon(cfg, &sctx);

    pthread_kill(sig_tid, SIGUSR1);
    pthread_join(sig_tid, NULL);
    pthread_mutex_destroy(&sctx.mu);
    tb_config_free(cfg);
    return rc;
}
