/* log.h - leveled logging to stderr. */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

extern int log_level;
extern int log_json; /* 1: each line a JSON object {"ts","level","msg"} */
int log_level_parse(const char *name, int *level);
int log_format_parse(const char *name, int *json); /* "text" or "json" */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line written whatever the level (what a supervisor or a test waits for,
 * e.g. "parley listening on ADDR"): bare text, or a JSON line at "info". */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* While buf is set (cap bytes, NUL-terminated), the text of every warn and
 * error line is also appended to it, "; " between lines, cut at cap —
 * whatever the level and the rate limit: for a caller that reports what
 * failed (the admin API's answer to a reload). log_capture(NULL, 0) stops. */
void log_capture(char *buf, size_t cap);
extern int log_capturing;

#define log_debug(...)                                           \
  do {                                                           \
    if (log_level <= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); \
  } while (0)
#define log_info(...)                                          \
  do {                                                         \
    if (log_level <= LOG_INFO) log_msg(LOG_INFO, __VA_ARGS__); \
  } while (0)
#define log_warn(...)                                                           \
  do {                                                                          \
    if (log_level <= LOG_WARN || log_capturing) log_msg(LOG_WARN, __VA_ARGS__); \
  } while (0)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
