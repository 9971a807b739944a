/* policy_test.h - `parley --test-policy FILE`: run a policy author's Lua
 * tests against the policies of a directory, through the server's own
 * admission and event layer, without sockets (docs/policies.md, "Testing a
 * policy"). */
#ifndef PARLEY_POLICY_TEST_H
#define PARLEY_POLICY_TEST_H
#include "policy.h"

/* Run the tests of file (TAP-like lines on stdout) against the policies in
 * dir, loaded afresh for each test with options o. 0 every test passed, 1 a
 * test failed (or none ran), 2 the file or the runner failed. */
int policy_test_run(const char *dir, const policy_options *o, const char *file);

#endif
