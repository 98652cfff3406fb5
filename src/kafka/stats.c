/*
 * stats.c - librdkafka statistics JSON -> struct tb_client_stats. See
 * include/tb/kafka_stats.h for which fields are read and how they are combined.
 *
 * Pure function of its input: no librdkafka, no global state. Called on the collector
 * thread from the statistics callback (which runs inside rd_kafka_poll()).
 * Integer fields are read with json_object_get_int64(); a missing or non-numeric
 * field counts as 0 (librdkafka always writes them, but a partial document must not
 * crash the bridge).
 */
#include "tb/kafka_stats.h"

#include <errno.h>
#include <string.h>

#include <json-c/json.h>

static int64_t get_i64(struct json_object *obj, const char *key)
{
    struct json_object *v;
    if (!obj || !json_object_object_get_ex(obj, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
        return 0;
    return json_object_get_int64(v);
}

static uint64_t get_u64(struct json_object *obj, const char *key)
{
    int64_t v = get_i64(obj, key);
    return v > 0 ? (uint64_t)v : 0;
}

/* librdkafka's pseudo brokers carry no network traffic of their own. */
static bool is_pseudo_broker(struct json_object *b)
{
    struct json_object *src;
    if (!json_object_object_get_ex(b, "source", &src) || !json_object_is_type(src, json_type_string))
        return false;
    const char *s = json_object_get_string(src);
    return strcmp(s, "internal") == 0 || strcmp(s, "logical") == 0;
}

int tb_stats_parse(const char *json, struct tb_client_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!json)
        return -EINVAL;
    struct json_object *root = json_tokener_parse(json);
    struct json_object *brokers = NULL;
    if (!root || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "brokers", &brokers) ||
        !json_object_is_type(brokers, json_type_object)) {
        json_object_put(root);
        return -EINVAL;
    }

    uint64_t tx_sum = 0;
    int64_t worst_p99 = -1, worst_p50 = 0, worst_p95 = 0;
    json_object_object_foreach(brokers, name, b)
    {
        (void)name;
        if (!json_object_is_type(b, json_type_object))
            continue;
        tx_sum += get_u64(b, "tx");
        out->tx_errors += get_u64(b, "txerrs");
        out->rx_errors += get_u64(b, "rxerrs");
        if (is_pseudo_broker(b))
            continue;
        struct json_object *rtt;
        if (!json_object_object_get_ex(b, "rtt", &rtt) || !json_object_is_type(rtt, json_type_object))
            continue;
        if (get_i64(rtt, "cnt") <= 0)
            continue;
        int64_t p99 = get_i64(rtt, "p99");
        if (p99 > worst_p99) {
            worst_p99 = p99;
            worst_p50 = get_i64(rtt, "p50");
            worst_p95 = get_i64(rtt, "p95");
        }
    }

    struct json_object *tx;
    if (json_object_object_get_ex(root, "tx", &tx) && json_object_is_type(tx, json_type_int))
        out->tx_requests = get_u64(root, "tx");
    else
        out->tx_requests = tx_sum;

    if (worst_p99 >= 0) {
        out->available = true;
        out->rtt_p50_ms = (double)worst_p50 / 1000.0;
        out->rtt_p95_ms = (double)worst_p95 / 1000.0;
        out->rtt_p99_ms = (double)worst_p99 / 1000.0;
    }
    json_object_put(root);
    return 0;
}
