#!/bin/sh
# Runs Kyverno's policy library's own CLI tests with `gitplane policy test`:
# every .kyverno-test/kyverno-test.yaml under the categories pod-security,
# pod-security-cel, best-practices and best-practices-cel (or those given).
# Prints PASS/FAIL per test file (a file passes when every result in it
# matches) and the totals.
#
#   scripts/compat/kyverno-policies.sh KYVERNO_POLICIES_CHECKOUT [GITPLANE] [CATEGORY...]
#
# The checkout is github.com/kyverno/policies; nothing is copied. Needs
# python3.
set -eu
. "$(dirname "$0")/common.sh"
[ $# -ge 2 ] && shift 2 || shift $#
if [ $# -eq 0 ]; then set -- pod-security pod-security-cel best-practices best-practices-cel; fi
GITPLANE="$(cd "$(dirname "$gitplane")" && pwd)/$(basename "$gitplane")" CHECKOUT="$checkout" python3 - "$@" <<'PY'
import os, subprocess, sys
gitplane, checkout = os.environ["GITPLANE"], os.environ["CHECKOUT"]
files = passed = 0
for category in sys.argv[1:]:
    # Run from the checkout: a test reads ../policy.yaml, inside it.
    out = subprocess.run([gitplane, "policy", "test", category], cwd=checkout,
                         capture_output=True, text=True)
    current, mismatches = None, {}
    for line in out.stdout.splitlines():
        if line.endswith("kyverno-test.yaml") and not line.startswith(" "):
            current = line
            mismatches[current] = []
        elif "MISMATCH" in line and current:
            mismatches[current].append(line.split("MISMATCH:")[1].strip())
    if out.returncode not in (0, 1) or not mismatches:
        print(f"ERROR {category}: {out.stderr.strip()}")
        continue
    for test, problems in mismatches.items():
        files += 1
        passed += not problems
        print(("PASS " if not problems else "FAIL ") + test
              + (f": {len(problems)} results differ, first: {problems[0]}" if problems else ""))
print(f"{passed} of {files} test files pass")
PY
