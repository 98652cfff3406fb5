/*
 * config.c - libconfig file -> validated, immutable struct tb_config. See
 * include/tb/config.h for the contract and docs/configuration.md for the options.
 *
 * Design
 *   Options are data. option_table[] lists every setting: dotted path, type, offset of
 *   its field, default (written in libconfig syntax), bounds, flags and a help line.
 *   Everything else is generic over that table:
 *     - defaults: each default_str is parsed by libconfig itself ("v = <default>;") and
 *       stored through the same converter as a value read from the file, so a default
 *       is always something the file could say, and tb_config_dump() output reloads;
 *     - loading: libconfig parses the file (auto-convert off: 2000.0 is not an int),
 *       then the WHOLE tree is walked in file order. libconfig accepts any setting, so
 *       every setting must be a known group or a table entry; each value is type- and
 *       range-checked where it is met, so the error reported is the first in the file;
 *     - then: required options, paths made absolute, cross-option rules (TLS pair,
 *       stale_after_ms vs poll interval, idle timeout vs ping), and the API-key file.
 *       kafka.properties are checked element by element with rd_kafka_conf_set();
 *     - tb_config_dump() writes the table back out in libconfig syntax.
 *   Special cases keyed by field: log.level (an enumeration), auth.api_keys (key syntax),
 *   kafka.properties (the only TB_OPT_PROPERTIES option; it fills two fields).
 *
 *   libconfig 1.5 (Debian 12) has two quirks that we correct from the source text
 *   (struct srcfile, read lazily, only when needed):
 *     - an integer literal beyond 32 bits without the L suffix is silently wrapped
 *       (5000000000 -> 705032704; 4294967396 -> 100). The literal is re-read from the
 *       setting's line and range-checked as written;
 *     - an array element's line is the line of the token AFTER it, so the last element
 *       of a multi-line array is reported on the line of "]". When that line starts with
 *       ']', ')' or ',' we step back to the previous line with content.
 *
 * Errors read "FILE:LINE: message", FILE being the file libconfig read the setting from
 * (the path given, or an @include'd file, resolved against the config's directory).
 * Problems inside auth.api_keys_file read "KEYSFILE:LINE: ...". A config file that
 * cannot be opened reads "FILE: cannot read: <strerror>" (there is no line). Secret
 * values are never copied into error messages.
 *
 * Threads: no global mutable state; tb_config_load() may run on any thread. The result
 * is immutable; tb_config_free() wipes secrets (explicit_bzero) before freeing them.
 */
#include "tb/config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <librdkafka/rdkafka.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tb/log.h"

#define MAX_API_KEY_BYTES 4096
#define REDACTED "<redacted>"

#define OPT(path, type, field, def, min, max, flags, help) \
    {path, type, offsetof(struct tb_config, field), def, min, max, flags, help}

/* Order: dump order and documentation order. Groups appear in group_names[] order. */
static const struct tb_option option_table[] = {
    /* kafka */
    OPT("kafka.bootstrap_servers", TB_OPT_STRING, bootstrap_servers, NULL, 0, 0,
        TB_OPT_REQUIRED | TB_OPT_NONEMPTY,
        "Comma-separated host:port list of Kafka brokers to bootstrap from."),
    OPT("kafka.poll_interval_ms", TB_OPT_INT, poll_interval_ms, "2000", 100, 3600000, 0,
        "Time between the starts of two collection cycles, in milliseconds."),
    OPT("kafka.request_timeout_ms", TB_OPT_INT, request_timeout_ms, "5000", 100, 600000, 0,
        "Timeout of each Kafka request (metadata, offsets, groups), in milliseconds."),
    OPT("kafka.max_in_flight", TB_OPT_INT, max_in_flight, "32", 1, 1024, 0,
        "Committed-offset requests (one consumer group each) in flight at once."),
    OPT("kafka.list_offsets_chunk", TB_OPT_INT, list_offsets_chunk, "1000", 1, 100000, 0,
        "Partitions per end/start-offset query; larger lists are split into chunks."),
    OPT("kafka.statistics_interval_ms", TB_OPT_INT, statistics_interval_ms, "5000", 0,
        3600000, 0,
        "Interval of librdkafka statistics (broker latencies), in milliseconds; 0 = off."),
    OPT("kafka.properties", TB_OPT_PROPERTIES, property_count, "[]", 0, 0, 0,
        "Extra librdkafka client properties, each \"name=value\" (TLS, SASL, ...)."),
    /* collector */
    OPT("collector.include_internal_topics", TB_OPT_BOOL, include_internal_topics, "false", 0,
        0, 0, "Also report internal topics such as __consumer_offsets."),
    OPT("collector.topics_include", TB_OPT_STRLIST, topics_include, "[]", 0, 0, 0,
        "Shell patterns (fnmatch) of topics to report; empty = all topics."),
    OPT("collector.topics_exclude", TB_OPT_STRLIST, topics_exclude, "[]", 0, 0, 0,
        "Shell patterns of topics to leave out; applied after topics_include."),
    OPT("collector.groups_include", TB_OPT_STRLIST, groups_include, "[]", 0, 0, 0,
        "Shell patterns of consumer groups to report; empty = all groups."),
    OPT("collector.groups_exclude", TB_OPT_STRLIST, groups_exclude, "[]", 0, 0, 0,
        "Shell patterns of consumer groups to leave out; applied after groups_include."),
    OPT("collector.topic_delete_confirm_cycles", TB_OPT_INT, topic_delete_confirm_cycles, "2",
        1, 100, 0, "Consecutive cycles a topic must be absent before it is reported deleted."),
    OPT("collector.group_delete_confirm_cycles", TB_OPT_INT, group_delete_confirm_cycles, "2",
        1, 100, 0, "Consecutive cycles a group must be absent before it is reported deleted."),
    OPT("collector.stale_after_ms", TB_OPT_INT, stale_after_ms, "10000", 100, 86400000, 0,
        "Age of the last good cycle after which /readyz answers 503, in milliseconds; "
        "must exceed kafka.poll_interval_ms."),
    /* canary */
    OPT("canary.enabled", TB_OPT_BOOL, canary_enabled, "false", 0, 0, 0,
        "Run the latency canary: probe messages produced to and consumed back from "
        "canary.topic."),
    OPT("canary.topic", TB_OPT_STRING, canary_topic, "\"__takhin_canary\"", 0, 0,
        TB_OPT_NONEMPTY, "Topic the canary writes its probes to and reads them back from."),
    OPT("canary.interval_ms", TB_OPT_INT, canary_interval_ms, "1000", 100, 60000, 0,
        "Time between two rounds of probes (one message per partition), in milliseconds."),
    OPT("canary.lost_after_ms", TB_OPT_INT, canary_lost_after_ms, "5000", 100, 120000, 0,
        "A probe not consumed back within this time is counted lost, in milliseconds."),
    OPT("canary.window_s", TB_OPT_INT, canary_window_s, "60", 10, 3600, 0,
        "Sliding window of the latency percentiles, in seconds."),
    OPT("canary.create_topic", TB_OPT_BOOL, canary_create_topic, "true", 0, 0, 0,
        "Create canary.topic when it does not exist."),
    OPT("canary.partitions", TB_OPT_INT, canary_partitions, "0", 0, 10000, 0,
        "Partitions of a canary topic the bridge creates; 0 = one per broker."),
    OPT("canary.replication_factor", TB_OPT_INT, canary_replication_factor, "0", 0, 32767, 0,
        "Replication factor of a canary topic the bridge creates; 0 = the broker default."),
    /* pod */
    OPT("pod.log_dirs", TB_OPT_STRLIST, pod_log_dirs, "[]", 0, 0, 0,
        "Broker log directories mounted in the bridge (absolute paths); empty = no sizes."),
    OPT("pod.broker_port", TB_OPT_INT, pod_broker_port, "0", 0, 65535, 0,
        "Broker listener port whose established connections are counted; 0 = off."),
    OPT("pod.process_match", TB_OPT_STRING, pod_process_match, "\"\"", 0, 0, 0,
        "Substring of the broker's command line; \"\" = report the bridge's own process."),
    OPT("pod.proc_root", TB_OPT_STRING, pod_proc_root, "\"/proc\"", 0, 0,
        TB_OPT_NONEMPTY | TB_OPT_PATH, "Where procfs is mounted (tests point it at fixtures)."),
    /* server */
    OPT("server.address", TB_OPT_STRING, server_address, "\"0.0.0.0\"", 0, 0,
        TB_OPT_NONEMPTY, "Address (or interface name) to listen on for WebSocket and HTTP."),
    OPT("server.port", TB_OPT_INT, server_port, "8080", 0, 65535, 0,
        "TCP port to listen on; 0 = any free port (tests)."),
    OPT("server.max_clients", TB_OPT_INT, max_clients, "10000", 1, 1000000, 0,
        "Maximum simultaneous WebSocket clients; further connections are refused."),
    OPT("server.max_message_bytes", TB_OPT_INT, max_message_bytes, "4096", 64, 1048576, 0,
        "Largest message accepted from a client, in bytes; larger closes the connection."),
    OPT("server.client_messages_per_second", TB_OPT_INT, client_messages_per_second, "20", 1,
        100000, 0, "Sustained rate of messages accepted from one client, per second."),
    OPT("server.client_messages_burst", TB_OPT_INT, client_messages_burst, "40", 1, 100000, 0,
        "Burst of client messages allowed above the rate (token bucket depth)."),
    OPT("server.max_queued_events", TB_OPT_INT, max_queued_events, "1024", 1, 1000000, 0,
        "Outgoing messages queued for one slow client before it is disconnected."),
    OPT("server.ping_interval_s", TB_OPT_INT, ping_interval_s, "20", 1, 3600, 0,
        "Interval of WebSocket ping frames to each client, in seconds."),
    OPT("server.idle_timeout_s", TB_OPT_INT, idle_timeout_s, "45", 2, 7200, 0,
        "Close a client silent for this long (no pong or message), in seconds; "
        "must exceed server.ping_interval_s."),
    OPT("server.allowed_origins", TB_OPT_STRLIST, allowed_origins, "[]", 0, 0, 0,
        "Origin header values accepted on WebSocket upgrades; empty = any origin."),
    OPT("server.tls_cert_file", TB_OPT_STRING, tls_cert_file, "\"\"", 0, 0, TB_OPT_PATH,
        "PEM certificate chain for wss:// and https://; \"\" = plain ws:// and http://."),
    OPT("server.tls_key_file", TB_OPT_STRING, tls_key_file, "\"\"", 0, 0, TB_OPT_PATH,
        "PEM private key of server.tls_cert_file; set both or neither."),
    OPT("server.metrics_require_auth", TB_OPT_BOOL, metrics_require_auth, "false", 0, 0, 0,
        "Require an API key on GET /metrics (when keys are configured)."),
    OPT("server.shutdown_timeout_ms", TB_OPT_INT, shutdown_timeout_ms, "5000", 0, 600000, 0,
        "On SIGTERM, time allowed to close clients gracefully, in milliseconds."),
    /* auth */
    OPT("auth.api_keys", TB_OPT_STRLIST, api_keys, "[]", 0, 0, TB_OPT_SECRET,
        "API keys accepted from clients; no keys at all = authentication disabled."),
    OPT("auth.api_keys_file", TB_OPT_STRING, api_keys_file, "\"\"", 0, 0, TB_OPT_PATH,
        "File with more API keys, one per line ('#' comments); \"\" = none."),
    /* log */
    OPT("log.level", TB_OPT_STRING, log_level, "\"info\"", 0, 0, TB_OPT_NONEMPTY,
        "Least severe level logged: debug, info, warn or error."),
};

#define OPTION_COUNT (sizeof(option_table) / sizeof(option_table[0]))

static const char *const group_names[] = {"kafka", "collector", "canary", "pod",
                                           "server",  "auth",      "log"};
#define GROUP_COUNT (sizeof(group_names) / sizeof(group_names[0]))

const struct tb_option *tb_config_options(size_t *count)
{
    if (count)
        *count = OPTION_COUNT;
    return option_table;
}

/* ------------------------------------------------------------------------------------ */
/* small helpers                                                                        */

static void *field_ptr(struct tb_config *cfg, const struct tb_option *o)
{
    return (char *)cfg + o->offset;
}

static const void *field_cptr(const struct tb_config *cfg, const struct tb_option *o)
{
    return (const char *)cfg + o->offset;
}

static const char *leaf_of(const char *path)
{
    const char *dot = strchr(path, '.');
    return dot ? dot + 1 : path;
}

/* true if option @o belongs to group @g. */
static bool in_group(const struct tb_option *o, const char *g)
{
    size_t n = strlen(g);
    return strncmp(o->path, g, n) == 0 && o->path[n] == '.';
}

static int group_index(const char *name)
{
    for (size_t i = 0; i < GROUP_COUNT; i++)
        if (strcmp(group_names[i], name) == 0)
            return (int)i;
    return -1;
}

static const struct tb_option *find_option(const char *group, const char *leaf)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (in_group(&option_table[i], group) && strcmp(leaf_of(option_table[i].path), leaf) == 0)
            return &option_table[i];
    return NULL;
}

static size_t option_index(size_t offset)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (option_table[i].offset == offset)
            return i;
    abort(); /* internal: every field used here has a table entry */
}

static void wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void strlist_clear(struct tb_strlist *l, bool secret)
{
    for (size_t i = 0; i < l->count; i++) {
        if (secret)
            wipe_free(l->items[i]);
        else
            free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

static bool strlist_contains(const struct tb_strlist *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->count; i++)
        if (strlen(l->items[i]) == len && memcmp(l->items[i], s, len) == 0)
            return true;
    return false;
}

/* Appends a copy of s[0..len). Returns 0 or -ENOMEM. */
static int strlist_push(struct tb_strlist *l, const char *s, size_t len)
{
    char *copy = strndup(s, len);
    if (!copy)
        return -ENOMEM;
    char **items = realloc(l->items, (l->count + 1) * sizeof(*items));
    if (!items) {
        free(copy);
        return -ENOMEM;
    }
    items[l->count++] = copy;
    l->items = items;
    return 0;
}

static void properties_clear(struct tb_config *cfg)
{
    for (size_t i = 0; i < cfg->property_count; i++) {
        free(cfg->properties[i].name);
        wipe_free(cfg->properties[i].value);
    }
    free(cfg->properties);
    cfg->properties = NULL;
    cfg->property_count = 0;
}

/* Releases whatever option @o holds in @cfg and leaves the field empty. */
static void field_clear(struct tb_config *cfg, const struct tb_option *o)
{
    void *p = field_ptr(cfg, o);
    switch (o->type) {
    case TB_OPT_STRING: {
        char **s = p;
        if (o->flags & TB_OPT_SECRET)
            wipe_free(*s);
        else
            free(*s);
        *s = NULL;
        break;
    }
    case TB_OPT_STRLIST:
        strlist_clear(p, (o->flags & TB_OPT_SECRET) != 0);
        break;
    case TB_OPT_PROPERTIES:
        properties_clear(cfg);
        break;
    case TB_OPT_INT:
    case TB_OPT_BOOL:
        break;
    }
}

void tb_config_free(struct tb_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < OPTION_COUNT; i++)
        field_clear(cfg, &option_table[i]);
    free(cfg->source_path);
    free(cfg);
}

bool tb_config_property_is_secret(const char *name)
{
    static const char suffix[] = ".location";
    if (!name)
        return false;
    size_t n = strlen(name);
    if (n >= sizeof(suffix) - 1 && strcasecmp(name + n - (sizeof(suffix) - 1), suffix) == 0)
        return false; /* a path to a secret, not the secret */
    return strcasestr(name, "password") || strcasestr(name, "secret") || strcasestr(name, "key") ||
           /* may carry client credentials in its extensions */
           strcasecmp(name, "sasl.oauthbearer.config") == 0;
}

/* ------------------------------------------------------------------------------------ */
/* the loader                                                                           */

/* A source file split into lines, for the libconfig 1.5 corrections. */
struct srcfile {
    char *raw;    /* the name libconfig reports (an @include'd name is relative) */
    char *name;   /* resolved against the config's directory; used in messages */
    char *text;   /* owned; lines point into it */
    char **lines; /* lines[0] is line 1 */
    size_t count; /* 0 also when the file could not be read */
};

struct loader {
    const char *path;   /* as given to tb_config_load() */
    char *dir;          /* absolute directory of @path; owned */
    struct tb_config *cfg;
    bool defaults;      /* converting default_str values: no source text */
    const config_setting_t *seen[OPTION_COUNT]; /* setting of each option, if in the file */
    const config_setting_t *groups[GROUP_COUNT];
    struct srcfile *files;
    size_t nfiles;
    char *err;
    size_t errlen;
};

static int failf(struct loader *ld, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int failf(struct loader *ld, const char *file, unsigned line, const char *fmt, ...)
{
    if (!ld->err || ld->errlen == 0)
        return -EINVAL;
    int n = snprintf(ld->err, ld->errlen, "%s:%u: ", file, line);
    if (n >= 0 && (size_t)n < ld->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static int fail_nomem(struct loader *ld)
{
    if (ld->err && ld->errlen)
        snprintf(ld->err, ld->errlen, "%s: out of memory", ld->path);
    return -ENOMEM;
}

/*
 * The source file called @raw by libconfig (NULL = the main file): its lines, read on
 * first use. libconfig names the main file as given and an @include'd file as written
 * in the directive, relative to the include directory (the config's directory).
 */
static const struct srcfile *source_of(struct loader *ld, const char *raw)
{
    if (!raw)
        raw = ld->path;
    for (size_t i = 0; i < ld->nfiles; i++)
        if (strcmp(ld->files[i].raw, raw) == 0)
            return &ld->files[i];
    struct srcfile *files = realloc(ld->files, (ld->nfiles + 1) * sizeof(*files));
    if (!files)
        return NULL;
    ld->files = files;
    struct srcfile *sf = &files[ld->nfiles];
    memset(sf, 0, sizeof(*sf));
    sf->raw = strdup(raw);
    if (strcmp(raw, ld->path) == 0 || raw[0] == '/')
        sf->name = strdup(raw);
    else if (asprintf(&sf->name, "%s/%s", ld->dir, raw) < 0)
        sf->name = NULL;
    if (!sf->raw || !sf->name) {
        free(sf->raw);
        free(sf->name);
        return NULL;
    }
    ld->nfiles++;

    FILE *f = fopen(sf->name, "re");
    if (!f)
        return sf;
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (len + got + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            while (ncap < len + got + 1)
                ncap *= 2;
            char *t = realloc(sf->text, ncap);
            if (!t)
                break;
            sf->text = t;
            cap = ncap;
        }
        memcpy(sf->text + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (!sf->text)
        return sf;
    sf->text[len] = '\0';
    size_t nl = 1;
    for (size_t i = 0; i < len; i++)
        nl += sf->text[i] == '\n';
    sf->lines = calloc(nl, sizeof(*sf->lines));
    if (!sf->lines)
        return sf;
    char *p = sf->text;
    for (;;) {
        sf->lines[sf->count++] = p;
        char *e = strchr(p, '\n');
        if (!e)
            break;
        *e = '\0';
        p = e + 1;
    }
    return sf;
}

/* The file to name in a message about setting @s. */
static const char *setting_file(struct loader *ld, const config_setting_t *s)
{
    if (ld->defaults)
        return "<built-in>";
    const char *raw = config_setting_source_file(s);
    const struct srcfile *sf = source_of(ld, raw);
    return sf ? sf->name : raw ? raw : ld->path;
}

static const char *source_line_text(struct loader *ld, const config_setting_t *s, unsigned line)
{
    if (ld->defaults || line == 0)
        return NULL;
    const struct srcfile *sf = source_of(ld, config_setting_source_file(s));
    if (!sf || line > sf->count)
        return NULL;
    return sf->lines[line - 1];
}

static const char *skip_blank(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\f' || *p == '\v')
        p++;
    return p;
}

static bool is_element(const config_setting_t *s)
{
    const config_setting_t *parent = config_setting_parent(s);
    return parent && !config_setting_is_group(parent);
}

/* The line of setting @s; for an array/list element, corrected as described on top. */
static unsigned setting_line(struct loader *ld, const config_setting_t *s)
{
    unsigned line = config_setting_source_line(s);
    if (!is_element(s) || ld->defaults)
        return line;
    const char *text = source_line_text(ld, s, line);
    if (!text)
        return line;
    const char *p = skip_blank(text);
    if (*p != ']' && *p != ')' && *p != ',')
        return line;
    unsigned floor = config_setting_source_line(config_setting_parent(s));
    for (unsigned l = line - 1; l >= 1 && l >= floor; l--) {
        const char *t = source_line_text(ld, s, l);
        if (!t)
            break;
        p = skip_blank(t);
        if (*p == '\0' || *p == '#' || (p[0] == '/' && p[1] == '/'))
            continue;
        return l;
    }
    return line;
}

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '*';
}

/*
 * Re-reads the integer literal of setting @s ("name = 123" / "name: 0x7b") from its
 * source line. Returns true if a literal was found: *value receives it, *overflow is set
 * if it does not fit in a long long, and @lit (size @litlen) the literal as written.
 */
static bool source_int(struct loader *ld, const config_setting_t *s, long long *value,
                       bool *overflow, char *lit, size_t litlen)
{
    const char *text = source_line_text(ld, s, config_setting_source_line(s));
    const char *name = config_setting_name(s);
    if (!text || !name)
        return false;
    size_t nlen = strlen(name);
    for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
        if ((p > text && is_name_char(p[-1])) || is_name_char(p[nlen]))
            continue;
        const char *q = skip_blank(p + nlen);
        if (*q != '=' && *q != ':')
            continue;
        q = skip_blank(q + 1);
        const char *start = q;
        if (*q == '-' || *q == '+')
            q++;
        int base = 10;
        if (q[0] == '0' && (q[1] == 'x' || q[1] == 'X')) {
            base = 16;
            q += 2;
        }
        const char *digits = q;
        while (base == 16 ? isxdigit((unsigned char)*q) : isdigit((unsigned char)*q))
            q++;
        if (q == digits)
            return false;
        size_t n = (size_t)(q - start);
        if (n >= litlen)
            n = litlen - 1;
        memcpy(lit, start, n);
        lit[n] = '\0';
        errno = 0;
        *value = strtoll(start, NULL, base);
        *overflow = errno == ERANGE;
        return true;
    }
    return false;
}

/* Case-insensitive optimal-string-alignment distance; large when a name is too long. */
static size_t edit_distance(const char *a, const char *b)
{
    enum { MAXLEN = 96 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXLEN || lb >= MAXLEN)
        return SIZE_MAX;
    size_t rows[3][MAXLEN + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t cost = ca == cb ? 0 : 1;
            size_t best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (prev[j - 1] + cost < best)
                best = prev[j - 1] + cost;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

static bool prefix_related(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t n = la < lb ? la : lb;
    return n >= 4 && strncasecmp(a, b, n) == 0;
}

/*
 * Best known name for an unknown setting @name inside @group (NULL at the root), or
 * NULL. Scores: the same leaf in another group 0, then edit distance <= 2 on the full
 * path, then a shared prefix (one leaf begins the other) within the group, 3.
 */
static const char *suggest(const char *group, const char *name)
{
    const char *best = NULL;
    size_t best_score = SIZE_MAX;
    char full[256];
    if (group)
        snprintf(full, sizeof(full), "%s.%s", group, name);
    else
        snprintf(full, sizeof(full), "%s", name);
    if (!group) {
        for (size_t i = 0; i < GROUP_COUNT; i++) {
            size_t d = edit_distance(name, group_names[i]);
            if (d <= 2 && d < best_score) {
                best = group_names[i];
                best_score = d;
            }
        }
    }
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct tb_option *o = &option_table[i];
        const char *leaf = leaf_of(o->path);
        size_t score = SIZE_MAX;
        if (strcasecmp(leaf, name) == 0)
            score = 0;
        else {
            size_t d = edit_distance(full, o->path);
            if (d <= 2)
                score = d;
            else if (group && in_group(o, group) && prefix_related(leaf, name))
                score = 3;
        }
        if (score < best_score) {
            best = o->path;
            best_score = score;
        }
    }
    return best;
}

static int fail_unknown(struct loader *ld, const config_setting_t *s, const char *group)
{
    const char *name = config_setting_name(s);
    const char *hint = suggest(group, name);
    const char *sep = group ? "." : "";
    if (!group)
        group = "";
    if (hint)
        return failf(ld, setting_file(ld, s), setting_line(ld, s),
                     "unknown setting '%s%s%s' (did you mean '%s'?)", group, sep, name, hint);
    return failf(ld, setting_file(ld, s), setting_line(ld, s), "unknown setting '%s%s%s'",
                 group, sep, name);
}

/* Why @key (length @len) cannot be an API key, or NULL if it can. */
static const char *api_key_problem(const char *key, size_t len)
{
    if (len == 0)
        return "empty";
    if (len > MAX_API_KEY_BYTES)
        return "longer than 4096 bytes";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x20 || c == 0x7f)
            return "contains a control character";
        if (c == ' ')
            return "contains a space";
    }
    if (len == sizeof(REDACTED) - 1 && memcmp(key, REDACTED, len) == 0)
        return "\"" REDACTED "\" is the placeholder written by --dump-config";
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* converters: libconfig setting -> field (also used for the defaults)                  */

static int convert_int(struct loader *ld, const struct tb_option *o, const config_setting_t *s)
{
    int type = config_setting_type(s);
    if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64)
        return failf(ld, setting_file(ld, s), setting_line(ld, s), "%s: expected an integer",
                     o->path);
    long long v = config_setting_get_int64(s);
    char shown[48];
    snprintf(shown, sizeof(shown), "%lld", v);
    bool overflow = false;
    if (type == CONFIG_TYPE_INT) {
        long long written;
        char lit[48];
        if (source_int(ld, s, &written, &overflow, lit, sizeof(lit)) && (overflow || written != v)) {
            v = written;
            snprintf(shown, sizeof(shown), "%s", lit);
        }
    }
    if (overflow || v < o->min || v > o->max)
        return failf(ld, setting_file(ld, s), setting_line(ld, s),
                     "%s: %s is out of range [%lld, %lld]", o->path, shown, o->min, o->max);
    *(int *)field_ptr(ld->cfg, o) = (int)v;
    return 0;
}

static int convert_bool(struct loader *ld, const struct tb_option *o, const config_setting_t *s)
{
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return failf(ld, setting_file(ld, s), setting_line(ld, s),
                     "%s: expected a boolean (true or false)", o->path);
    *(bool *)field_ptr(ld->cfg, o) = config_setting_get_bool(s) != 0;
    return 0;
}

/* Kafka's rule for topic names. */
static bool valid_topic_name(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 249 || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)v[i]) && v[i] != '.' && v[i] != '_' && v[i] != '-')
            return false;
    return true;
}

static int convert_string(struct loader *ld, const struct tb_option *o, const config_setting_t *s)
{
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return failf(ld, setting_file(ld, s), setting_line(ld, s), "%s: expected a string",
                     o->path);
    const char *v = config_setting_get_string(s);
    if ((o->flags & TB_OPT_NONEMPTY) && v[0] == '\0')
        return failf(ld, setting_file(ld, s), setting_line(ld, s), "%s: must not be empty",
                     o->path);
    if (o->offset == offsetof(struct tb_config, log_level) && tb_log_level_parse(v) < 0)
        return failf(ld, setting_file(ld, s), setting_line(ld, s),
                     "%s: '%s' is not one of debug, info, warn, error", o->path, v);
    if (o->offset == offsetof(struct tb_config, canary_topic) && !valid_topic_name(v))
        return failf(ld, setting_file(ld, s), setting_line(ld, s),
                     "%s: '%s' is not a valid topic name (letters, digits, '.', '_', '-'; at "
                     "most 249 characters; not \".\" or \"..\")",
                     o->path, v);
    char *copy = strdup(v);
    if (!copy)
        return fail_nomem(ld);
    field_clear(ld->cfg, o);
    *(char **)field_ptr(ld->cfg, o) = copy;
    return 0;
}

static bool is_list(const config_setting_t *s)
{
    return config_setting_is_array(s) || config_setting_is_list(s);
}

static int convert_strlist(struct loader *ld, const struct tb_option *o, const config_setting_t *s)
{
    if (!is_list(s))
        return failf(ld, setting_file(ld, s), setting_line(ld, s),
                     "%s: expected a list of strings", o->path);
    bool api_keys = o->offset == offsetof(struct tb_config, api_keys);
    struct tb_strlist list = {0, NULL};
    int n = config_setting_length(s);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            rc = failf(ld, setting_file(ld, e), setting_line(ld, e),
                       "%s: expected a list of strings", o->path);
            goto fail;
        }
        const char *v = config_setting_get_string(e);
        size_t len = strlen(v);
        if (api_keys) {
            const char *why = api_key_problem(v, len);
            if (why) {
                rc = failf(ld, setting_file(ld, e), setting_line(ld, e),
                           "%s: invalid API key (%s)", o->path, why);
                goto fail;
            }
            if (strlist_contains(&list, v, len))
                continue;
        } else if (len == 0) {
            rc = failf(ld, setting_file(ld, e), setting_line(ld, e),
                       "%s: empty string in list", o->path);
            goto fail;
        }
        if (o->offset == offsetof(struct tb_config, pod_log_dirs) && v[0] != '/') {
            rc = failf(ld, setting_file(ld, e), setting_line(ld, e),
                       "%s: '%s' is not an absolute path", o->path, v);
            goto fail;
        }
        if (strlist_push(&list, v, len) != 0) {
            rc = fail_nomem(ld);
            goto fail;
        }
    }
    field_clear(ld->cfg, o);
    *(struct tb_strlist *)field_ptr(ld->cfg, o) = list;
    return 0;
fail:
    strlist_clear(&list, api_keys);
    return rc;
}

/* Properties the bridge sets itself on its clients. */
static const struct {
    const char *name;
    const char *why;
} reserved_properties[] = {
    {"bootstrap.servers", "is set by the bridge; use kafka.bootstrap_servers"},
    {"metadata.broker.list", "is set by the bridge; use kafka.bootstrap_servers"},
    {"statistics.interval.ms", "is set by the bridge; use kafka.statistics_interval_ms"},
    {"group.id", "is set by the bridge and cannot be overridden"},
    {"isolation.level", "is set by the bridge (read_uncommitted) and cannot be overridden"},
    {"enable.auto.commit", "is set by the bridge (false) and cannot be overridden"},
    {"auto.commit.enable", "is set by the bridge (false) and cannot be overridden"},
};

static int convert_properties(struct loader *ld, const struct tb_option *o,
                              const config_setting_t *s)
{
    const char *expect = "expected a list of \"name=value\" strings";
    if (!is_list(s))
        return failf(ld, setting_file(ld, s), setting_line(ld, s), "%s: %s", o->path, expect);
    int n = config_setting_length(s);
    struct tb_kafka_property *props = NULL;
    size_t count = 0;
    rd_kafka_conf_t *conf = NULL;
    int rc = 0;
    if (n > 0) {
        props = calloc((size_t)n, sizeof(*props));
        conf = rd_kafka_conf_new();
        if (!props || !conf) {
            rc = fail_nomem(ld);
            goto fail;
        }
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        const char *file = setting_file(ld, e);
        unsigned line = setting_line(ld, e);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            rc = failf(ld, file, line, "%s: %s", o->path, expect);
            goto fail;
        }
        const char *v = config_setting_get_string(e);
        const char *eq = strchr(v, '=');
        if (!eq) { /* no '=': do not echo, it may be a mangled secret */
            rc = failf(ld, file, line, "%s: element %d is not of the form \"name=value\"",
                       o->path, i + 1);
            goto fail;
        }
        const char *b = skip_blank(v), *end = eq;
        while (end > b && isspace((unsigned char)end[-1]))
            end--;
        if (end == b) {
            rc = failf(ld, file, line, "%s: element %d has an empty property name", o->path,
                       i + 1);
            goto fail;
        }
        struct tb_kafka_property *p = &props[count];
        p->name = strndup(b, (size_t)(end - b));
        p->value = strdup(eq + 1);
        p->line = (int)line;
        if (!p->name || !p->value) {
            free(p->name);
            wipe_free(p->value);
            rc = fail_nomem(ld);
            goto fail;
        }
        count++;
        for (size_t r = 0; r < sizeof(reserved_properties) / sizeof(reserved_properties[0]); r++)
            if (strcmp(p->name, reserved_properties[r].name) == 0) {
                rc = failf(ld, file, line, "%s: '%s' %s", o->path, p->name,
                           reserved_properties[r].why);
                goto fail;
            }
        for (size_t k = 0; k + 1 < count; k++)
            if (strcmp(props[k].name, p->name) == 0) {
                rc = failf(ld, file, line, "%s: '%s' is set twice (first on line %d)", o->path,
                           p->name, props[k].line);
                goto fail;
            }
        bool secret = tb_config_property_is_secret(p->name);
        if (secret && strcmp(p->value, REDACTED) == 0) {
            rc = failf(ld, file, line,
                       "%s: '%s' holds the placeholder \"" REDACTED "\" written by "
                       "--dump-config; set the real value",
                       o->path, p->name);
            goto fail;
        }
        char errstr[512];
        if (rd_kafka_conf_set(conf, p->name, p->value, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            if (secret && p->value[0] && strstr(errstr, p->value))
                rc = failf(ld, file, line, "%s: invalid value for '%s' (not shown: secret)",
                           o->path, p->name);
            else
                rc = failf(ld, file, line, "%s: %s", o->path, errstr);
            goto fail;
        }
    }
    if (conf)
        rd_kafka_conf_destroy(conf);
    properties_clear(ld->cfg);
    ld->cfg->properties = props;
    ld->cfg->property_count = count;
    return 0;
fail:
    if (conf)
        rd_kafka_conf_destroy(conf);
    for (size_t k = 0; k < count; k++) {
        free(props[k].name);
        wipe_free(props[k].value);
    }
    free(props);
    return rc;
}

static int convert(struct loader *ld, const struct tb_option *o, const config_setting_t *s)
{
    switch (o->type) {
    case TB_OPT_INT:
        return convert_int(ld, o, s);
    case TB_OPT_BOOL:
        return convert_bool(ld, o, s);
    case TB_OPT_STRING:
        return convert_string(ld, o, s);
    case TB_OPT_STRLIST:
        return convert_strlist(ld, o, s);
    case TB_OPT_PROPERTIES:
        return convert_properties(ld, o, s);
    }
    return -EINVAL;
}

/* Stores every default_str, parsed by libconfig, through convert(). */
static int apply_defaults(struct loader *ld)
{
    int rc = 0;
    ld->defaults = true;
    for (size_t i = 0; i < OPTION_COUNT && rc == 0; i++) {
        const struct tb_option *o = &option_table[i];
        if (!o->default_str)
            continue;
        char text[256];
        snprintf(text, sizeof(text), "v = %s;", o->default_str);
        config_t lc;
        config_init(&lc);
        config_set_auto_convert(&lc, CONFIG_FALSE);
        if (!config_read_string(&lc, text)) {
            rc = failf(ld, "<built-in>", 1, "%s: bad default %s", o->path, o->default_str);
        } else {
            rc = convert(ld, o, config_lookup(&lc, "v"));
        }
        config_destroy(&lc);
    }
    ld->defaults = false;
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* the walk and the checks after it                                                     */

static int walk(struct loader *ld, config_t *lc)
{
    const config_setting_t *root = config_root_setting(lc);
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(root, (unsigned)i);
        const char *gname = config_setting_name(g);
        int gi = group_index(gname);
        if (gi < 0)
            return fail_unknown(ld, g, NULL);
        if (!config_setting_is_group(g))
            return failf(ld, setting_file(ld, g), setting_line(ld, g),
                         "%s: expected a group (%s = { ... };)", gname, gname);
        ld->groups[gi] = g;
        int m = config_setting_length(g);
        for (int j = 0; j < m; j++) {
            const config_setting_t *s = config_setting_get_elem(g, (unsigned)j);
            const struct tb_option *o = find_option(gname, config_setting_name(s));
            if (!o)
                return fail_unknown(ld, s, gname);
            int rc = convert(ld, o, s);
            if (rc != 0)
                return rc;
            ld->seen[o - option_table] = s;
        }
    }
    return 0;
}

static int check_required(struct loader *ld)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct tb_option *o = &option_table[i];
        if (!(o->flags & TB_OPT_REQUIRED) || ld->seen[i])
            continue;
        const config_setting_t *g = NULL;
        for (size_t k = 0; k < GROUP_COUNT; k++)
            if (in_group(o, group_names[k]))
                g = ld->groups[k];
        if (g)
            return failf(ld, setting_file(ld, g), setting_line(ld, g),
                         "missing required setting '%s'", o->path);
        return failf(ld, ld->path, 1, "missing required setting '%s'", o->path);
    }
    return 0;
}

/* Makes relative TB_OPT_PATH values absolute, against the config file's directory. */
static int resolve_paths(struct loader *ld)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const struct tb_option *o = &option_table[i];
        if (!(o->flags & TB_OPT_PATH))
            continue;
        char **p = field_ptr(ld->cfg, o);
        if (!*p || (*p)[0] == '\0' || (*p)[0] == '/')
            continue;
        char *abs = NULL;
        size_t dl = strlen(ld->dir);
        const char *sep = dl > 0 && ld->dir[dl - 1] == '/' ? "" : "/";
        if (asprintf(&abs, "%s%s%s", ld->dir, sep, *p) < 0)
            return fail_nomem(ld);
        free(*p);
        *p = abs;
    }
    return 0;
}

/* The setting to blame for option at @offset: its own, else the fallback option's
 * (NULL if neither is in the file). */
static const config_setting_t *blame(struct loader *ld, size_t offset, size_t fallback)
{
    const config_setting_t *s = ld->seen[option_index(offset)];
    return s ? s : ld->seen[option_index(fallback)];
}

/* failf() at setting @s, or at line 1 of the config file when @s is NULL. */
static const char *blame_file(struct loader *ld, const config_setting_t *s)
{
    return s ? setting_file(ld, s) : ld->path;
}

static unsigned blame_line(struct loader *ld, const config_setting_t *s)
{
    return s ? setting_line(ld, s) : 1;
}

static int check_readable(struct loader *ld, size_t offset)
{
    const struct tb_option *o = &option_table[option_index(offset)];
    const char *path = *(char **)field_ptr(ld->cfg, o);
    if (!path || !path[0])
        return 0;
    FILE *f = fopen(path, "re");
    if (!f) {
        const config_setting_t *s = ld->seen[o - option_table];
        return failf(ld, blame_file(ld, s), blame_line(ld, s), "%s: cannot read '%s': %s",
                     o->path, path, strerror(errno));
    }
    fclose(f);
    return 0;
}

/* a must exceed b; both are int options. */
static int check_greater(struct loader *ld, size_t a, size_t b)
{
    const struct tb_option *oa = &option_table[option_index(a)];
    const struct tb_option *ob = &option_table[option_index(b)];
    int va = *(int *)field_ptr(ld->cfg, oa), vb = *(int *)field_ptr(ld->cfg, ob);
    if (va > vb)
        return 0;
    const config_setting_t *s = blame(ld, a, b);
    return failf(ld, blame_file(ld, s), blame_line(ld, s),
                 "%s (%d) must be greater than %s (%d)", oa->path, va, ob->path, vb);
}

static int check_cross(struct loader *ld)
{
    const struct tb_config *cfg = ld->cfg;
    bool cert = cfg->tls_cert_file[0] != '\0', key = cfg->tls_key_file[0] != '\0';
    if (cert != key) {
        size_t set = cert ? offsetof(struct tb_config, tls_cert_file)
                          : offsetof(struct tb_config, tls_key_file);
        const config_setting_t *s = ld->seen[option_index(set)];
        return failf(ld, blame_file(ld, s), blame_line(ld, s),
                     "%s is set but %s is not; set both or neither",
                     cert ? "server.tls_cert_file" : "server.tls_key_file",
                     cert ? "server.tls_key_file" : "server.tls_cert_file");
    }
    int rc = check_readable(ld, offsetof(struct tb_config, tls_cert_file));
    if (rc == 0)
        rc = check_readable(ld, offsetof(struct tb_config, tls_key_file));
    if (rc == 0)
        rc = check_greater(ld, offsetof(struct tb_config, stale_after_ms),
                           offsetof(struct tb_config, poll_interval_ms));
    if (rc == 0)
        rc = check_greater(ld, offsetof(struct tb_config, idle_timeout_s),
                           offsetof(struct tb_config, ping_interval_s));
    return rc;
}

/* Reads auth.api_keys_file and merges its keys into cfg->api_keys (deduplicated). */
static int read_keys_file(struct loader *ld)
{
    struct tb_config *cfg = ld->cfg;
    const char *kpath = cfg->api_keys_file;
    if (!kpath || !kpath[0])
        return 0;
    const config_setting_t *s = ld->seen[option_index(offsetof(struct tb_config, api_keys_file))];
    FILE *f = fopen(kpath, "re");
    if (!f)
        return failf(ld, blame_file(ld, s), blame_line(ld, s),
                     "auth.api_keys_file: cannot read '%s': %s", kpath, strerror(errno));
    char *buf = NULL;
    size_t cap = 0, keys = 0;
    unsigned lineno = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        ssize_t got = getline(&buf, &cap, f);
        if (got < 0)
            break;
        lineno++;
        const char *k = buf;
        size_t len = (size_t)got;
        while (len > 0 && isspace((unsigned char)k[len - 1]))
            len--;
        while (len > 0 && isspace((unsigned char)*k)) {
            k++;
            len--;
        }
        if (len == 0 || k[0] == '#')
            continue;
        const char *why = api_key_problem(k, len);
        if (why) {
            rc = failf(ld, kpath, lineno, "invalid API key (%s)", why);
            goto out;
        }
        keys++;
        if (!strlist_contains(&cfg->api_keys, k, len) && strlist_push(&cfg->api_keys, k, len)) {
            rc = fail_nomem(ld);
            goto out;
        }
    }
    if (ferror(f)) {
        int e = errno ? errno : EIO;
        rc = failf(ld, blame_file(ld, s), blame_line(ld, s),
                   "auth.api_keys_file: cannot read '%s': %s", kpath, strerror(e));
    } else if (keys == 0) {
        /* an empty secret mount must not silently turn authentication off */
        rc = failf(ld, blame_file(ld, s), blame_line(ld, s),
                   "auth.api_keys_file: '%s' contains no API keys", kpath);
    }
out:
    if (buf)
        explicit_bzero(buf, cap);
    free(buf);
    fclose(f);
    return rc;
}

/* Absolute directory of @path, or NULL (ENOMEM / no cwd). */
static char *config_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (path[0] == '/')
        return strndup(path, slash == path ? 1 : (size_t)(slash - path));
    char *cwd = getcwd(NULL, 0);
    if (!cwd)
        return NULL;
    char *dir = NULL;
    int n = slash ? asprintf(&dir, "%s/%.*s", cwd, (int)(slash - path), path)
                  : asprintf(&dir, "%s", cwd);
    free(cwd);
    return n < 0 ? NULL : dir;
}

int tb_config_load(const char *path, struct tb_config **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (out)
        *out = NULL;
    if (!path || !out) {
        if (err && errlen)
            snprintf(err, errlen, "tb_config_load: invalid arguments");
        return -EINVAL;
    }
    struct loader ld = {.path = path, .err = err, .errlen = errlen};
    config_t lc;
    config_init(&lc);
    config_set_auto_convert(&lc, CONFIG_FALSE);
    int rc;

    /* libconfig reports an unreadable file as "file I/O error" without errno */
    FILE *probe = fopen(path, "re");
    struct stat st;
    int e = !probe ? errno : fstat(fileno(probe), &st) != 0 ? errno
                           : S_ISDIR(st.st_mode)                ? EISDIR
                                                                : 0;
    if (probe)
        fclose(probe);
    if (e) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
        rc = -e;
        goto fail;
    }

    ld.dir = config_dir(path);
    ld.cfg = calloc(1, sizeof(*ld.cfg));
    if (!ld.dir || !ld.cfg || !(ld.cfg->source_path = strdup(path))) {
        rc = fail_nomem(&ld);
        goto fail;
    }
    if ((rc = apply_defaults(&ld)) != 0)
        goto fail;

    config_set_include_dir(&lc, ld.dir);
    if (!config_read_file(&lc, path)) {
        const struct srcfile *sf = source_of(&ld, config_error_file(&lc));
        const char *efile = sf ? sf->name : path;
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO && config_error_line(&lc) == 0)
            rc = failf(&ld, efile, 1, "cannot read: %s", config_error_text(&lc));
        else
            rc = failf(&ld, efile, (unsigned)config_error_line(&lc), "%s",
                       config_error_text(&lc));
        goto fail;
    }
    if ((rc = walk(&ld, &lc)) != 0 || (rc = check_required(&ld)) != 0 ||
        (rc = resolve_paths(&ld)) != 0 || (rc = check_cross(&ld)) != 0 ||
        (rc = read_keys_file(&ld)) != 0)
        goto fail;

    *out = ld.cfg;
    ld.cfg = NULL;
    rc = 0;
fail:
    config_destroy(&lc);
    tb_config_free(ld.cfg);
    for (size_t i = 0; i < ld.nfiles; i++) {
        free(ld.files[i].raw);
        free(ld.files[i].name);
        free(ld.files[i].text);
        free(ld.files[i].lines);
    }
    free(ld.files);
    free(ld.dir);
    return rc;
}

/* ------------------------------------------------------------------------------------ */
/* dump                                                                                 */

static void put_escaped(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\f':
            fputs("\\f", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\x%02x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

/* Returns 0 or -ENOMEM. */
static int dump_value(const struct tb_config *cfg, const struct tb_option *o, FILE *out)
{
    const void *p = field_cptr(cfg, o);
    bool secret = (o->flags & TB_OPT_SECRET) != 0;
    switch (o->type) {
    case TB_OPT_INT:
        fprintf(out, "%d", *(const int *)p);
        break;
    case TB_OPT_BOOL:
        fputs(*(const bool *)p ? "true" : "false", out);
        break;
    case TB_OPT_STRING: {
        const char *s = *(char *const *)p;
        put_escaped(out, secret ? REDACTED : (s ? s : ""));
        break;
    }
    case TB_OPT_STRLIST: {
        const struct tb_strlist *l = p;
        if (l->count == 0) {
            fputs("[]", out);
            break;
        }
        fputs("[\n", out);
        for (size_t i = 0; i < l->count; i++) {
            fputs("    ", out);
            put_escaped(out, secret ? REDACTED : l->items[i]);
            fputs(i + 1 < l->count ? ",\n" : "\n", out);
        }
        fputs("  ]", out);
        break;
    }
    case TB_OPT_PROPERTIES: {
        if (cfg->property_count == 0) {
            fputs("[]", out);
            break;
        }
        fputs("[\n", out);
        for (size_t i = 0; i < cfg->property_count; i++) {
            const struct tb_kafka_property *kp = &cfg->properties[i];
            bool hide = tb_config_property_is_secret(kp->name);
            char *item = NULL;
            if (asprintf(&item, "%s=%s", kp->name, hide ? REDACTED : kp->value) < 0)
                return -ENOMEM;
            fputs("    ", out);
            put_escaped(out, item);
            wipe_free(item);
            fputs(i + 1 < cfg->property_count ? ",\n" : "\n", out);
        }
        fputs("  ]", out);
        break;
    }
    }
    return 0;
}

int tb_config_dump(const struct tb_config *cfg, FILE *out)
{
    if (!cfg || !out)
        return -EINVAL;
    fputs("# takhin-bridge effective configuration", out);
    if (cfg->source_path) {
        fputs(" (from ", out);
        for (const char *p = cfg->source_path; *p; p++)
            fputc((unsigned char)*p < 0x20 ? '?' : *p, out);
        fputc(')', out);
    }
    fputs("\n# Defaults included; secrets are shown as \"" REDACTED "\".\n", out);
    for (size_t g = 0; g < GROUP_COUNT; g++) {
        fprintf(out, "\n%s = {\n", group_names[g]);
        for (size_t i = 0; i < OPTION_COUNT; i++) {
            const struct tb_option *o = &option_table[i];
            if (!in_group(o, group_names[g]))
                continue;
            fprintf(out, "  %s = ", leaf_of(o->path));
            int rc = dump_value(cfg, o, out);
            if (rc != 0)
                return rc;
            fputs(";\n", out);
        }
        fputs("};\n", out);
    }
    if (fflush(out) != 0 || ferror(out))
        return -EIO;
    return 0;
}
