/*
 * auth.h - API-key extraction and constant-time checking. PURE.
 *
 * A client presents a key (docs/protocol.md, "Authentication") by any of:
 *   - header  "Authorization: Bearer <key>" (the "Bearer " prefix is optional, the
 *     scheme name is case-insensitive);
 *   - query parameter "token=<key>" (percent-decoded by the server before the check);
 *   - "Sec-WebSocket-Protocol: bearer.<key>, takhin-monitoring".
 * Keys are compared in constant time with respect to their content (the time depends
 * only on the lengths). Keys are never logged or echoed.
 *
 * Decisions (core, implementation notes):
 *   - An empty presented key (len 0) never matches, even if an empty key were configured.
 *   - Authorization: leading/trailing spaces and tabs are trimmed. "<scheme> <rest>":
 *     scheme "Bearer" (any case) -> the trimmed rest (false if empty); any other scheme
 *     -> false. A value without a space is the key itself, except a bare "Bearer".
 *   - Sec-WebSocket-Protocol: entries are split on ',' and trimmed of spaces/tabs; the
 *     "bearer." prefix is case-sensitive (subprotocol tokens are); the first such entry
 *     with a non-empty key wins.
 *   - Percent-decoding accepts hex digits of either case; "%" followed by fewer than two
 *     hex digits is malformed (-1, @s unspecified). A decoded %00 stays in the returned
 *     length (the check then fails: no configured key contains NUL).
 */
#ifndef TB_AUTH_H
#define TB_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "tb/config.h"

#define TB_SUBPROTOCOL "takhin-monitoring"

/* true when no keys are configured (auth disabled). */
bool tb_auth_disabled(const struct tb_strlist *keys);

/* true if @presented (length @len) equals one of @keys. Examines every key. */
bool tb_auth_check(const struct tb_strlist *keys, const char *presented, size_t len);

/* From an Authorization header value: points *key and *len at the key inside @header
 * (no copy). Returns false if the value is empty or uses another scheme ("Basic"). */
bool tb_auth_from_authorization(const char *header, const char **key, size_t *len);

/* From a Sec-WebSocket-Protocol header value ("bearer.<key>, takhin-monitoring"):
 * returns true and points at the first "bearer."-prefixed entry's key. */
bool tb_auth_from_protocols(const char *header, const char **key, size_t *len);

/* Decode %XX and '+' in place; returns the new length, or -1 on a malformed escape. */
long tb_auth_percent_decode(char *s);

#endif
