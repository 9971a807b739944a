/* log.c - leveled logging to stderr, and the error-code names of err.h. */
#include <stdarg.h>
#include <stdint.h>
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

/* Info and warn lines share a token bucket, so that whatever clients make
 * the server say (framing errors, refusals, policy failures) cannot flood the
 * log: LOG_RATE lines a second, LOG_BURST at once; what is dropped is counted
 * and the count is written before the next line that gets through. */
#define LOG_RATE 50.0
#define LOG_BURST 100.0

static double tokens = LOG_BURST;
static uint64_t last_ns;
static unsigned long suppressed;

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void write_line(int level, const char *line) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s\n", tm.tm_year + 1900,
          tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
          level_names[level], line);
}

/* 1 when a line of this level may be written now. */
static int admit(int level) {
  if (level >= LOG_ERROR || level == LOG_DEBUG) return 1;  /* errors are rare; debug is asked for */
  uint64_t now = mono_ns();
  if (last_ns) tokens += (double)(now - last_ns) * LOG_RATE / 1e9;
  if (tokens > LOG_BURST) tokens = LOG_BURST;
  last_ns = now;
  if (tokens < 1.0) { suppressed++; return 0; }
  tokens -= 1.0;
  return 1;
}

void log_msg(int level, const char *fmt, ...) {
  if (level < log_level || !admit(level)) return;
  if (suppressed) {
    char note[96];
    snprintf(note, sizeof note, "log: %lu lines suppressed (over %.0f lines/s)", suppressed, LOG_RATE);
    suppressed = 0;
    write_line(LOG_WARN, note);
  }
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  write_line(level, line);
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
