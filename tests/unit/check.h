/* check.h - the unit tests' only framework. CHECK(cond) reports file:line and
 * the expression when cond is false and counts it; CHECKM(cond, label) also
 * prints a label (for table-driven cases); CHECK_DONE() ends main with
 * "N passed, N failed" and a nonzero status when anything failed. */
#ifndef PARLEY_CHECK_H
#define PARLEY_CHECK_H
#include <stdio.h>

static int check_passed, check_failed;

static inline void check_report(int ok, const char *file, int line, const char *expr, const char *label) {
  if (ok) { check_passed++; return; }
  check_failed++;
  fprintf(stderr, "%s:%d: CHECK failed: %s%s%s%s\n", file, line, expr,
          label ? " [" : "", label ? label : "", label ? "]" : "");
}

#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, #cond, NULL)
#define CHECKM(cond, label) check_report(!!(cond), __FILE__, __LINE__, #cond, (label))

#define CHECK_DONE()                                                   \
  do {                                                                 \
    printf("%d passed, %d failed\n", check_passed, check_failed);      \
    return check_failed ? 1 : 0;                                       \
  } while (0)

#endif
