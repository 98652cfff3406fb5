/*
 * test_config.c - src/config/config.c: loading, validation messages, api_keys_file,
 * dump (redaction, round trip) and the consistency of the option table with
 * etc/takhin-bridge.cfg and docs/configuration.md.
 *
 * Committed fixtures live in tests/data/config/; small cases are written into a fresh
 * temporary directory per test. Every error test asserts the complete "FILE:LINE:
 * message" string; the line numbers are counted by hand from the fixture text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tb/config.h"
#include "../tmpdir.h"

#define DATA TB_TEST_DATA "/config/"

/* ------------------------------------------------------------------------------------ */
/* helpers                                                                              */

struct tmp {
    char dir[64];
};

static int setup_tmp(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    tb_test_mkdtemp(t->dir, sizeof(t->dir), "tb-config-test");
    *state = t;
    return 0;
}

static int teardown_tmp(void **state)
{
    struct tmp *t = *state;
    tb_test_rmtree(t->dir);
    free(t);
    return 0;
}

/* Writes @text to DIR/@name; returns the malloc'd path. */
static char *write_file(const struct tmp *t, const char *name, const char *text)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", t->dir, name) > 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    return path;
}

/* The whole content of @f from its start, NUL-terminated, malloc'd. */
static char *read_stream(FILE *f)
{
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    buf[size] = '\0';
    return buf;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char *buf = read_stream(f);
    fclose(f);
    return buf;
}

static struct tb_config *load_ok(const char *path)
{
    struct tb_config *cfg = NULL;
    char err[1024] = "unset";
    int rc = tb_config_load(path, &cfg, err, sizeof(err));
    if (rc != 0)
        fail_msg("loading %s failed (%d): %s", path, rc, err);
    assert_non_null(cfg);
    return cfg;
}

/* Loads @path, expects failure with exactly "@path:@suffix". */
static void expect_error(const char *path, const char *suffix)
{
    struct tb_config *cfg = (struct tb_config *)(uintptr_t)1;
    char err[1024] = "unset";
    int rc = tb_config_load(path, &cfg, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(cfg);
    char *want = NULL;
    assert_true(asprintf(&want, "%s:%s", path, suffix) > 0);
    assert_string_equal(err, want);
    free(want);
}

/* Writes a temporary config and expects the error "<path>:@suffix". */
static void expect_text_error(const struct tmp *t, const char *text, const char *suffix)
{
    char *path = write_file(t, "t.cfg", text);
    expect_error(path, suffix);
    free(path);
}

static char *dump_to_string(const struct tb_config *cfg)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(tb_config_dump(cfg, f), 0);
    char *buf = read_stream(f);
    fclose(f);
    return buf;
}

static size_t count_substr(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void assert_strlist(const struct tb_strlist *l, size_t n, const char *const *want)
{
    assert_int_equal(l->count, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->items[i], want[i]);
    if (n == 0)
        assert_null(l->items);
}

static const struct tb_option *option(const char *path)
{
    size_t n;
    const struct tb_option *o = tb_config_options(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(o[i].path, path) == 0)
            return &o[i];
    fail_msg("no option '%s' in the table", path);
    abort();
}

/* Field-by-field equality through the option table (source_path and lines excluded). */
static void assert_config_equal(const struct tb_config *a, const struct tb_config *b)
{
    size_t n;
    const struct tb_option *o = tb_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        const char *pa = (const char *)a + o[i].offset, *pb = (const char *)b + o[i].offset;
        switch (o[i].type) {
        case TB_OPT_INT:
            assert_int_equal(*(const int *)(const void *)pa, *(const int *)(const void *)pb);
            break;
        case TB_OPT_BOOL:
            assert_int_equal(*(const bool *)(const void *)pa, *(const bool *)(const void *)pb);
            break;
        case TB_OPT_STRING:
            assert_string_equal(*(char *const *)(const void *)pa,
                                *(char *const *)(const void *)pb);
            break;
        case TB_OPT_STRLIST: {
            const struct tb_strlist *la = (const void *)pa, *lb = (const void *)pb;
            assert_int_equal(la->count, lb->count);
            for (size_t k = 0; k < la->count; k++)
                assert_string_equal(la->items[k], lb->items[k]);
            break;
        }
        case TB_OPT_PROPERTIES:
            assert_int_equal(a->property_count, b->property_count);
            for (size_t k = 0; k < a->property_count; k++) {
                assert_string_equal(a->properties[k].name, b->properties[k].name);
                assert_string_equal(a->properties[k].value, b->properties[k].value);
            }
            break;
        }
    }
}

/* ------------------------------------------------------------------------------------ */
/* the table                                                                            */

static void test_option_table(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        enum tb_option_type type;
        size_t offset;
    } want[] = {
#define W(p, t, f) {p, t, offsetof(struct tb_config, f)}
        W("kafka.bootstrap_servers", TB_OPT_STRING, bootstrap_servers),
        W("kafka.poll_interval_ms", TB_OPT_INT, poll_interval_ms),
        W("kafka.request_timeout_ms", TB_OPT_INT, request_timeout_ms),
        W("kafka.max_in_flight", TB_OPT_INT, max_in_flight),
        W("kafka.list_offsets_chunk", TB_OPT_INT, list_offsets_chunk),
        W("kafka.statistics_interval_ms", TB_OPT_INT, statistics_interval_ms),
        W("kafka.properties", TB_OPT_PROPERTIES, property_count),
        W("collector.include_internal_topics", TB_OPT_BOOL, include_internal_topics),
        W("collector.topics_include", TB_OPT_STRLIST, topics_include),
        W("collector.topics_exclude", TB_OPT_STRLIST, topics_exclude),
        W("collector.groups_include", TB_OPT_STRLIST, groups_include),
        W("collector.groups_exclude", TB_OPT_STRLIST, groups_exclude),
        W("collector.topic_delete_confirm_cycles", TB_OPT_INT, topic_delete_confirm_cycles),
        W("collector.group_delete_confirm_cycles", TB_OPT_INT, group_delete_confirm_cycles),
        W("collector.stale_after_ms", TB_OPT_INT, stale_after_ms),
        W("canary.enabled", TB_OPT_BOOL, canary_enabled),
        W("canary.topic", TB_OPT_STRING, canary_topic),
        W("canary.interval_ms", TB_OPT_INT, canary_interval_ms),
        W("canary.lost_after_ms", TB_OPT_INT, canary_lost_after_ms),
        W("canary.window_s", TB_OPT_INT, canary_window_s),
        W("canary.create_topic", TB_OPT_BOOL, canary_create_topic),
        W("canary.partitions", TB_OPT_INT, canary_partitions),
        W("canary.replication_factor", TB_OPT_INT, canary_replication_factor),
        W("pod.log_dirs", TB_OPT_STRLIST, pod_log_dirs),
        W("pod.broker_port", TB_OPT_INT, pod_broker_port),
        W("pod.process_match", TB_OPT_STRING, pod_process_match),
        W("pod.proc_root", TB_OPT_STRING, pod_proc_root),
        W("server.address", TB_OPT_STRING, server_address),
        W("server.port", TB_OPT_INT, server_port),
        W("server.max_clients", TB_OPT_INT, max_clients),
        W("server.max_message_bytes", TB_OPT_INT, max_message_bytes),
        W("server.client_messages_per_second", TB_OPT_INT, client_messages_per_second),
        W("server.client_messages_burst", TB_OPT_INT, client_messages_burst),
        W("server.max_queued_events", TB_OPT_INT, max_queued_events),
        W("server.ping_interval_s", TB_OPT_INT, ping_interval_s),
        W("server.idle_timeout_s", TB_OPT_INT, idle_timeout_s),
        W("server.allowed_origins", TB_OPT_STRLIST, allowed_origins),
        W("server.tls_cert_file", TB_OPT_STRING, tls_cert_file),
        W("server.tls_key_file", TB_OPT_STRING, tls_key_file),
        W("server.metrics_require_auth", TB_OPT_BOOL, metrics_require_auth),
        W("server.shutdown_timeout_ms", TB_OPT_INT, shutdown_timeout_ms),
        W("auth.api_keys", TB_OPT_STRLIST, api_keys),
        W("auth.api_keys_file", TB_OPT_STRING, api_keys_file),
        W("log.level", TB_OPT_STRING, log_level),
#undef W
    };
    size_t n = 0;
    const struct tb_option *o = tb_config_options(&n);
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(o[i].path, want[i].path);
        assert_int_equal(o[i].type, want[i].type);
        assert_int_equal(o[i].offset, want[i].offset);
        assert_non_null(o[i].help);
        assert_true(strlen(o[i].help) > 10);
        assert_null(strchr(o[i].help, '\n'));
    }
    /* flags */
    assert_int_equal(option("kafka.bootstrap_servers")->flags & TB_OPT_REQUIRED, TB_OPT_REQUIRED);
    assert_null(option("kafka.bootstrap_servers")->default_str);
    assert_int_equal(option("auth.api_keys")->flags & TB_OPT_SECRET, TB_OPT_SECRET);
    assert_int_equal(option("auth.api_keys_file")->flags & TB_OPT_PATH, TB_OPT_PATH);
    /* bounds from config.h */
    assert_int_equal(option("kafka.poll_interval_ms")->min, 100);
    assert_int_equal(option("kafka.poll_interval_ms")->max, 3600000);
    assert_int_equal(option("server.port")->min, 0);
    assert_int_equal(option("server.port")->max, 65535);
    assert_int_equal(option("server.idle_timeout_s")->min, 2);
    assert_int_equal(option("server.idle_timeout_s")->max, 7200);
    assert_int_equal(option("server.max_message_bytes")->min, 64);
    assert_int_equal(option("server.max_message_bytes")->max, 1048576);
    assert_int_equal(option("kafka.statistics_interval_ms")->min, 0);
    assert_int_equal(option("canary.topic")->flags & TB_OPT_NONEMPTY, TB_OPT_NONEMPTY);
    assert_int_equal(option("pod.proc_root")->flags & TB_OPT_PATH, TB_OPT_PATH);
    assert_int_equal(option("canary.lost_after_ms")->max, 120000);
    assert_int_equal(option("canary.window_s")->min, 10);
    /* every int default lies in its range */
    for (size_t i = 0; i < n; i++)
        if (o[i].type == TB_OPT_INT) {
            long long d = strtoll(o[i].default_str, NULL, 10);
            assert_true(d >= o[i].min && d <= o[i].max);
        }
    /* NULL count is allowed */
    assert_ptr_equal(tb_config_options(NULL), o);
}

/* ------------------------------------------------------------------------------------ */
/* valid files                                                                          */

static void test_full_config(void **state)
{
    (void)state;
    struct tb_config *c = load_ok(DATA "full.cfg");
    assert_string_equal(c->source_path, DATA "full.cfg");
    assert_string_equal(c->bootstrap_servers, "broker-1:9092,broker-2:9092");
    assert_int_equal(c->poll_interval_ms, 1500);
    assert_int_equal(c->request_timeout_ms, 7000);
    assert_int_equal(c->max_in_flight, 64);
    assert_int_equal(c->list_offsets_chunk, 500);
    assert_int_equal(c->statistics_interval_ms, 0);
    assert_int_equal(c->property_count, 5);
    static const char *const pn[] = {"security.protocol", "sasl.mechanism", "sasl.username",
                                     "sasl.password", "client.id"};
    static const char *const pv[] = {"SASL_SSL", "SCRAM-SHA-512", "bridge", "s3cr3t-Passw0rd",
                                     "takhin bridge = test"};
    static const int pl[] = {10, 11, 12, 13, 14}; /* the last one precedes "];" */
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(c->properties[i].name, pn[i]);
        assert_string_equal(c->properties[i].value, pv[i]);
        assert_int_equal(c->properties[i].line, pl[i]);
    }
    assert_true(c->include_internal_topics);
    assert_strlist(&c->topics_include, 2, (const char *const[]){"orders-*", "payments"});
    assert_strlist(&c->topics_exclude, 1, (const char *const[]){"*-tmp"});
    assert_strlist(&c->groups_include, 1, (const char *const[]){"svc-*"});
    assert_strlist(&c->groups_exclude, 2, (const char *const[]){"console-consumer-*", "tmp-*"});
    assert_int_equal(c->topic_delete_confirm_cycles, 3);
    assert_int_equal(c->group_delete_confirm_cycles, 4);
    assert_int_equal(c->stale_after_ms, 60000);
    assert_true(c->canary_enabled);
    assert_string_equal(c->canary_topic, "probe.topic_v2-x");
    assert_int_equal(c->canary_interval_ms, 250);
    assert_int_equal(c->canary_lost_after_ms, 1500);
    assert_int_equal(c->canary_window_s, 30);
    assert_false(c->canary_create_topic);
    assert_int_equal(c->canary_partitions, 6);
    assert_int_equal(c->canary_replication_factor, 3);
    assert_strlist(&c->pod_log_dirs, 2,
                   (const char *const[]){"/var/lib/kafka/data-1", "/var/lib/kafka/data-2"});
    assert_int_equal(c->pod_broker_port, 9092);
    assert_string_equal(c->pod_process_match, "kafka.Kafka");
    assert_string_equal(c->pod_proc_root, DATA "procfs");
    assert_string_equal(c->server_address, "127.0.0.1");
    assert_int_equal(c->server_port, 9443);
    assert_int_equal(c->max_clients, 500);
    assert_int_equal(c->max_message_bytes, 8192);
    assert_int_equal(c->client_messages_per_second, 5);
    assert_int_equal(c->client_messages_burst, 10);
    assert_int_equal(c->max_queued_events, 256);
    assert_int_equal(c->ping_interval_s, 10);
    assert_int_equal(c->idle_timeout_s, 30);
    assert_strlist(&c->allowed_origins, 1, (const char *const[]){"https://console.example.com"});
    /* relative paths resolve against the config file's directory */
    assert_string_equal(c->tls_cert_file, DATA "dummy-cert.pem");
    assert_string_equal(c->tls_key_file, DATA "dummy-key.pem");
    assert_true(c->metrics_require_auth);
    assert_int_equal(c->shutdown_timeout_ms, 2500);
    /* "key-one" twice: deduplicated */
    assert_strlist(&c->api_keys, 2, (const char *const[]){"key-one", "key-two"});
    assert_string_equal(c->api_keys_file, "");
    assert_string_equal(c->log_level, "debug");
    tb_config_free(c);
}

static void assert_defaults(const struct tb_config *c)
{
    assert_int_equal(c->poll_interval_ms, 2000);
    assert_int_equal(c->request_timeout_ms, 5000);
    assert_int_equal(c->max_in_flight, 32);
    assert_int_equal(c->list_offsets_chunk, 1000);
    assert_int_equal(c->statistics_interval_ms, 5000);
    assert_int_equal(c->property_count, 0);
    assert_null(c->properties);
    assert_false(c->include_internal_topics);
    assert_strlist(&c->topics_include, 0, NULL);
    assert_strlist(&c->topics_exclude, 0, NULL);
    assert_strlist(&c->groups_include, 0, NULL);
    assert_strlist(&c->groups_exclude, 0, NULL);
    assert_int_equal(c->topic_delete_confirm_cycles, 2);
    assert_int_equal(c->group_delete_confirm_cycles, 2);
    assert_int_equal(c->stale_after_ms, 10000);
    assert_false(c->canary_enabled);
    assert_string_equal(c->canary_topic, "__takhin_canary");
    assert_int_equal(c->canary_interval_ms, 1000);
    assert_int_equal(c->canary_lost_after_ms, 5000);
    assert_int_equal(c->canary_window_s, 60);
    assert_true(c->canary_create_topic);
    assert_int_equal(c->canary_partitions, 0);
    assert_int_equal(c->canary_replication_factor, 0);
    assert_strlist(&c->pod_log_dirs, 0, NULL);
    assert_int_equal(c->pod_broker_port, 0);
    assert_string_equal(c->pod_process_match, "");
    assert_string_equal(c->pod_proc_root, "/proc");
    assert_string_equal(c->server_address, "0.0.0.0");
    assert_int_equal(c->server_port, 8080);
    assert_int_equal(c->max_clients, 10000);
    assert_int_equal(c->max_message_bytes, 4096);
    assert_int_equal(c->client_messages_per_second, 20);
    assert_int_equal(c->client_messages_burst, 40);
    assert_int_equal(c->max_queued_events, 1024);
    assert_int_equal(c->ping_interval_s, 20);
    assert_int_equal(c->idle_timeout_s, 45);
    assert_strlist(&c->allowed_origins, 0, NULL);
    assert_string_equal(c->tls_cert_file, "");
    assert_string_equal(c->tls_key_file, "");
    assert_false(c->metrics_require_auth);
    assert_int_equal(c->shutdown_timeout_ms, 5000);
    assert_strlist(&c->api_keys, 0, NULL);
    assert_string_equal(c->api_keys_file, "");
    assert_string_equal(c->log_level, "info");
}

static void test_defaults(void **state)
{
    (void)state;
    struct tb_config *c = load_ok(DATA "minimal.cfg");
    assert_string_equal(c->bootstrap_servers, "localhost:9092");
    assert_defaults(c);
    tb_config_free(c);
}

static void test_defaults_for_omitted_groups_and_empty_groups(void **state)
{
    struct tmp *t = *state;
    /* groups present but empty, in another order, with an @include */
    char *inc = write_file(t, "kafka.inc", "kafka = { bootstrap_servers = \"b:1\"; };\n");
    char *path = write_file(t, "t.cfg",
                            "log = {};\nserver = {};\n@include \"kafka.inc\"\ncollector = {};\n"
                            "auth = {};\n");
    struct tb_config *c = load_ok(path);
    assert_string_equal(c->bootstrap_servers, "b:1");
    assert_defaults(c);
    tb_config_free(c);
    free(path);
    free(inc);
}

static void test_integer_forms(void **state)
{
    struct tmp *t = *state;
    char *path = write_file(t, "t.cfg",
                            "kafka = { bootstrap_servers = \"b:1\";\n"
                            "  poll_interval_ms = 3600000L;\n"
                            "  max_in_flight = 0x400; list_offsets_chunk = 1;\n"
                            "  statistics_interval_ms = 0; };\n"
                            "collector = { stale_after_ms = 86400000; };\n"
                            "server = { port = 0; };\n");
    struct tb_config *c = load_ok(path);
    assert_int_equal(c->poll_interval_ms, 3600000);
    assert_int_equal(c->max_in_flight, 1024);
    assert_int_equal(c->list_offsets_chunk, 1);
    assert_int_equal(c->statistics_interval_ms, 0);
    assert_int_equal(c->stale_after_ms, 86400000);
    assert_int_equal(c->server_port, 0);
    tb_config_free(c);
    free(path);
}

/* ------------------------------------------------------------------------------------ */
/* invalid fixtures: the exact message                                                  */

static void test_bad_fixtures(void **state)
{
    (void)state;
    expect_error(DATA "bad-unknown-key.cfg",
                 "3: unknown setting 'kafka.pol_interval_ms' (did you mean "
                 "'kafka.poll_interval_ms'?)");
    expect_error(DATA "bad-unknown-group.cfg", "5: unknown setting 'logging'");
    expect_error(DATA "bad-type.cfg", "3: kafka.poll_interval_ms: expected an integer");
    expect_error(DATA "bad-range.cfg",
                 "3: kafka.poll_interval_ms: 50 is out of range [100, 3600000]");
    expect_error(DATA "bad-missing-bootstrap.cfg",
                 "3: missing required setting 'kafka.bootstrap_servers'");
    expect_error(DATA "bad-property.cfg",
                 "6: kafka.properties: Invalid value for configuration property "
                 "\"fetch.wait.max.ms\"");
    expect_error(DATA "bad-property-conflict.cfg",
                 "5: kafka.properties: 'group.id' is set by the bridge and cannot be "
                 "overridden");
    expect_error(DATA "bad-syntax.cfg", "4: syntax error");
    expect_error(DATA "bad-keys-missing.cfg",
                 "4: auth.api_keys_file: cannot read '" DATA
                 "no-such-keys-file.txt': No such file or directory");
    expect_error(DATA "bad-level.cfg",
                 "3: log.level: 'verbose' is not one of debug, info, warn, error");
    expect_error(DATA "bad-tls-half.cfg",
                 "4: server.tls_cert_file is set but server.tls_key_file is not; set both "
                 "or neither");
}

static void test_missing_file(void **state)
{
    (void)state;
    struct tb_config *cfg = (struct tb_config *)(uintptr_t)1;
    char err[256];
    assert_int_equal(tb_config_load(DATA "does-not-exist.cfg", &cfg, err, sizeof(err)), -ENOENT);
    assert_null(cfg);
    assert_string_equal(err, DATA "does-not-exist.cfg: cannot read: No such file or directory");
    assert_int_equal(tb_config_load(DATA, &cfg, err, sizeof(err)), -EISDIR);
    assert_string_equal(err, DATA ": cannot read: Is a directory");
    /* a tiny buffer is still terminated */
    char small[8];
    assert_true(tb_config_load(DATA "bad-type.cfg", &cfg, small, sizeof(small)) < 0);
    assert_int_equal(strlen(small), 7);
    assert_true(tb_config_load(DATA "bad-type.cfg", &cfg, NULL, 0) < 0);
}

/* ------------------------------------------------------------------------------------ */
/* invalid files written by the test                                                    */

#define KAFKA "kafka = { bootstrap_servers = \"b:1\"; };\n"

static void test_unknown_settings(void **state)
{
    struct tmp *t = *state;
    expect_text_error(t, KAFKA "kafak = {};\n",
                      "2: unknown setting 'kafak' (did you mean 'kafka'?)");
    expect_text_error(t, KAFKA "port = 8080;\n",
                      "2: unknown setting 'port' (did you mean 'server.port'?)");
    expect_text_error(t, KAFKA "server = {\n  Port = 1;\n};\n",
                      "3: unknown setting 'server.Port' (did you mean 'server.port'?)");
    expect_text_error(t, "kafka = {\n  bootstrap_servers = \"b:1\";\n  poll = 1;\n};\n",
                      "3: unknown setting 'kafka.poll' (did you mean 'kafka.poll_interval_ms'?)");
    expect_text_error(t, KAFKA "collector = { topics_includes = []; };\n",
                      "2: unknown setting 'collector.topics_includes' (did you mean "
                      "'collector.topics_include'?)");
    expect_text_error(t, KAFKA "server = { tls = { cert = \"x\"; }; };\n",
                      "2: unknown setting 'server.tls'");
    expect_text_error(t, KAFKA "log = { colour = true; };\n", "2: unknown setting 'log.colour'");
    expect_text_error(t, KAFKA "kafka2 = 1;\n",
                      "2: unknown setting 'kafka2' (did you mean 'kafka'?)");
    expect_text_error(t, "kafka = 1;\n", "1: kafka: expected a group (kafka = { ... };)");
    /* the first error in file order wins */
    expect_text_error(t, "kafka = {\n  poll_interval_ms = 1;\n  bogus = 2;\n};\n",
                      "2: kafka.poll_interval_ms: 1 is out of range [100, 3600000]");
}

static void test_type_and_range_errors(void **state)
{
    struct tmp *t = *state;
    expect_text_error(t, KAFKA "server = {\n  port = 8080.0;\n};\n",
                      "3: server.port: expected an integer");
    expect_text_error(t, KAFKA "server = { port = true; };\n",
                      "2: server.port: expected an integer");
    expect_text_error(t, KAFKA "server = { port = 65536; };\n",
                      "2: server.port: 65536 is out of range [0, 65535]");
    expect_text_error(t, KAFKA "server = { port = -1; };\n",
                      "2: server.port: -1 is out of range [0, 65535]");
    expect_text_error(t, KAFKA "server = { port = 5000000000L; };\n",
                      "2: server.port: 5000000000 is out of range [0, 65535]");
    /* libconfig 1.5 wraps these to 705032704 and 100: the literal is checked instead */
    expect_text_error(t, KAFKA "collector = { stale_after_ms = 5000000000; };\n",
                      "2: collector.stale_after_ms: 5000000000 is out of range [100, 86400000]");
    expect_text_error(t, "kafka = { bootstrap_servers = \"b:1\";\n  poll_interval_ms = 4294967396; };\n",
                      "2: kafka.poll_interval_ms: 4294967396 is out of range [100, 3600000]");
    expect_text_error(t, KAFKA "server = { max_clients = 0x100000000; };\n",
                      "2: server.max_clients: 0x100000000 is out of range [1, 1000000]");
    expect_text_error(t, KAFKA "server = { max_clients = 99999999999999999999; };\n",
                      "2: server.max_clients: 99999999999999999999 is out of range [1, 1000000]");
    expect_text_error(t, KAFKA "collector = { include_internal_topics = 1; };\n",
                      "2: collector.include_internal_topics: expected a boolean (true or false)");
    expect_text_error(t, KAFKA "collector = { include_internal_topics = \"true\"; };\n",
                      "2: collector.include_internal_topics: expected a boolean (true or false)");
    expect_text_error(t, KAFKA "server = { address = 0; };\n",
                      "2: server.address: expected a string");
    expect_text_error(t, KAFKA "server = { address = \"\"; };\n",
                      "2: server.address: must not be empty");
    expect_text_error(t, "kafka = { bootstrap_servers = \"\"; };\n",
                      "1: kafka.bootstrap_servers: must not be empty");
    expect_text_error(t, "kafka = { bootstrap_servers = [ \"a:1\" ]; };\n",
                      "1: kafka.bootstrap_servers: expected a string");
    expect_text_error(t, KAFKA "collector = { topics_include = \"orders-*\"; };\n",
                      "2: collector.topics_include: expected a list of strings");
    expect_text_error(t, KAFKA "collector = {\n  topics_include = [\n    1,\n    2\n  ];\n};\n",
                      "4: collector.topics_include: expected a list of strings");
    expect_text_error(t, KAFKA "collector = { groups_exclude = ( \"a\", { x = 1; } ); };\n",
                      "2: collector.groups_exclude: expected a list of strings");
    expect_text_error(t, KAFKA "server = { allowed_origins = [ \"https://a\", \"\" ]; };\n",
                      "2: server.allowed_origins: empty string in list");
    expect_text_error(t, KAFKA "log = { level = \"INFO\"; };\n",
                      "2: log.level: 'INFO' is not one of debug, info, warn, error");
    expect_text_error(t, KAFKA "canary = {\n  topic = \"my canary\";\n};\n",
                      "3: canary.topic: 'my canary' is not a valid topic name (letters, digits, "
                      "'.', '_', '-'; at most 249 characters; not \".\" or \"..\")");
    expect_text_error(t, KAFKA "canary = { topic = \"..\"; };\n",
                      "2: canary.topic: '..' is not a valid topic name (letters, digits, "
                      "'.', '_', '-'; at most 249 characters; not \".\" or \"..\")");
    expect_text_error(t, KAFKA "canary = { topic = \"\"; };\n", "2: canary.topic: must not be empty");
    expect_text_error(t, KAFKA "canary = { window_s = 5; };\n",
                      "2: canary.window_s: 5 is out of range [10, 3600]");
    expect_text_error(t, KAFKA "pod = {\n  log_dirs = [\n    \"/data/a\",\n    \"data/b\"\n  ];\n};\n",
                      "5: pod.log_dirs: 'data/b' is not an absolute path");
    expect_text_error(t, KAFKA "pod = { broker_port = 70000; };\n",
                      "2: pod.broker_port: 70000 is out of range [0, 65535]");
}

static void test_missing_required(void **state)
{
    struct tmp *t = *state;
    /* no kafka group at all: line 1 */
    expect_text_error(t, "\n\nlog = { level = \"warn\"; };\n",
                      "1: missing required setting 'kafka.bootstrap_servers'");
    expect_text_error(t, "", "1: missing required setting 'kafka.bootstrap_servers'");
}

static void test_cross_checks(void **state)
{
    struct tmp *t = *state;
    expect_text_error(t, "kafka = {\n  bootstrap_servers = \"b:1\";\n  poll_interval_ms = 20000;\n};\n",
                      "3: collector.stale_after_ms (10000) must be greater than "
                      "kafka.poll_interval_ms (20000)");
    expect_text_error(t, KAFKA "collector = {\n  stale_after_ms = 2000;\n};\n",
                      "3: collector.stale_after_ms (2000) must be greater than "
                      "kafka.poll_interval_ms (2000)");
    expect_text_error(t, KAFKA "server = {\n  ping_interval_s = 60;\n};\n",
                      "3: server.idle_timeout_s (45) must be greater than "
                      "server.ping_interval_s (60)");
    expect_text_error(t, KAFKA "server = {\n  tls_key_file = \"x.key\";\n};\n",
                      "3: server.tls_key_file is set but server.tls_cert_file is not; set both "
                      "or neither");
    char *want = NULL;
    assert_true(asprintf(&want,
                         "4: server.tls_key_file: cannot read '%s/missing.key': No such file "
                         "or directory",
                         t->dir) > 0);
    expect_text_error(t,
                      KAFKA "server = {\n  tls_cert_file = \"t.cfg\";\n"
                            "  tls_key_file = \"missing.key\";\n};\n",
                      want);
    free(want);
}

static void test_properties_errors(void **state)
{
    struct tmp *t = *state;
    /* the element's own line, also for the last element of a multi-line array */
    expect_text_error(t,
                      "kafka = {\n  bootstrap_servers = \"b:1\";\n  properties = [\n"
                      "    \"client.id=x\",\n"
                      "    \"security.protocol=FOO\"\n"
                      "\n"
                      "  ];\n};\n",
                      "5: kafka.properties: Invalid value \"FOO\" for configuration property "
                      "\"security.protocol\"");
    expect_text_error(t,
                      "kafka = {\n  bootstrap_servers = \"b:1\";\n  properties = (\n"
                      "    \"client.id=x\"\n"
                      "    , \"foo.bar=1\"  # comment\n"
                      "  );\n};\n",
                      "5: kafka.properties: No such configuration property: \"foo.bar\"");
    expect_text_error(t,
                      "kafka = { bootstrap_servers = \"b:1\";\n"
                      "  properties = [ \"client.id=a\", \"sasl.password hunter2\" ]; };\n",
                      "2: kafka.properties: element 2 is not of the form \"name=value\"");
    expect_text_error(t, "kafka = { bootstrap_servers = \"b:1\"; properties = [ \" =x\" ]; };\n",
                      "1: kafka.properties: element 1 has an empty property name");
    expect_text_error(t,
                      "kafka = { bootstrap_servers = \"b:1\"; properties = [\n"
                      "  \"client.id=a\",\n  \"client.id=b\" ]; };\n",
                      "3: kafka.properties: 'client.id' is set twice (first on line 2)");
    expect_text_error(t,
                      "kafka = { bootstrap_servers = \"b:1\";\n"
                      "  properties = [ \"bootstrap.servers=x:1\" ]; };\n",
                      "2: kafka.properties: 'bootstrap.servers' is set by the bridge; use "
                      "kafka.bootstrap_servers");
    expect_text_error(t,
                      "kafka = { bootstrap_servers = \"b:1\";\n"
                      "  properties = [ \"statistics.interval.ms=100\" ]; };\n",
                      "2: kafka.properties: 'statistics.interval.ms' is set by the bridge; use "
                      "kafka.statistics_interval_ms");
    expect_text_error(t,
                      "kafka = { bootstrap_servers = \"b:1\";\n"
                      "  properties = [ \"isolation.level=read_committed\" ]; };\n",
                      "2: kafka.properties: 'isolation.level' is set by the bridge "
                      "(read_uncommitted) and cannot be overridden");
    expect_text_error(t,
                      "kafka = { bootstrap_servers = \"b:1\";\n"
                      "  properties = [ \"enable.auto.commit=true\" ]; };\n",
                      "2: kafka.properties: 'enable.auto.commit' is set by the bridge (false) "
                      "and cannot be overridden");
    expect_text_error(t,
                      "kafka = { bootstrap_servers = \"b:1\";\n"
                      "  properties = [ \"sasl.password=<redacted>\" ]; };\n",
                      "2: kafka.properties: 'sasl.password' holds the placeholder "
                      "\"<redacted>\" written by --dump-config; set the real value");
    expect_text_error(t, "kafka = { bootstrap_servers = \"b:1\"; properties = \"a=b\"; };\n",
                      "1: kafka.properties: expected a list of \"name=value\" strings");
    expect_text_error(t, "kafka = { bootstrap_servers = \"b:1\"; properties = [ 1 ]; };\n",
                      "1: kafka.properties: expected a list of \"name=value\" strings");

    /* valid: name trimmed, value verbatim (may contain '=') */
    char *path = write_file(t, "ok.cfg",
                            "kafka = { bootstrap_servers = \"b:1\";\n"
                            "  properties = [ \" client.id =a=b\", \"ssl.key.password=\" ]; };\n");
    struct tb_config *c = load_ok(path);
    assert_int_equal(c->property_count, 2);
    assert_string_equal(c->properties[0].name, "client.id");
    assert_string_equal(c->properties[0].value, "a=b");
    assert_int_equal(c->properties[0].line, 2);
    assert_string_equal(c->properties[1].name, "ssl.key.password");
    assert_string_equal(c->properties[1].value, "");
    tb_config_free(c);
    free(path);
}

static void test_syntax_error_in_include(void **state)
{
    struct tmp *t = *state;
    char *inc = write_file(t, "broken.inc", "server = {\n  port = ;\n};\n");
    char *want = NULL;
    assert_true(asprintf(&want, "%s:2: syntax error", inc) > 0);
    char *path = write_file(t, "t.cfg", KAFKA "@include \"broken.inc\"\n");
    struct tb_config *cfg = NULL;
    char err[1024];
    assert_true(tb_config_load(path, &cfg, err, sizeof(err)) < 0);
    assert_string_equal(err, want);
    free(want);
    /* a setting from an included file is reported against that file (resolved) */
    free(write_file(t, "broken.inc", "server = {\n  port = 99999;\n};\n"));
    assert_true(asprintf(&want, "%s:2: server.port: 99999 is out of range [0, 65535]", inc) > 0);
    assert_true(tb_config_load(path, &cfg, err, sizeof(err)) < 0);
    assert_string_equal(err, want);
    free(want);
    free(path);
    free(inc);
}

/* ------------------------------------------------------------------------------------ */
/* API keys                                                                             */

static void test_api_keys_file(void **state)
{
    (void)state;
    struct tb_config *c = load_ok(DATA "keys.cfg");
    /* inline first, then the file's; "shared-key" and the second "file-1" dropped */
    assert_strlist(&c->api_keys, 5,
                   (const char *const[]){"inline-1", "shared-key", "file-1", "file-2", "file-3"});
    assert_string_equal(c->api_keys_file, DATA "keys.txt");
    tb_config_free(c);
}

static void test_api_keys_invalid(void **state)
{
    struct tmp *t = *state;
    static const char cfg_text[] = KAFKA "auth = {\n  api_keys_file = \"k.txt\";\n};\n";
    static const struct {
        const char *file;
        const char *why;
    } cases[] = {
        {"# c\n\ngood\nbad key\n", "4: invalid API key (contains a space)"},
        {"ctl\001key\n", "1: invalid API key (contains a control character)"},
        {"a\tb\n", "1: invalid API key (contains a control character)"},
        {"<redacted>\n",
         "1: invalid API key (\"<redacted>\" is the placeholder written by --dump-config)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *kpath = write_file(t, "k.txt", cases[i].file);
        char *path = write_file(t, "t.cfg", cfg_text);
        struct tb_config *cfg = NULL;
        char err[1024];
        assert_true(tb_config_load(path, &cfg, err, sizeof(err)) < 0);
        char *want = NULL;
        assert_true(asprintf(&want, "%s:%s", kpath, cases[i].why) > 0);
        assert_string_equal(err, want);
        free(want);
        free(path);
        free(kpath);
    }
    /* too long: 4097 bytes; the key itself is not echoed */
    char *longkey = malloc(4099);
    assert_non_null(longkey);
    memset(longkey, 'Z', 4097);
    longkey[4097] = '\n';
    longkey[4098] = '\0';
    char *kpath = write_file(t, "k.txt", longkey);
    char *path = write_file(t, "t.cfg", cfg_text);
    struct tb_config *cfg = NULL;
    char err[1024];
    assert_true(tb_config_load(path, &cfg, err, sizeof(err)) < 0);
    char *want = NULL;
    assert_true(asprintf(&want, "%s:1: invalid API key (longer than 4096 bytes)", kpath) > 0);
    assert_string_equal(err, want);
    assert_null(strstr(err, "ZZZZ"));
    free(want);
    free(kpath);
    /* exactly 4096 bytes is fine */
    longkey[4096] = '\n';
    longkey[4097] = '\0';
    kpath = write_file(t, "k.txt", longkey);
    struct tb_config *c = load_ok(path);
    assert_int_equal(c->api_keys.count, 1);
    assert_int_equal(strlen(c->api_keys.items[0]), 4096);
    tb_config_free(c);
    free(kpath);
    free(longkey);
    /* no key at all: refused rather than silently disabling authentication */
    kpath = write_file(t, "k.txt", "# nothing yet\n\n   \n");
    want = NULL;
    assert_true(asprintf(&want, "3: auth.api_keys_file: '%s' contains no API keys", kpath) > 0);
    expect_error(path, want);
    free(want);
    free(kpath);
    free(path);

    /* inline keys: the element's line, the key not echoed */
    expect_text_error(t, KAFKA "auth = { api_keys = [\n  \"ok\",\n  \"not ok\"\n]; };\n",
                      "4: auth.api_keys: invalid API key (contains a space)");
    expect_text_error(t, KAFKA "auth = { api_keys = [ \"\" ]; };\n",
                      "2: auth.api_keys: invalid API key (empty)");
}

/* ------------------------------------------------------------------------------------ */
/* dump                                                                                 */

static void test_dump_redacts(void **state)
{
    (void)state;
    struct tb_config *c = load_ok(DATA "full.cfg");
    char *text = dump_to_string(c);
    assert_null(strstr(text, "s3cr3t-Passw0rd"));
    assert_null(strstr(text, "key-one"));
    assert_null(strstr(text, "key-two"));
    assert_non_null(strstr(text, "\"sasl.password=<redacted>\""));
    assert_non_null(strstr(text, "\"sasl.username=bridge\""));
    assert_non_null(strstr(text, "\"client.id=takhin bridge = test\""));
    /* 2 api keys + 1 property + the header comment */
    assert_int_equal(count_substr(text, "<redacted>"), 4);
    assert_non_null(strstr(text, "  poll_interval_ms = 1500;\n"));
    assert_non_null(strstr(text, "  max_in_flight = 64;\n"));
    assert_non_null(strstr(text, "  include_internal_topics = true;\n"));
    assert_non_null(strstr(text, "  level = \"debug\";\n"));
    free(text);
    tb_config_free(c);

    c = load_ok(DATA "keys.cfg");
    text = dump_to_string(c);
    assert_null(strstr(text, "inline-1"));
    assert_null(strstr(text, "file-1"));
    assert_null(strstr(text, "shared-key"));
    assert_int_equal(count_substr(text, "\"<redacted>\""), 6); /* 5 keys + header */
    free(text);
    tb_config_free(c);

    assert_int_equal(tb_config_dump(NULL, stdout), -EINVAL);
}

static void test_dump_round_trip(void **state)
{
    struct tmp *t = *state;
    /* every option away from its default, strings that need escaping, no secrets */
    char *path = write_file(
        t, "t.cfg",
        "kafka = {\n"
        "  bootstrap_servers = \"a:1,b:2\";\n"
        "  poll_interval_ms = 100; request_timeout_ms = 600000; max_in_flight = 1;\n"
        "  list_offsets_chunk = 100000; statistics_interval_ms = 3600000;\n"
        "  properties = [ \"client.id=q\\\"uote\\\\back\\tslash\", \"sasl.username=u\\x01\\n\" ];\n"
        "};\n"
        "collector = { include_internal_topics = true; topics_include = [ \"a*\", \"\\xc3\\xa9t\\xc3\\xa9\" ];\n"
        "  topics_exclude = [ \"x\" ]; groups_include = [ \"g\" ]; groups_exclude = [ \"h\", \"i\" ];\n"
        "  topic_delete_confirm_cycles = 100; group_delete_confirm_cycles = 1; stale_after_ms = 101; };\n"
        "server = { address = \"::1\"; port = 65535; max_clients = 1; max_message_bytes = 64;\n"
        "  client_messages_per_second = 100000; client_messages_burst = 1; max_queued_events = 1;\n"
        "  ping_interval_s = 3600; idle_timeout_s = 7200; allowed_origins = [ \"http://x\" ];\n"
        "  tls_cert_file = \"t.cfg\"; tls_key_file = \"t.cfg\";\n"
        "  metrics_require_auth = true; shutdown_timeout_ms = 0; };\n"
        "log = { level = \"error\"; };\n");
    struct tb_config *a = load_ok(path);
    assert_string_equal(a->properties[0].value, "q\"uote\\back\tslash");
    assert_string_equal(a->properties[1].value, "u\001\n");
    char *text = dump_to_string(a);
    char *dumped = write_file(t, "dumped.cfg", text);
    struct tb_config *b = load_ok(dumped);
    assert_config_equal(a, b);
    /* and the dump of the reloaded config is identical except for the source path */
    char *text2 = dump_to_string(b);
    assert_string_equal(strchr(text, '\n'), strchr(text2, '\n'));
    free(text2);
    tb_config_free(b);
    free(dumped);
    free(text);
    tb_config_free(a);

    /* defaults round-trip too */
    a = load_ok(DATA "minimal.cfg");
    text = dump_to_string(a);
    dumped = write_file(t, "dumped.cfg", text);
    b = load_ok(dumped);
    assert_config_equal(a, b);
    assert_defaults(b);
    tb_config_free(b);
    tb_config_free(a);
    free(dumped);
    free(text);
    free(path);
}

/* ------------------------------------------------------------------------------------ */
/* secrets, free                                                                        */

static void test_property_is_secret(void **state)
{
    (void)state;
    assert_true(tb_config_property_is_secret("sasl.password"));
    assert_true(tb_config_property_is_secret("ssl.key.password"));
    assert_true(tb_config_property_is_secret("ssl.key.pem"));
    assert_true(tb_config_property_is_secret("ssl.keystore.password"));
    assert_true(tb_config_property_is_secret("sasl.oauthbearer.client.secret"));
    assert_true(tb_config_property_is_secret("sasl.oauthbearer.config"));
    assert_true(tb_config_property_is_secret("sasl.kerberos.keytab"));
    assert_true(tb_config_property_is_secret("SSL.KEY.PEM"));
    assert_false(tb_config_property_is_secret("ssl.key.location"));
    assert_false(tb_config_property_is_secret("ssl.keystore.location"));
    assert_false(tb_config_property_is_secret("ssl.ca.location"));
    assert_false(tb_config_property_is_secret("sasl.username"));
    assert_false(tb_config_property_is_secret("security.protocol"));
    assert_false(tb_config_property_is_secret("ssl.certificate.pem"));
    assert_false(tb_config_property_is_secret("client.id"));
    assert_false(tb_config_property_is_secret(NULL));
}

static void test_free_null(void **state)
{
    (void)state;
    tb_config_free(NULL);
}

/* ------------------------------------------------------------------------------------ */
/* consistency of the table with etc/takhin-bridge.cfg and docs/configuration.md        */

struct setting_line {
    char group[32];
    char leaf[64];
    bool commented;
    size_t index; /* line index in the file */
};

/* Splits @text into lines in place; returns the count; *lines is malloc'd. */
static size_t split_lines(char *text, char ***lines)
{
    size_t n = 0, cap = 64;
    *lines = malloc(cap * sizeof(char *));
    assert_non_null(*lines);
    for (char *p = text; p;) {
        if (n == cap) {
            cap *= 2;
            *lines = realloc(*lines, cap * sizeof(char *));
            assert_non_null(*lines);
        }
        (*lines)[n++] = p;
        char *e = strchr(p, '\n');
        if (e)
            *e = '\0';
        p = e ? e + 1 : NULL;
    }
    return n;
}

/* "[#] leaf = value;" -> leaf; NULL otherwise. */
static bool parse_setting_line(const char *line, char *leaf, size_t leaflen, bool *commented)
{
    const char *p = line;
    while (*p == ' ')
        p++;
    *commented = *p == '#';
    if (*commented) {
        p++;
        while (*p == ' ')
            p++;
    }
    size_t n = 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || p[n] == '_')
        n++;
    if (n == 0 || n >= leaflen)
        return false;
    const char *q = p + n;
    while (*q == ' ')
        q++;
    if (*q != '=')
        return false;
    size_t len = strlen(line);
    while (len > 0 && line[len - 1] == ' ')
        len--;
    if (len == 0 || line[len - 1] != ';')
        return false;
    memcpy(leaf, p, n);
    leaf[n] = '\0';
    return true;
}

static void test_example_config_lists_every_option(void **state)
{
    (void)state;
    char *text = read_all(TB_SOURCE_DIR "/etc/takhin-bridge.cfg");
    char **lines;
    size_t nlines = split_lines(text, &lines);
    size_t n;
    const struct tb_option *o = tb_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        char group[32];
        const char *dot = strchr(o[i].path, '.');
        snprintf(group, sizeof(group), "%.*s", (int)(dot - o[i].path), o[i].path);
        const char *leaf = dot + 1;
        /* find "group = {", then the setting line before "};" */
        char opener[48];
        snprintf(opener, sizeof(opener), "%s = {", group);
        size_t start = nlines, found = nlines;
        for (size_t l = 0; l < nlines; l++)
            if (strcmp(lines[l], opener) == 0)
                start = l;
        if (start == nlines)
            fail_msg("group '%s' missing from etc/takhin-bridge.cfg", group);
        size_t prev_setting = start;
        for (size_t l = start + 1; l < nlines && strcmp(lines[l], "};") != 0; l++) {
            char got[64];
            bool commented;
            if (!parse_setting_line(lines[l], got, sizeof(got), &commented))
                continue;
            if (strcmp(got, leaf) == 0) {
                found = l;
                break;
            }
            prev_setting = l;
        }
        if (found == nlines)
            fail_msg("'%s' is not set (active or commented) in group '%s' of "
                     "etc/takhin-bridge.cfg",
                     leaf, group);
        /* its comment block, between the previous setting and it, states the default */
        char want[128];
        if (o[i].default_str)
            snprintf(want, sizeof(want), "Default: %s", o[i].default_str);
        else
            snprintf(want, sizeof(want), "Required");
        bool documented = false;
        for (size_t l = prev_setting + 1; l < found; l++)
            if (lines[l][strspn(lines[l], " ")] == '#' && strstr(lines[l], want))
                documented = true;
        if (!documented)
            fail_msg("the comment above '%s' in etc/takhin-bridge.cfg lacks \"%s\"", o[i].path,
                     want);
        if (o[i].type == TB_OPT_INT) {
            char range[64];
            snprintf(range, sizeof(range), "Range %lld..%lld", o[i].min, o[i].max);
            bool ranged = false;
            for (size_t l = prev_setting + 1; l < found; l++)
                if (strstr(lines[l], range))
                    ranged = true;
            if (!ranged)
                fail_msg("the comment above '%s' lacks \"%s\"", o[i].path, range);
        }
    }
    free(lines);
    free(text);
}

static void test_example_config_loads(void **state)
{
    struct tmp *t = *state;
    struct tb_config *ex = load_ok(TB_SOURCE_DIR "/etc/takhin-bridge.cfg");
    assert_string_equal(ex->bootstrap_servers, "127.0.0.1:9092");
    assert_defaults(ex);

    /* uncomment every "# leaf = value;" line: must load, to the same (default) values */
    char *text = read_all(TB_SOURCE_DIR "/etc/takhin-bridge.cfg");
    char **lines;
    size_t nlines = split_lines(text, &lines);
    FILE *mem = tmpfile();
    assert_non_null(mem);
    size_t uncommented = 0;
    for (size_t l = 0; l < nlines; l++) {
        char leaf[64];
        bool commented;
        if (parse_setting_line(lines[l], leaf, sizeof(leaf), &commented) && commented) {
            const char *hash = strchr(lines[l], '#');
            fprintf(mem, "%.*s%s\n", (int)(hash - lines[l]), lines[l], hash + 1);
            uncommented++;
        } else {
            fprintf(mem, "%s\n", lines[l]);
        }
    }
    char *out = read_stream(mem);
    fclose(mem);
    size_t n;
    tb_config_options(&n);
    assert_int_equal(uncommented, n - 1); /* all but bootstrap_servers */
    char *path = write_file(t, "uncommented.cfg", out);
    struct tb_config *un = load_ok(path);
    assert_config_equal(ex, un);
    tb_config_free(un);
    tb_config_free(ex);
    free(path);
    free(out);
    free(lines);
    free(text);
}

static void test_docs_list_every_option(void **state)
{
    (void)state;
    char *text = read_all(TB_SOURCE_DIR "/docs/configuration.md");
    char **lines;
    size_t nlines = split_lines(text, &lines);
    size_t n;
    const struct tb_option *o = tb_config_options(&n);
    for (size_t i = 0; i < n; i++) {
        char row[96];
        snprintf(row, sizeof(row), "| `%s` |", o[i].path);
        const char *line = NULL;
        for (size_t l = 0; l < nlines && !line; l++)
            if (strncmp(lines[l], row, strlen(row)) == 0)
                line = lines[l];
        if (!line)
            fail_msg("docs/configuration.md has no table row for `%s`", o[i].path);
        char want[128];
        if (o[i].default_str)
            snprintf(want, sizeof(want), "| `%s` |", o[i].default_str);
        else
            snprintf(want, sizeof(want), "| required");
        if (!strstr(line, want))
            fail_msg("the docs row of `%s` lacks the default \"%s\"", o[i].path, want);
        if (o[i].type == TB_OPT_INT) {
            snprintf(want, sizeof(want), "| %lld..%lld |", o[i].min, o[i].max);
            if (!strstr(line, want))
                fail_msg("the docs row of `%s` lacks the range \"%s\"", o[i].path, want);
        }
    }
    free(lines);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_option_table),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_setup_teardown(test_defaults_for_omitted_groups_and_empty_groups,
                                        setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_integer_forms, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_bad_fixtures),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test_setup_teardown(test_unknown_settings, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_type_and_range_errors, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_missing_required, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_cross_checks, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_properties_errors, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_syntax_error_in_include, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_api_keys_file),
        cmocka_unit_test_setup_teardown(test_api_keys_invalid, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_dump_redacts),
        cmocka_unit_test_setup_teardown(test_dump_round_trip, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_property_is_secret),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_example_config_lists_every_option),
        cmocka_unit_test_setup_teardown(test_example_config_loads, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_docs_list_every_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
