/*
 * log.c - leveled, line-atomic logging to stderr. See include/tb/log.h.
 */
#include "tb/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum tb_log_level current_level = TB_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void tb_log_set_level(enum tb_log_level level) { current_level = level; }

enum tb_log_level tb_log_get_level(void) { return current_level; }

int tb_log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void tb_log(enum tb_log_level level, const char *component, const char *fmt, ...)
{
    if (level < current_level)
        return;
    char line[2048];
    size_t used = 0;
    const char *ts = getenv("TB_LOG_TIMESTAMPS");
    if (ts && ts[0] == '1') {
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        used = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        used += (size_t)snprintf(line + used, sizeof(line) - used, ".%03ldZ ",
                                 now.tv_nsec / 1000000L);
    }
    int n = snprintf(line + used, sizeof(line) - used, "%s %s: ", level_names[level],
                     component ? component : "-");
    if (n > 0)
        used += (size_t)n;
    if (used < sizeof(line)) {
        va_list ap;
        va_start(ap, fmt);
        n = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
        va_end(ap);
        if (n > 0)
            used += (size_t)n;
    }
    if (used >= sizeof(line) - 1)
        used = sizeof(line) - 2; /* truncated: keep the newline */
    line[used++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, used);
    (void)ignored;
}
