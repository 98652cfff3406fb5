/*
 * auth.c - API-key extraction from the three carriers and constant-time checking.
 * See include/tb/auth.h for the accepted forms.
 *
 * Design
 *   tb_auth_check() compares the presented key against EVERY configured key, each over
 *   max(key length, presented length) bytes, accumulating differences with OR/XOR and
 *   never exiting early; the lengths are folded into the same accumulator. Its running
 *   time therefore depends on the lengths only, not on which bytes differ or on which
 *   key (if any) matched. The extraction helpers return pointers into the caller's
 *   header value (no copies: keys are secrets and are never logged).
 */
#include "tb/auth.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

bool tb_auth_disabled(const struct tb_strlist *keys)
{
    return !keys || keys->count == 0;
}

/* 0 when equal; non-zero otherwise. Time depends on the lengths only. */
static size_t ct_diff(const char *key, size_t klen, const char *p, size_t plen)
{
    size_t diff = klen ^ plen; /* lengths differ -> non-zero */
    size_t n = klen > plen ? klen : plen;
    for (size_t i = 0; i < n; i++) {
        /* the branches depend on i and the lengths only */
        unsigned char a = i < klen ? (unsigned char)key[i] : 0;
        unsigned char b = i < plen ? (unsigned char)p[i] : 0;
        diff |= (size_t)(a ^ b);
    }
    return diff;
}

bool tb_auth_check(const struct tb_strlist *keys, const char *presented, size_t len)
{
    if (!keys || !presented || len == 0)
        return false;
    volatile unsigned ok = 0;
    for (size_t i = 0; i < keys->count; i++) {
        const char *k = keys->items[i];
        if (!k)
            continue;
        size_t d = ct_diff(k, strlen(k), presented, len);
        ok |= (unsigned)(d == 0);
    }
    return ok != 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims spaces/tabs around [*b, *e). */
static void trim(const char **b, const char **e)
{
    while (*b < *e && is_space(**b))
        (*b)++;
    while (*e > *b && is_space((*e)[-1]))
        (*e)--;
}

bool tb_auth_from_authorization(const char *header, const char **key, size_t *len)
{
    if (!header)
        return false;
    const char *b = header, *e = header + strlen(header);
    trim(&b, &e);
    if (b == e)
        return false;
    const char *sp = b;
    while (sp < e && !is_space(*sp))
        sp++;
    if (sp == e) {
        /* one word: the key itself ("Bearer " is optional), but not a bare scheme */
        if ((size_t)(e - b) == 6 && strncasecmp(b, "Bearer", 6) == 0)
            return false;
        *key = b;
        *len = (size_t)(e - b);
        return true;
    }
    if ((size_t)(sp - b) != 6 || strncasecmp(b, "Bearer", 6) != 0)
        return false; /* "Basic ...", "Digest ...": another scheme */
    const char *kb = sp, *ke = e;
    trim(&kb, &ke);
    if (kb == ke)
        return false;
    *key = kb;
    *len = (size_t)(ke - kb);
    return true;
}

bool tb_auth_from_protocols(const char *header, const char **key, size_t *len)
{
    static const char prefix[] = "bearer.";
    const size_t plen = sizeof(prefix) - 1;
    if (!header)
        return false;
    const char *p = header;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *b = p, *e = comma ? comma : p + strlen(p);
        trim(&b, &e);
        if ((size_t)(e - b) > plen && memcmp(b, prefix, plen) == 0) {
            *key = b + plen;
            *len = (size_t)(e - b) - plen;
            return true;
        }
        if (!comma)
            return false;
        p = comma + 1;
    }
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long tb_auth_percent_decode(char *s)
{
    size_t r = 0, w = 0;
    while (s[r]) {
        char c = s[r];
        if (c == '%') {
            int hi = hex_value(s[r + 1]);
            int lo = hi < 0 ? -1 : hex_value(s[r + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            s[w++] = (char)(hi * 16 + lo);
            r += 3;
        } else {
            s[w++] = c == '+' ? ' ' : c;
            r++;
        }
    }
    s[w] = '\0';
    return (long)w;
}
