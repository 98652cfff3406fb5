/*
 * subs.h - a client's subscription set. PURE.
 *
 * Items are "topic:<pattern>" or "group:<pattern>". A pattern is an fnmatch(3) glob
 * ("orders-*", "*", "eu-?"), without FNM_PATHNAME; a pattern with no glob characters is
 * an exact name. Limits: a pattern is 1..249 bytes (Kafka's name limit), printable
 * ASCII only; at most TB_SUBS_MAX items per set.
 *
 * Semantics (docs/protocol.md):
 *   - An EMPTY set matches everything (clients that never subscribe get everything).
 *   - A non-empty set matches a topic only through its topic: items and a group only
 *     through its group: items (a set with only group items matches no topic).
 *   - Subscribing to an item already present, or unsubscribing from one that is not,
 *     is not an error (idempotent).
 *   - tb_subs_key() is a canonical string of the set (sorted, deduplicated, "\n"
 *     separated; "" for the empty set): two clients with equal keys receive byte-equal
 *     messages, so the server serializes once per key.
 *
 * Decisions (core, implementation notes):
 *   - "Printable ASCII" is 0x20..0x7e (space allowed: group ids may hold spaces); the
 *     prefixes "topic:" and "group:" are case-sensitive.
 *   - tb_subs_key() builds the key lazily and caches it until the next add/remove that
 *     changes the set; it returns NULL only on OOM. Not thread-safe on a shared set
 *     (each set belongs to one session, on the service thread).
 *   - tb_subs_clone(NULL) returns a new empty set (NULL only on OOM). A clone comes
 *     with its caches built: as long as nobody modifies it, matching and tb_subs_key()
 *     never write to it, so it may be shared read-only between threads.
 *   - Matching: exact patterns (no '*', '?', '[' or '\\') are found by binary search;
 *     only glob patterns go through fnmatch(pattern, name, 0).
 */
#ifndef TB_SUBS_H
#define TB_SUBS_H

#include <stdbool.h>
#include <stddef.h>

#define TB_SUBS_MAX 256

enum tb_subs_kind { TB_SUBS_TOPIC, TB_SUBS_GROUP };

struct tb_subs;

struct tb_subs *tb_subs_new(void);
void tb_subs_free(struct tb_subs *s); /* NULL is a no-op */
struct tb_subs *tb_subs_clone(const struct tb_subs *s);

/* Validate an item string without changing any set. Returns 0, or -EINVAL with a
 * short reason (static string) in *why. */
int tb_subs_validate(const char *item, const char **why);

/* Returns 0 (added or already present), -EINVAL (invalid item; *why set), -ENOSPC
 * (TB_SUBS_MAX reached; *why set) or -ENOMEM. */
int tb_subs_add(struct tb_subs *s, const char *item, const char **why);
/* Returns 0 (removed or absent) or -EINVAL (invalid item; *why set). */
int tb_subs_remove(struct tb_subs *s, const char *item, const char **why);

size_t tb_subs_count(const struct tb_subs *s);
bool tb_subs_is_empty(const struct tb_subs *s); /* NULL counts as empty */

/* Matching, per the rules above. @s may be NULL (= empty = everything). */
bool tb_subs_match_topic(const struct tb_subs *s, const char *topic);
bool tb_subs_match_group(const struct tb_subs *s, const char *group_id);

/* Canonical key; valid until the set is next modified or freed. */
const char *tb_subs_key(const struct tb_subs *s);

#endif
