/* log.c - leveled logging to stderr, and the error-code names of err.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "err.h"
#include "log.h"
#include "utf8.h"

int log_level = LOG_INFO;
int log_json;
int log_capturing;
static char *capture_buf;
static size_t capture_cap;

void log_capture(char *buf, size_t cap) {
  capture_buf = cap ? buf : NULL;
  capture_cap = cap;
  log_capturing = capture_buf != NULL;
  if (capture_buf) capture_buf[0] = 0;
}

static void capture(const char *line) {
  size_t n = strlen(capture_buf);
  if (n + 1 < capture_cap) snprintf(capture_buf + n, capture_cap - n, "%s%s", n ? "; " : "", line);
}

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *name, int *level) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, level_names[i]) == 0) {
      *level = i;
      return 0;
    }
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

int log_format_parse(const char *name, int *json) {
  if (strcmp(name, "text") == 0) *json = 0;
  else if (strcmp(name, "json") == 0) *json = 1;
  else return PARLEY_EINVAL;
  return 0;
}

/* line as the inside of a JSON string: quotes, backslashes and control
 * bytes escaped, bytes that are not UTF-8 (what a client sent, quoted in a
 * line) as U+FFFD. */
static void json_text(const char *line, char *out, size_t cap) {
  size_t o = 0, n = strlen(line);
  for (size_t i = 0; i < n && o + 8 < cap;) {
    unsigned char c = (unsigned char)line[i];
    size_t k = c < 0x80 ? 1 : utf8_seq_len((const unsigned char *)line + i, n - i);
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
      i++;
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
      i++;
    } else if (k == 0) {
      memcpy(out + o, "\\ufffd", 6);
      o += 6;
      i++;
    } else {
      memcpy(out + o, line + i, k);
      o += k;
      i += k;
    }
  }
  out[o] = 0;
}

static void write_line(int level, const char *line) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char stamp[64];
  snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
  if (log_json) {
    char msg[6 * 1024 + 8];
    json_text(line, msg, sizeof msg);
    fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", stamp, level_names[level], msg);
  } else {
    fprintf(stderr, "%s %-5s %s\n", stamp, level_names[level], line);
  }
}

/* 1 when a line of this level may be written now. */
static int admit(int level) {
  if (level >= LOG_ERROR || level == LOG_DEBUG) return 1; /* errors are rare; debug is asked for */
  uint64_t now = mono_ns();
  if (last_ns) tokens += (double)(now - last_ns) * LOG_RATE / 1e9;
  if (tokens > LOG_BURST) tokens = LOG_BURST;
  last_ns = now;
  if (tokens < 1.0) {
    suppressed++;
    return 0;
  }
  tokens -= 1.0;
  return 1;
}

void log_msg(int level, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  if (capture_buf && level >= LOG_WARN) {
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    capture(line);
  }
  if (level < log_level || !admit(level)) return;
  if (suppressed) {
    char note[96];
    snprintf(note, sizeof note, "log: %lu lines suppressed (over %.0f lines/s)", suppressed, LOG_RATE);
    suppressed = 0;
    write_line(LOG_WARN, note);
  }
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  write_line(level, line);
}

void log_notice(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (log_json) write_line(LOG_INFO, line);
  else fprintf(stderr, "%s\n", line);
  fflush(stderr);
}

const char *parley_strerror(int err) {
  switch (err) {
#define X(name, val, msg) \
  case val: return msg;
    PARLEY_ERR_MAP(X)
#undef X
  }
  return err == 0 ? "ok" : "unknown error";
}

const char *parley_errname(int err) {
  switch (err) {
#define X(name, val, msg) \
  case val: return #name;
    PARLEY_ERR_MAP(X)
#undef X
  }
  return err == 0 ? "OK" : "UNKNOWN";
}
