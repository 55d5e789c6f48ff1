#!/bin/sh
# Compares gitplane's built-in health checks with gitops-engine's, case by
# case, on gitops-engine's own test objects: each `assertAppHealth(t, FILE,
# STATUS)` (and `assert.Nil(t, getHealthStatus(t, FILE))`, no health) of
# gitops-engine/pkg/health/health_test.go, checked with `gitplane health
# check FILE -o json`. Prints PASS/FAIL per case and the totals.
#
#   scripts/compat/gitops-engine-health.sh ARGO_CD_CHECKOUT [GITPLANE]
#
# ARGO_CD_CHECKOUT is a local checkout of github.com/argoproj/argo-cd (which
# holds gitops-engine/); nothing is copied. GITPLANE defaults to
# target/release/gitplane (built if missing). Needs python3.
set -eu
. "$(dirname "$0")/common.sh"
dir="$checkout/gitops-engine/pkg/health"
[ -f "$dir/health_test.go" ] || { echo "$dir/health_test.go: not found" >&2; exit 2; }
GITPLANE="$gitplane" DIR="$dir" python3 - <<'PY'
import json, os, re, subprocess
d, gitplane = os.environ["DIR"], os.environ["GITPLANE"]
source = open(os.path.join(d, "health_test.go")).read()
cases = [(f, s) for f, s in re.findall(r'assertAppHealth\(t, "([^"]+)", HealthStatus(\w+)\)', source)]
cases += [(f, None) for f in re.findall(r'assert\.Nil\(t, getHealthStatus\(t, "([^"]+)"\)\)', source)]
passed = 0
for path, expected in cases:
    out = subprocess.run([gitplane, "health", "check", os.path.join(d, path), "-o", "json"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        got = "error: " + out.stderr.strip().splitlines()[-1]
    else:
        health = json.loads(out.stdout)[0]["health"]
        got = health["status"] if health else None
    ok = got == expected
    passed += ok
    print(("PASS" if ok else "FAIL"), path, "expected", expected or "no health", "got", got or "no health")
print(f"{passed} passed, {len(cases) - passed} failed")
PY
