/* log.c - leveled logging to stderr, and the error-code names of err.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "err.h"
#include "log.h"

int log_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *name, int *level) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, level_names[i]) == 0) { *level = i; return 0; }
  return PARLEY_EINVAL;
}

void log_msg(int level, const char *fmt, ...) {
  if (level < log_level) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
          tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
          level_names[level], line);
}

const char *parley_strerror(int err) {
  switch (err) {
#define X(name, val, msg) case val: return msg;
    PARLEY_ERR_MAP(X)
#undef X
  }
  return err == 0 ? "ok" : "unknown error";
}

const char *parley_errname(int err) {
  switch (err) {
#define X(name, val, msg) case val: return #name;
    PARLEY_ERR_MAP(X)
#undef X
  }
  return err == 0 ? "OK" : "UNKNOWN";
}
