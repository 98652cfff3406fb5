/*
 * procfs.c - /proc readers for the pod signals. See include/tb/procfs.h.
 *
 * Design
 *   Plain stdio on paths built from the caller's root: no global state, no caching
 *   (the caller, src/core/pod.c, remembers which process it matched). /proc files
 *   report a size of 0, so nothing relies on stat(); tables are read with getline()
 *   and parsed line by line with sscanf().
 *   /proc/net/tcp{,6} line: "sl: LOCAL_HEX:PORT REMOTE_HEX:PORT ST ...", addresses 8
 *   (IPv4) or 32 (IPv6) hex digits, ports and state in hex. Only the local port and
 *   the state are used.
 */
#include "tb/procfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TCP_ESTABLISHED 0x01
#define CMDLINE_MAX 65536

/* Counts the matching lines of one table; 0, -errno (open) or -EINVAL (no header). */
static int count_table(const char *path, uint16_t port, uint64_t *count)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    ssize_t got = getline(&line, &cap, f);
    if (got < 0 || !strstr(line, "local_address") || !strstr(line, "st")) {
        rc = -EINVAL;
        goto out;
    }
    while ((got = getline(&line, &cap, f)) >= 0) {
        unsigned lport = 0, state = 0;
        /* "  12: 0100007F:2384 0100007F:A1B2 01 ..." */
        if (sscanf(line, " %*[0-9]: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &lport, &state) != 2)
            continue;
        if (state == TCP_ESTABLISHED && lport == port)
            (*count)++;
    }
    if (ferror(f))
        rc = -EIO;
out:
    free(line);
    fclose(f);
    return rc;
}

int tb_procfs_count_established(const char *root, uint16_t port, uint64_t *count)
{
    char path[PATH_MAX];
    uint64_t n = 0;
    *count = 0;
    snprintf(path, sizeof(path), "%s/net/tcp", root);
    int r4 = count_table(path, port, &n);
    snprintf(path, sizeof(path), "%s/net/tcp6", root);
    int r6 = count_table(path, port, &n);
    if (r4 != 0 && r6 != 0)
        return r4;
    if (r4 != 0 && r4 != -ENOENT)
        return r4; /* tcp unreadable or garbled while tcp6 is fine: not a full count */
    if (r6 != 0 && r6 != -ENOENT)
        return r6;
    *count = n;
    return 0;
}

/* "Key:\t  123 kB" -> 123; false if the line is not @key. */
static bool status_field(const char *line, const char *key, int64_t *v)
{
    size_t kl = strlen(key);
    if (strncmp(line, key, kl) != 0 || line[kl] != ':')
        return false;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(line + kl + 1, &end, 10);
    if (errno || end == line + kl + 1 || x < 0)
        return false;
    *v = x;
    return true;
}

int tb_procfs_read_status(const char *root, int pid, struct tb_proc_usage *out)
{
    char path[PATH_MAX];
    if (pid > 0)
        snprintf(path, sizeof(path), "%s/%d/status", root, pid);
    else
        snprintf(path, sizeof(path), "%s/self/status", root);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    bool have_rss = false, have_threads = false;
    int64_t rss_kb = 0, threads = 0;
    while (getline(&line, &cap, f) >= 0) {
        if (!have_rss && status_field(line, "VmRSS", &rss_kb))
            have_rss = true;
        else if (!have_threads && status_field(line, "Threads", &threads))
            have_threads = true;
    }
    int rc = ferror(f) ? -EIO : 0;
    free(line);
    fclose(f);
    if (rc)
        return rc;
    if (!have_rss || !have_threads)
        return -ENODATA;
    out->rss_bytes = rss_kb * 1024;
    out->threads = threads;
    return 0;
}

int tb_procfs_cmdline_matches(const char *root, int pid, const char *match)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%d/cmdline", root, pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char *buf = malloc(CMDLINE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, CMDLINE_MAX, f);
    int rc = ferror(f) ? -EIO : 0;
    fclose(f);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '\0')
                buf[i] = ' ';
        buf[n] = '\0';
        rc = n > 0 && match && match[0] && strstr(buf, match) ? 1 : 0;
    }
    free(buf);
    return rc;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

int tb_procfs_find_process(const char *root, const char *match, int exclude_pid, int *pid,
                           int *matches)
{
    *pid = 0;
    *matches = 0;
    DIR *d = opendir(root);
    if (!d)
        return -errno;
    int best = 0;
    int64_t best_rss = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!all_digits(e->d_name) || strlen(e->d_name) > 9)
            continue;
        int p = atoi(e->d_name);
        if (p <= 0 || p == exclude_pid)
            continue;
        if (tb_procfs_cmdline_matches(root, p, match) != 1)
            continue; /* no match, or gone meanwhile */
        struct tb_proc_usage u;
        if (tb_procfs_read_status(root, p, &u) != 0)
            continue; /* exited, or a zombie */
        (*matches)++;
        if (u.rss_bytes > best_rss || (u.rss_bytes == best_rss && p < best)) {
            best = p;
            best_rss = u.rss_bytes;
        }
    }
    closedir(d);
    if (!best)
        return -ESRCH;
    *pid = best;
    return 0;
}
