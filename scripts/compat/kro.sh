#!/bin/sh
# Replays kro's own corpus against gitplane: the ResourceGraphDefinitions of
# examples/ (accepted by `gitplane graph check`, or the error with its line)
# and the steps of test/e2e/chainsaw/*/chainsaw-test.yaml, offline
# (`graph check`, `render --expand-graphs`) and live (`gitplane apiserver`
# with `gitplane graph run`, through kubectl). Prints PASS/FAIL/SKIP per case
# and the totals of each part.
#
#   scripts/compat/kro.sh KRO_CHECKOUT [GITPLANE] [PART...]
#
# KRO_CHECKOUT is a local checkout of github.com/kubernetes-sigs/kro; nothing
# is copied. GITPLANE defaults to target/release/gitplane (built if
# missing). PART is any of examples, offline, live (default: all three);
# `--test NAME` limits the chainsaw parts to one test. Needs python3 with
# PyYAML, and kubectl for the live part.
set -eu
. "$(dirname "$0")/common.sh"
[ $# -ge 2 ] && shift 2 || shift $#
[ -d "$checkout/test/e2e/chainsaw" ] || { echo "$checkout/test/e2e/chainsaw: not found" >&2; exit 2; }
if [ $# -eq 0 ]; then set -- examples offline live; fi
exec python3 "$(dirname "$0")/kro.py" "$checkout" "$gitplane" "$@"
