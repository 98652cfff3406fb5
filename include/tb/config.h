/*
 * config.h - libconfig file -> validated, immutable configuration.
 *
 * Contract
 *   - One option table (tb_config_options()) drives parsing, defaults, range checks,
 *     --dump-config and the documentation-consistency test. Each entry names a dotted
 *     path ("kafka.poll_interval_ms"), a type, a default, bounds and a help line.
 *   - tb_config_load() rejects: syntax errors, unknown settings (the whole tree is
 *     walked), wrong types, out-of-range values, missing required options, librdkafka
 *     client properties that rd_kafka_conf_set() refuses, unreadable api_keys_file.
 *     Every error message reads "FILE:LINE: message" (LINE of the offending setting;
 *     for a missing required option, the line of its enclosing group or 1; for
 *     api_keys_file problems, "KEYSFILE:LINE:").
 *   - The returned struct is immutable and shared read-only by every thread; it is
 *     freed with tb_config_free() after all threads have stopped.
 *   - Secrets (auth.api_keys, keys from auth.api_keys_file, and any client property
 *     whose name contains "password", "secret" or "key" other than "*.location") are
 *     never logged and appear as "<redacted>" in tb_config_dump().
 *
 * File layout (libconfig syntax; see etc/takhin-bridge.cfg for every option):
 *   kafka     = { bootstrap_servers = "host:9092"; poll_interval_ms = 2000; ...
 *                 properties = [ "security.protocol=SASL_SSL", ... ]; };
 *   collector = { topics_include = [ "orders-*" ]; ... };
 *   canary    = { enabled = true; topic = "__takhin_canary"; ... };
 *   pod       = { log_dirs = [ "/var/lib/kafka/data" ]; broker_port = 9092; ... };
 *   server    = { address = "0.0.0.0"; port = 8080; ... };
 *   auth      = { api_keys = [ "k1" ]; api_keys_file = "/etc/takhin/keys"; };
 *   log       = { level = "info"; };
 * librdkafka property names contain dots, which libconfig setting names cannot, so
 * kafka.properties is an array of "name=value" strings.
 */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct tb_strlist {
    size_t count;
    char **items; /* owned; NULL when count == 0 */
};

struct tb_kafka_property {
    char *name;
    char *value;
    int line; /* source line, for error messages raised later */
};

struct tb_config {
    char *source_path; /* the file it was loaded from */

    /* kafka */
    char *bootstrap_servers;          /* required */
    int poll_interval_ms;             /* default 2000, 100..3600000 */
    int request_timeout_ms;           /* default 5000, 100..600000 */
    int max_in_flight;                /* committed-offset requests in flight, default 32, 1..1024 */
    int list_offsets_chunk;           /* partitions per ListOffsets call, default 1000, 1..100000 */
    int statistics_interval_ms;       /* librdkafka statistics, default 5000, 0=off, 0..3600000 */
    size_t property_count;
    struct tb_kafka_property *properties; /* verbatim librdkafka client properties */

    /* collector */
    bool include_internal_topics;     /* default false (__consumer_offsets etc.) */
    struct tb_strlist topics_include; /* fnmatch patterns; empty = all */
    struct tb_strlist topics_exclude; /* fnmatch patterns; applied after include */
    struct tb_strlist groups_include;
    struct tb_strlist groups_exclude;
    int topic_delete_confirm_cycles;  /* default 2, 1..100 */
    int group_delete_confirm_cycles;  /* default 2, 1..100 */
    int stale_after_ms;               /* data older than this: /readyz 503, default 10000 */

    /* canary: end-to-end latency probe (src/kafka/canary.c, docs/metrics-sources.md) */
    bool canary_enabled;              /* default false */
    char *canary_topic;               /* default "__takhin_canary"; a valid topic name */
    int canary_interval_ms;           /* one probe per partition this often, default 1000 */
    int canary_lost_after_ms;         /* not consumed back within this: lost, default 5000 */
    int canary_window_s;              /* percentile window, default 60, 10..3600 */
    bool canary_create_topic;         /* create the topic if missing, default true */
    int canary_partitions;            /* of a created topic; 0 = one per broker */
    int canary_replication_factor;    /* of a created topic; 0 = broker default */

    /* pod: signals read from the pod the bridge shares with the broker (src/core/pod.c) */
    struct tb_strlist pod_log_dirs;   /* absolute paths; empty = no sizes / disk usage */
    int pod_broker_port;              /* listener whose connections are counted; 0 = off */
    char *pod_process_match;          /* broker command-line substring; "" = the bridge */
    char *pod_proc_root;              /* default "/proc" */

    /* server */
    char *server_address;             /* default "0.0.0.0" */
    int server_port;                  /* default 8080, 0..65535 (0 = ephemeral, tests) */
    int max_clients;                  /* default 10000, 1..1000000 */
    int max_message_bytes;            /* inbound message limit, default 4096, 64..1048576 */
    int client_messages_per_second;   /* inbound rate limit, default 20, 1..100000 */
    int client_messages_burst;        /* token bucket depth, default 40, 1..100000 */
    int max_queued_events;            /* per-client event queue, default 1024, 1..1000000 */
    int ping_interval_s;              /* WebSocket-level ping, default 20, 1..3600 */
    int idle_timeout_s;               /* close after silence, default 45, 2..7200 */
    struct tb_strlist allowed_origins; /* empty = any Origin */
    char *tls_cert_file;              /* "" = plain ws/http */
    char *tls_key_file;
    bool metrics_require_auth;        /* GET /metrics needs a key, default false */
    int shutdown_timeout_ms;          /* drain deadline on SIGTERM, default 5000 */

    /* auth */
    struct tb_strlist api_keys;       /* SECRET; inline keys merged with file keys */
    char *api_keys_file;              /* "" = none */

    /* log */
    char *log_level;                  /* "debug" | "info" | "warn" | "error" */
};

enum tb_option_type { TB_OPT_STRING, TB_OPT_INT, TB_OPT_BOOL, TB_OPT_STRLIST, TB_OPT_PROPERTIES };

enum {
    TB_OPT_REQUIRED = 1 << 0,
    TB_OPT_SECRET = 1 << 1,
    TB_OPT_NONEMPTY = 1 << 2, /* TB_OPT_STRING: "" is rejected */
    TB_OPT_PATH = 1 << 3,     /* TB_OPT_STRING file path: a relative path is resolved against
                                 the config file's directory; the struct holds the result */
};

struct tb_option {
    const char *path;          /* dotted, e.g. "kafka.poll_interval_ms" */
    enum tb_option_type type;
    size_t offset;             /* offsetof(struct tb_config, field) */
    const char *default_str;   /* default as it would be written in the file ("2000", "\"0.0.0.0\"", "[]") */
    long long min, max;        /* TB_OPT_INT bounds (inclusive) */
    unsigned flags;
    const char *help;          /* one line, used by docs test and --help-config */
};

/* The option table; *count receives its length. Static storage. */
const struct tb_option *tb_config_options(size_t *count);

/*
 * Load and validate @path. On success returns 0 and stores a new config in *out.
 * On failure returns a negative errno-style value and writes "FILE:LINE: message"
 * into @err (always NUL-terminated).
 */
int tb_config_load(const char *path, struct tb_config **out, char *err, size_t errlen);

/* Write the effective configuration (defaults included) in libconfig syntax; secrets
 * are written as "<redacted>". Returns 0 or -errno. */
int tb_config_dump(const struct tb_config *cfg, FILE *out);

/* true if @name (a librdkafka property name) holds a secret and must be redacted. */
bool tb_config_property_is_secret(const char *name);

void tb_config_free(struct tb_config *cfg); /* NULL is a no-op */

#endif
