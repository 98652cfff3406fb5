/*
 * request.c - client -> server messages: the JSON request parser and the inbound
 * token bucket. PURE (libc + json-c). See include/tb/ws_internal.h.
 *
 * Parsing is strict (RFC 8259 via JSON_TOKENER_STRICT): NaN, comments, single quotes
 * and trailing garbage are "invalid JSON". Which mistakes close the connection and
 * which only earn an error reply is decided here and documented in docs/protocol.md:
 *   - not JSON / not an object / no string "type" / unknown type -> close 1008;
 *   - a subscribe/unsubscribe whose "data" is not a usable string is NOT a close: the
 *     request is returned with item == NULL and the server replies with an error.
 * Close reasons never echo client data except a sanitized, truncated type name.
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb/ws_internal.h"

/* ---- token bucket ------------------------------------------------------------------ */

void tb_ws_bucket_init(struct tb_ws_bucket *b, int64_t rate_per_s, int64_t burst, int64_t now_ms)
{
    b->rate_per_s = rate_per_s > 0 ? rate_per_s : 1;
    b->burst = burst > 0 ? burst : 1;
    b->milli_tokens = b->burst * 1000;
    b->last_ms = now_ms;
}

bool tb_ws_bucket_take(struct tb_ws_bucket *b, int64_t now_ms)
{
    const int64_t cap = b->burst * 1000;
    if (now_ms > b->last_ms) {
        int64_t elapsed = now_ms - b->last_ms;
        /* rate_per_s tokens/s == rate_per_s milli-tokens/ms; avoid overflow on long gaps */
        if (elapsed >= cap / b->rate_per_s + 1)
            b->milli_tokens = cap;
        else
            b->milli_tokens += elapsed * b->rate_per_s;
        if (b->milli_tokens > cap)
            b->milli_tokens = cap;
        b->last_ms = now_ms;
    }
    if (b->milli_tokens < 1000)
        return false;
    b->milli_tokens -= 1000;
    return true;
}

/* ---- UTF-8 ------------------------------------------------------------------------ */

bool tb_ws_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t n;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates U+D800..U+DFFF */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return false; /* continuation byte, C0/C1 overlong lead, F5..FF */
        }
        if ((size_t)(end - s) < n)
            return false;
        if (s[1] < lo || s[1] > hi)
            return false;
        for (size_t i = 2; i < n; i++)
            if ((s[i] & 0xC0) != 0x80)
                return false;
        s += n;
    }
    return true;
}

/* ---- requests ---------------------------------------------------------------------- */

#define TYPE_ECHO_MAX 64 /* bytes of an unknown type name quoted in the close reason */

static int fail(struct tb_ws_request *out, const char *reason)
{
    out->close_code = TB_WS_CLOSE_POLICY;
    snprintf(out->reason, sizeof(out->reason), "%s", reason);
    return -EINVAL;
}

/* "unknown type: NAME": NAME reduced to printable ASCII (others become '?') and cut
 * at TYPE_ECHO_MAX bytes ("..." appended), so the reason is valid UTF-8, short, and
 * cannot carry control characters into logs. */
static int fail_unknown_type(struct tb_ws_request *out, const char *name, size_t len)
{
    char clean[TYPE_ECHO_MAX + 4];
    size_t n = len < TYPE_ECHO_MAX ? len : TYPE_ECHO_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        clean[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > TYPE_ECHO_MAX) {
        memcpy(clean + n, "...", 3);
        n += 3;
    }
    clean[n] = '\0';
    out->close_code = TB_WS_CLOSE_POLICY;
    snprintf(out->reason, sizeof(out->reason), "unknown type: %s", clean);
    return -EINVAL;
}

static bool only_space(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

static int take_item(struct tb_ws_request *out, json_object *root)
{
    json_object *data = NULL;
    if (!json_object_object_get_ex(root, "data", &data) || !data) {
        out->item_error = "missing \"data\": expected \"topic:<name>\" or \"group:<id>\"";
        return 0;
    }
    if (!json_object_is_type(data, json_type_string)) {
        out->item_error = "\"data\" must be a string \"topic:<name>\" or \"group:<id>\"";
        return 0;
    }
    const char *s = json_object_get_string(data);
    size_t len = (size_t)json_object_get_string_len(data);
    if (memchr(s, '\0', len)) {
        out->item_error = "\"data\" contains a NUL character";
        return 0;
    }
    out->item = strdup(s);
    return out->item ? 0 : -ENOMEM;
}

int tb_ws_parse_request(const char *msg, size_t len, struct tb_ws_request *out)
{
    memset(out, 0, sizeof(*out));
    if (len > (size_t)INT32_MAX - 1)
        return fail(out, "invalid JSON");

    json_tokener *tok = json_tokener_new();
    if (!tok)
        return -ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    /* Parse through the terminating NUL so that a bare top-level number ends. */
    json_object *root = json_tokener_parse_ex(tok, msg, (int)len + 1);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);

    int rc = 0;
    if (jerr != json_tokener_success) {
        rc = fail(out, "invalid JSON");
        goto out;
    }
    /* Anything after the value other than whitespace (including an embedded NUL) is
     * not one JSON document. */
    if (end < len && !only_space(msg + end, len - end)) {
        rc = fail(out, "invalid JSON");
        goto out;
    }
    /* json-c accepts NaN/Infinity even in strict mode: not JSON (RFC 8259). */
    if (json_object_is_type(root, json_type_double) && !isfinite(json_object_get_double(root))) {
        rc = fail(out, "invalid JSON");
        goto out;
    }
    /* root == NULL with success is the JSON literal null */
    if (!root || !json_object_is_type(root, json_type_object)) {
        rc = fail(out, "expected a JSON object");
        goto out;
    }
    json_object *type = NULL;
    if (!json_object_object_get_ex(root, "type", &type) || !type) {
        rc = fail(out, "missing type");
        goto out;
    }
    if (!json_object_is_type(type, json_type_string)) {
        rc = fail(out, "type must be a string");
        goto out;
    }
    const char *t = json_object_get_string(type);
    size_t tlen = (size_t)json_object_get_string_len(type);
    if (tlen == 4 && memcmp(t, "ping", 4) == 0) {
        out->type = TB_WS_REQ_PING; /* "timestamp" is optional and ignored */
    } else if (tlen == 9 && memcmp(t, "subscribe", 9) == 0) {
        out->type = TB_WS_REQ_SUBSCRIBE;
        rc = take_item(out, root);
    } else if (tlen == 11 && memcmp(t, "unsubscribe", 11) == 0) {
        out->type = TB_WS_REQ_UNSUBSCRIBE;
        rc = take_item(out, root);
    } else {
        rc = fail_unknown_type(out, t, tlen);
    }
out:
    json_object_put(root);
    return rc;
}

void tb_ws_request_release(struct tb_ws_request *r)
{
    if (!r)
        return;
    free(r->item);
    r->item = NULL;
}
