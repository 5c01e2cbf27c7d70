#!/usr/bin/env python3
"""Fails when a test file exists that no meson.build registers.

    check_registered.py TESTS_DIR REGISTERED...

TESTS_DIR is the source tree's tests/; REGISTERED are the test files the meson.build files
list (tests/unit: unit_sources, tests/integration: integration_sources). Every
tests/unit/test_*.c and tests/integration/test_*.py must be among them: a new test nobody
added to a list would otherwise never run, and the suite would still pass. (A listed file
that is missing already fails `meson setup`, through files().)
"""
import os
import sys

PATTERNS = (("unit", "test_", ".c"), ("integration", "test_", ".py"))


def main(argv):
    if len(argv) < 2:
        print("usage: check_registered.py TESTS_DIR REGISTERED...", file=sys.stderr)
        return 2
    tests_dir = argv[1]
    registered = {os.path.realpath(p) for p in argv[2:]}
    found = []
    for sub, prefix, suffix in PATTERNS:
        d = os.path.join(tests_dir, sub)
        names = sorted(n for n in os.listdir(d) if n.startswith(prefix) and n.endswith(suffix))
        if not names:
            # the check would pass vacuously on a wrong directory
            print("no %s*%s in %s" % (prefix, suffix, d), file=sys.stderr)
            return 1
        found += [os.path.join(d, n) for n in names]
    missing = [p for p in found if os.path.realpath(p) not in registered]
    for p in missing:
        print("%s: not registered in %s" % (os.path.relpath(p, tests_dir),
                                            os.path.join(os.path.dirname(p), "meson.build")),
              file=sys.stderr)
    print("%d test files, %d registered, %d not" % (len(found), len(found) - len(missing),
                                                   len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
