#!/bin/sh
# Judges every fixture of the upstream Pod Security admission tests
# (kubernetes/pod-security-admission test/testdata/<level>/v1.N/{pass,fail}/*.yaml)
# with `gitplane policy check FILE --pss LEVEL:v1.N` and compares the verdict
# with the directory it is in. Prints the mismatches, a count per check, and
# the total.
#
#   scripts/compat/pod-security-admission.sh PSA_CHECKOUT [GITPLANE]
#
# PSA_CHECKOUT is a local checkout of github.com/kubernetes/pod-security-admission;
# nothing is copied. Needs python3.
set -eu
. "$(dirname "$0")/common.sh"
data="$checkout/test/testdata"
[ -d "$data/restricted" ] || { echo "$data: not found" >&2; exit 2; }
GITPLANE="$gitplane" DATA="$data" python3 - <<'PY'
import collections, os, subprocess
gitplane, root = os.environ["GITPLANE"], os.environ["DATA"]
total = agreed = 0
differing = collections.Counter()
for level in ("baseline", "restricted"):
    for version in sorted(os.listdir(os.path.join(root, level))):
        for verdict in ("pass", "fail"):
            d = os.path.join(root, level, version, verdict)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                total += 1
                out = subprocess.run([gitplane, "policy", "check", os.path.join(d, name),
                                      "--pss", f"{level}:{version}"], capture_output=True, text=True)
                # policy check exits 3 when an enforced check fails.
                if out.returncode in (0, 3) and (out.returncode == 3) == (verdict == "fail"):
                    agreed += 1
                    continue
                print(f"DIFFERS {level}:{version} {verdict}/{name}")
                differing[name.rstrip("0123456789").removesuffix(".yaml")] += 1
for check, n in differing.most_common():
    print(f"{n} {check}")
print(f"{agreed} of {total} fixtures judged as upstream")
PY
