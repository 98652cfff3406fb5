/*
 * pod.h - the pod-local signals (pod.* options): connections to the broker's listener,
 * memory and threads of the broker process (or of the bridge), and the broker's log
 * directories. Built on procfs.h and logdirs.h; adds the policy: which process to
 * report, and warnings logged once per change of a source's health (a missing volume
 * or process is a warning and an unavailable field, never an error).
 *
 * Threads: one owner (the collector thread); not thread-safe.
 */
#ifndef TB_POD_H
#define TB_POD_H

#include <stdbool.h>
#include <stddef.h>

#include "tb/logdirs.h"
#include "tb/metrics.h"

struct tb_pod_options {
    const char *proc_root;        /* NULL or "" = "/proc" */
    int broker_port;              /* 0 = do not count connections */
    const char *process_match;    /* NULL or "" = report the bridge's own process */
    const char *const *log_dirs;  /* absolute paths */
    size_t log_dir_count;         /* 0 = no log directory scan */
};

struct tb_pod;

/* Copies everything it needs from @o. NULL on OOM. */
struct tb_pod *tb_pod_new(const struct tb_pod_options *o);
void tb_pod_free(struct tb_pod *p); /* NULL is a no-op */

/*
 * Connections and process, now. Process choice: with a process_match, the process
 * whose command line contains it (the bridge itself excluded; the largest resident
 * set among several; the pid is remembered and re-checked each call, so a restarted
 * broker is found again); with none, or when nothing matches (logged once), the
 * bridge's own process, with process_is_broker = false. Fields that cannot be read
 * are left unavailable.
 */
void tb_pod_sample(struct tb_pod *p, struct tb_pod_stats *out);

bool tb_pod_has_log_dirs(const struct tb_pod *p);

/* Scans the log directories (see logdirs.h). 0 with @out filled (release it), or
 * -errno with @out empty; the failure is logged when it differs from the last one. */
int tb_pod_scan_logs(struct tb_pod *p, struct tb_logdir_scan *out);

#endif
