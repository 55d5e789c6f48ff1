#!/bin/sh
# Runs OPA Gatekeeper's policy library's own gator suites with
# `gitplane policy verify`: every library/**/suite.yaml (or those under the
# directories given, relative to the checkout), once with templates' CEL
# source first (Gatekeeper's default) and once with Rego only, as the
# library's CI runs gator. Prints a line per failing case and the totals.
#
#   scripts/compat/gatekeeper-library.sh GATEKEEPER_LIBRARY_CHECKOUT [GITPLANE] [DIR...]
#
# The checkout is github.com/open-policy-agent/gatekeeper-library; nothing
# is copied. Needs python3.
set -eu
. "$(dirname "$0")/common.sh"
[ $# -ge 2 ] && shift 2 || shift $#
if [ $# -eq 0 ]; then set -- library; fi
GITPLANE="$(cd "$(dirname "$gitplane")" && pwd)/$(basename "$gitplane")" CHECKOUT="$checkout" python3 - "$@" <<'PY'
import json, os, subprocess, sys
gitplane, checkout = os.environ["GITPLANE"], os.environ["CHECKOUT"]
for mode, cel in (("CEL first", "true"), ("Rego only", "false")):
    cases = passed = suites = 0
    for directory in sys.argv[1:]:
        out = subprocess.run([gitplane, "policy", "verify", directory, "-o", "json",
                              f"--enable-k8s-native-validation={cel}"],
                             cwd=checkout, capture_output=True, text=True)
        if out.returncode not in (0, 1):
            print(f"ERROR {directory}: {out.stderr.strip()}")
            continue
        rows = json.loads(out.stdout)
        suites += len({r["suite"] for r in rows})
        for row in rows:
            cases += 1
            passed += row["result"] == "pass"
            if row["result"] != "pass":
                print(f"{row['result'].upper()} ({mode}) {row['suite']} › {row['test']} › {row['case']}: {row['detail'][:200]}")
    print(f"{mode}: {passed} of {cases} cases pass ({suites} suites)")
PY
