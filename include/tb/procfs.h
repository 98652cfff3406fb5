/*
 * procfs.h - readers for the pod-local signals in Linux's /proc. PURE (libc only).
 *
 * Every function takes the proc root as a parameter ("/proc" in production,
 * tests/data/procfs/... in unit tests), never touches global state, and reports
 * failure as -errno. Files are read line by line, so /proc/net/tcp with tens of
 * thousands of sockets costs no large buffer.
 *
 * Connections
 *   <root>/net/tcp and <root>/net/tcp6 list the sockets of the READER's network
 *   namespace (/proc/net is /proc/self/net). In a pod every container shares one
 *   namespace, so the sidecar sees the broker's sockets. A connection to the broker's
 *   listener is a socket in state ESTABLISHED (st = 01) whose LOCAL port is the
 *   listener port: the broker's end of every accepted connection, whoever the client
 *   is (clients outside the pod, other brokers, the bridge itself). The listening
 *   socket (st 0A), half-closed and TIME_WAIT sockets are not counted; neither are
 *   connections FROM the pod to another host's port of the same number (their local
 *   port is ephemeral).
 *
 * Processes
 *   <root>/PID/status gives VmRSS (resident set, kB -> bytes) and Threads.
 *   <root>/PID/cmdline (NUL-separated argv) is matched as one string, NULs read as
 *   spaces, by plain substring search.
 */
#ifndef TB_PROCFS_H
#define TB_PROCFS_H

#include <stdint.h>

/*
 * Counts ESTABLISHED sockets with local port @port in <root>/net/tcp and
 * <root>/net/tcp6. A missing tcp6 (IPv6 disabled) is fine: returns 0 when at least one
 * file was read, else the -errno of the tcp file. A line that does not parse
 * (truncated) is skipped; a file whose first line is not the kernel's header is
 * -EINVAL.
 */
int tb_procfs_count_established(const char *root, uint16_t port, uint64_t *count);

struct tb_proc_usage {
    int64_t rss_bytes; /* VmRSS in bytes */
    int64_t threads;   /* Threads */
};

/* Reads <root>/@pid/status (@pid 0 = <root>/self/status). -ENODATA when VmRSS or
 * Threads is missing (a kernel thread, a zombie). */
int tb_procfs_read_status(const char *root, int pid, struct tb_proc_usage *out);

/* 1 if <root>/@pid/cmdline contains @match (NULs as spaces), 0 if not (or empty), or
 * -errno (the process is gone: -ENOENT). */
int tb_procfs_cmdline_matches(const char *root, int pid, const char *match);

/*
 * Scans the numeric entries of @root for processes whose command line contains @match,
 * skipping @exclude_pid (the bridge itself: its own command line may contain the match
 * string). When several match (a shell wrapper and the JVM it started), the one with
 * the largest VmRSS is chosen, ties to the lowest pid. Returns 0 with *pid and *matches
 * (how many matched), -ESRCH when none matched, -errno when @root cannot be read.
 */
int tb_procfs_find_process(const char *root, const char *match, int exclude_pid, int *pid,
                           int *matches);

#endif
