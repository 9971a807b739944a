/* check.h - the unit tests' only framework. CHECK(cond) reports file:line and
 * the expression when cond is false and counts it; CHECKM(cond, label) also
 * prints a label (for table-driven cases); CHECK_DONE() ends main with
 * "N passed, N failed" and a nonzero status when anything failed. */
#ifndef PARLEY_CHECK_H
#define PARLEY_CHECK_H
#include <stdio.h>

static int check_passed, check_failed;

/* The label with bytes outside printable ASCII as \xNN (labels are often test input). */
static inline void check_label(const char *label) {
  fputs(" [", stderr);
  for (const unsigned char *p = (const unsigned char *)label; *p; p++)
    if (*p >= 0x20 && *p < 0x7f) fputc(*p, stderr);
    else fprintf(stderr, "\\x%02X", *p);
  fputc(']', stderr);
}

static inline void check_report(int ok, const char *file, int line, const char *expr, const char *label) {
  if (ok) {
    check_passed++;
    return;
  }
  check_failed++;
  fprintf(stderr, "%s:%d: CHECK failed: %s", file, line, expr);
  if (label) check_label(label);
  fputc('\n', stderr);
}

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, #cond, NULL)
#define CHECKM(cond, label) check_report(!!(cond), __FILE__, __LINE__, #cond, (label))

#define CHECK_DONE()                                              \
  do {                                                            \
    printf("%d passed, %d failed\n", check_passed, check_failed); \
    return check_failed ? 1 : 0;                                  \
  } while (0)

#endif
