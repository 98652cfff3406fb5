/*
 * log.h - the bridge's one logger.
 *
 * Contract
 *   - Lines go to stderr as "LEVEL component: message" (journald/kubectl logs add
 *     timestamps; TB_LOG_TIMESTAMPS=1 in the environment adds an ISO-8601 UTC prefix).
 *   - Thread-safe: each line is formatted into a local buffer and written with one
 *     write(2), so lines from different threads never interleave.
 *   - Secrets (API keys, SASL passwords) are never passed to this logger.
 *   - tb_log_set_level() is called once by main before threads start.
 */
#ifndef TB_LOG_H
#define TB_LOG_H

enum tb_log_level { TB_LOG_DEBUG = 0, TB_LOG_INFO, TB_LOG_WARN, TB_LOG_ERROR };

void tb_log_set_level(enum tb_log_level level);
enum tb_log_level tb_log_get_level(void);
/* "debug"|"info"|"warn"|"error" -> level; returns -1 for anything else. */
int tb_log_level_parse(const char *name);

void tb_log(enum tb_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define tb_debug(comp, ...) tb_log(TB_LOG_DEBUG, comp, __VA_ARGS__)
#define tb_info(comp, ...)  tb_log(TB_LOG_INFO, comp, __VA_ARGS__)
#define tb_warn(comp, ...)  tb_log(TB_LOG_WARN, comp, __VA_ARGS__)
#define tb_error(comp, ...) tb_log(TB_LOG_ERROR, comp, __VA_ARGS__)

#endif
