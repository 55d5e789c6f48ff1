#!/bin/sh
# Runs Argo CD's own Lua health customizations and their tests with gitplane,
# case by case, and prints PASS/FAIL per case and the totals.
#
#   scripts/compat/argocd-lua.sh ARGO_CD_CHECKOUT [GITPLANE]
#
# ARGO_CD_CHECKOUT is a local checkout of github.com/argoproj/argo-cd (its
# resource_customizations/ directory is read, nothing is copied). GITPLANE is
# the binary (default: target/release/gitplane, built if missing).
set -eu
. "$(dirname "$0")/common.sh"
dir="$checkout/resource_customizations"
[ -d "$dir" ] || { echo "$dir: not a directory" >&2; exit 2; }
# Exit status 1 only says some case failed; the lines say which.
"$gitplane" health test --all "$dir" || true
