/*
 * pod.c - policy over the pod-local readers (procfs.c, logdirs.c). See include/tb/pod.h.
 *
 * Design
 *   Each source (connections, process, log directories) keeps the text of its last
 *   problem: a warning is logged when a source fails with a problem different from
 *   the last one, and an info line when it recovers, so a volume that stays missing is
 *   one line in the log, not one per cycle, while a change is always visible.
 *   The matched broker pid is cached: each sample re-reads only that pid's cmdline
 *   (one small file); the whole of /proc is scanned again only when it no longer
 *   matches (the broker restarted, or its pid was reused).
 */
#include "tb/pod.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tb/log.h"
#include "tb/procfs.h"

#define COMP "pod"

struct health {
    char problem[400]; /* "" = healthy (or never tried) */
    bool tried;
};

struct tb_pod {
    char *root;
    int port;
    char *match;     /* NULL = the bridge itself */
    char **dirs;
    size_t ndirs;
    int broker_pid;  /* cached match; 0 = none */
    struct health conns, proc, self, logs;
};

/* Records the outcome of one source: @problem NULL = healthy. Logs changes. */
static void report(struct health *h, const char *what, const char *problem)
{
    if (!problem) {
        if (h->problem[0])
            tb_info(COMP, "%s: readable again", what);
        h->problem[0] = '\0';
        h->tried = true;
        return;
    }
    if (!h->tried || strcmp(h->problem, problem) != 0)
        tb_warn(COMP, "%s: %s", what, problem);
    snprintf(h->problem, sizeof(h->problem), "%s", problem);
    h->tried = true;
}

struct tb_pod *tb_pod_new(const struct tb_pod_options *o)
{
    struct tb_pod *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->root = strdup(o->proc_root && o->proc_root[0] ? o->proc_root : "/proc");
    p->port = o->broker_port;
    if (o->process_match && o->process_match[0] && !(p->match = strdup(o->process_match)))
        goto fail;
    if (!p->root)
        goto fail;
    if (o->log_dir_count) {
        p->dirs = calloc(o->log_dir_count, sizeof(*p->dirs));
        if (!p->dirs)
            goto fail;
        for (size_t i = 0; i < o->log_dir_count; i++) {
            p->dirs[i] = strdup(o->log_dirs[i]);
            if (!p->dirs[i])
                goto fail;
            p->ndirs++;
        }
    }
    return p;
fail:
    tb_pod_free(p);
    return NULL;
}

void tb_pod_free(struct tb_pod *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->ndirs; i++)
        free(p->dirs[i]);
    free(p->dirs);
    free(p->match);
    free(p->root);
    free(p);
}

bool tb_pod_has_log_dirs(const struct tb_pod *p)
{
    return p && p->ndirs > 0;
}

static void sample_connections(struct tb_pod *p, struct tb_pod_stats *out)
{
    if (p->port <= 0)
        return;
    uint64_t n = 0;
    int rc = tb_procfs_count_established(p->root, (uint16_t)p->port, &n);
    char what[64];
    snprintf(what, sizeof(what), "connections to port %d", p->port);
    if (rc != 0) {
        char why[320];
        snprintf(why, sizeof(why), "cannot read %s/net/tcp: %s; activeConnections unavailable",
                 p->root, strerror(-rc));
        report(&p->conns, what, why);
        return;
    }
    report(&p->conns, what, NULL);
    out->connections_available = true;
    out->connections = (int64_t)n;
}

/* The broker's pid (cached, re-checked), or 0 with the problem in @why. */
static int broker_pid(struct tb_pod *p, char *why, size_t whylen)
{
    if (p->broker_pid > 0 && tb_procfs_cmdline_matches(p->root, p->broker_pid, p->match) == 1)
        return p->broker_pid;
    int pid = 0, matches = 0;
    int rc = tb_procfs_find_process(p->root, p->match, (int)getpid(), &pid, &matches);
    if (rc != 0) {
        if (rc == -ESRCH)
            snprintf(why, whylen,
                     "no process in %s matches pod.process_match \"%s\" (is "
                     "shareProcessNamespace on?); reporting the bridge's own process",
                     p->root, p->match);
        else
            snprintf(why, whylen,
                     "cannot list processes in %s: %s; reporting the bridge's own process",
                     p->root, strerror(-rc));
        p->broker_pid = 0;
        return 0;
    }
    if (pid != p->broker_pid)
        tb_info(COMP, "broker process: pid %d (%d process(es) match \"%s\")", pid, matches,
                p->match);
    p->broker_pid = pid;
    return pid;
}

static void sample_process(struct tb_pod *p, struct tb_pod_stats *out)
{
    struct tb_proc_usage u;
    char why[320] = "";
    if (p->match) {
        int pid = broker_pid(p, why, sizeof(why));
        if (pid > 0) {
            int rc = tb_procfs_read_status(p->root, pid, &u);
            if (rc == 0) {
                report(&p->proc, "broker process", NULL);
                out->process_available = true;
                out->process_is_broker = true;
                out->pid = pid;
                out->memory_bytes = u.rss_bytes;
                out->threads = u.threads;
                return;
            }
            snprintf(why, sizeof(why),
                     "cannot read %s/%d/status: %s; reporting the bridge's own process",
                     p->root, pid, strerror(-rc));
            p->broker_pid = 0; /* look again next time */
        }
        report(&p->proc, "broker process", why);
    }
    /* the bridge itself */
    int rc = tb_procfs_read_status(p->root, 0, &u);
    if (rc != 0) {
        char self[320];
        snprintf(self, sizeof(self),
                 "cannot read %s/self/status: %s; memory and thread count unavailable",
                 p->root, strerror(-rc));
        report(&p->self, "own process", self);
        return;
    }
    report(&p->self, "own process", NULL);
    out->process_available = true;
    out->process_is_broker = false;
    out->pid = (int32_t)getpid();
    out->memory_bytes = u.rss_bytes;
    out->threads = u.threads;
}

void tb_pod_sample(struct tb_pod *p, struct tb_pod_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!p)
        return;
    sample_connections(p, out);
    sample_process(p, out);
}

int tb_pod_scan_logs(struct tb_pod *p, struct tb_logdir_scan *out)
{
    memset(out, 0, sizeof(*out));
    if (!p || p->ndirs == 0)
        return -ENOENT;
    char err[320], why[400];
    int rc = tb_logdirs_scan((const char *const *)p->dirs, p->ndirs, out, err, sizeof(err));
    snprintf(why, sizeof(why), "%s; topic sizes, disk usage and produce bytes unavailable", err);
    report(&p->logs, "log directories", rc == 0 ? NULL : why);
    return rc;
}
