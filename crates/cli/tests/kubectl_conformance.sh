#!/usr/bin/env bash
# kubectl conformance for the embedded API server: the real kubectl drives
# `gitplane apiserver` through the checklist in docs/apiserver.md and every
# answer is compared with what a real kube-apiserver gives.
#
# Usage: GITPLANE=target/debug/gitplane crates/cli/tests/kubectl_conformance.sh
# Every check runs even after a failure; the exit status is 1 if any failed.
set -u

GITPLANE=${GITPLANE:?set GITPLANE to the gitplane binary}
command -v kubectl >/dev/null || { echo "kubectl is not on PATH"; exit 2; }

work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
data="$work/data"
failures=0
server_pid=

start_server() {
    "$GITPLANE" apiserver --listen 127.0.0.1:0 --data-dir "$data" >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        grep -q '^kubeconfig:' "$work/server.log" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "server did not start:"; cat "$work/server.log"; exit 1
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    server_pid=
}

# A fresh discovery cache per run, as the issue asks: nothing carries over.
kc() { kubectl --kubeconfig "$data/kubeconfig" --cache-dir "$work/cache" "$@"; }

pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; shift; printf '     %s\n' "$@"; failures=$((failures + 1)); }

# check NAME PATTERN CMD...: CMD succeeds and its output matches the extended regex.
check() {
    local name=$1 pattern=$2; shift 2
    local out
    if out=$("$@" 2>&1) && grep -Eq -- "$pattern" <<<"$out"; then pass "$name"
    else fail "$name" "command: $*" "wanted: $pattern" "got: $out"; fi
}

# check_fails NAME PATTERN CMD...: CMD exits non-zero and its output matches.
check_fails() {
    local name=$1 pattern=$2; shift 2
    local out
    if ! out=$("$@" 2>&1) && grep -Eq -- "$pattern" <<<"$out"; then pass "$name"
    else fail "$name" "command: $*" "wanted failure matching: $pattern" "got: $out"; fi
}

# eventually NAME PATTERN CMD...: like check, retried for up to 10 seconds.
eventually() {
    local name=$1 pattern=$2; shift 2
    local out
    for _ in $(seq 1 50); do
        if out=$("$@" 2>&1) && grep -Eq -- "$pattern" <<<"$out"; then pass "$name"; return; fi
        sleep 0.2
    done
    fail "$name" "command: $*" "wanted (within 10s): $pattern" "got: $out"
}

f() { cat >"$work/$1"; echo "$work/$1"; }
get_cm_status() { kc get cm "$1" -n t1 2>&1 || true; }

start_server

# --- discovery -----------------------------------------------------------------
check "version reports minor 32" '"minor": "32"' kc version -o json
check "api-resources: namespaces" 'namespaces +ns +v1 +false +Namespace' kc api-resources
check "api-resources: configmaps" 'configmaps +cm +v1 +true +ConfigMap' kc api-resources
check "api-resources: crds" 'customresourcedefinitions +crd,crds +apiextensions.k8s.io/v1 +false +CustomResourceDefinition' kc api-resources
namespace_names() { kc get ns -o name | tr '\n' ' '; }
check "seeded namespaces" 'default.*kube-public.*kube-system' namespace_names
check "explain configmap.data" 'FIELD: *data <map\[string\]string>' kc explain configmap.data

# --- create, get, errors -----------------------------------------------------
ns=$(f ns.yaml <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: t1
EOF
)
cm=$(f cm.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo
data:
  a: "1"
EOF
)
check "apply namespace (strict validation via /openapi/v3)" 'namespace/t1 created' kc apply -f "$ns"
check "create configmap" 'configmap/demo created' kc create -f "$cm" -n t1
check_fails "create again is AlreadyExists" '\(AlreadyExists\).*configmaps "demo" already exists' kc create -f "$cm" -n t1
check "uid and resourceVersion" '^[0-9a-f-]{36} [0-9]+$' kc get cm demo -n t1 -o 'jsonpath={.metadata.uid} {.metadata.resourceVersion}'
check_fails "get missing is NotFound" '\(NotFound\).*configmaps "nope" not found' kc get cm nope -n t1
check_fails "create in a missing namespace" '\(NotFound\).*namespaces "missing" not found' kc create -f "$cm" -n missing
unknown=$(f unknown.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: bad
  nope: 1
data: {}
EOF
)
check_fails "unknown field rejected by strict validation" 'unknown field "metadata.nope"' kc create -f "$unknown" -n t1
check "create namespace (protobuf body)" 'namespace/t2 created' kc create namespace t2
check "create configmap --from-literal (protobuf body)" 'configmap/lit created' kc create configmap lit --from-literal=a=b -n t2
check "create secret generic (protobuf body)" 'secret/s created' kc create secret generic s --from-literal=k=v -n t2
check "secret data is base64" '^dg==$' kc get secret s -n t2 -o 'jsonpath={.data.k}'
check "create serviceaccount (protobuf body)" 'serviceaccount/robot created' kc create serviceaccount robot -n t2
check "create deployment (protobuf body)" 'deployment.apps/made created' kc create deployment made --image=nginx:1.27 -n t2
check "deployment from protobuf keeps its image" '^nginx:1.27$' kc get deploy made -n t2 -o 'jsonpath={.spec.template.spec.containers[0].image}'

# --- selectors -----------------------------------------------------------------
check "label" 'configmap/demo labeled' kc label cm demo -n t1 tier=x
check "label selector match" '^configmap/demo$' kc get cm -n t1 -l tier=x -o name
check "label selector no match" 'No resources found' kc get cm -n t1 -l tier=y
check "set-based selector" '^configmap/demo$' kc get cm -n t1 -l 'tier in (x,z),!gone' -o name
check "field selector" '^configmap/demo$' kc get cm -n t1 --field-selector metadata.name=demo -o name
check "field selector across namespaces" '^t1 +demo' kc get cm -A --field-selector metadata.namespace=t1,metadata.name=demo --no-headers
check "list with limit pages through (chunk-size 1)" 'demo' kc get cm -n t1 --chunk-size=1 -o name

# --- patches -------------------------------------------------------------------
check "json patch" 'configmap/demo patched' kc patch cm demo -n t1 --type=json -p '[{"op":"add","path":"/data/c","value":"3"}]'
rv_before=$(kc get cm demo -n t1 -o 'jsonpath={.metadata.resourceVersion}')
check "merge patch with no change" 'patched \(no change\)' kc patch cm demo -n t1 --type=merge -p '{"data":{"c":"3"}}'
check "no-op keeps resourceVersion" "^$rv_before\$" kc get cm demo -n t1 -o 'jsonpath={.metadata.resourceVersion}'
check "strategic merge patch" 'configmap/demo patched' kc patch cm demo -n t1 -p '{"data":{"d":"4"}}'
check "patched data" '^1 3 4$' kc get cm demo -n t1 -o 'jsonpath={.data.a} {.data.c} {.data.d}'

deploy=$(f deploy.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: t1
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.26
      - name: side
        image: busybox:1.36
        env:
        - {name: A, value: "1"}
EOF
)
check "client-side apply deployment" 'deployment.apps/web created' kc apply -f "$deploy"
sed -e 's/nginx:1.26/nginx:1.27/' -e 's/- {name: A, value: "1"}/- {name: A, value: "1"}\n        - {name: B, value: "2"}/' "$deploy" >"$work/deploy2.yaml"
check "client-side apply changed deployment" 'deployment.apps/web configured' kc apply -f "$work/deploy2.yaml"
check "SMP keeps the sibling container" '^web side$' kc get deploy web -n t1 -o 'jsonpath={.spec.template.spec.containers[*].name}'
check "changed image and added env" '^nginx:1.27 A B$' kc get deploy web -n t1 -o 'jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[1].env[*].name}'
check "generation counts spec changes" '^2$' kc get deploy web -n t1 -o 'jsonpath={.metadata.generation}'

# --- server-side apply ------------------------------------------------------------
cm2=$(f cm2.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  namespace: t1
data:
  a: "1"
EOF
)
check "server-side apply" 'configmap/x serverside-applied' kc apply --server-side -f "$cm2"
check "managed fields shown" 'manager: kubectl' kc get cm x -n t1 -o yaml --show-managed-fields
check "managed fields: Apply of f:data" 'operation: Apply' kc get cm x -n t1 -o yaml --show-managed-fields
check "managed fields: f:a" 'f:a: \{\}' kc get cm x -n t1 -o yaml --show-managed-fields
managed_fields_lines() { kc get cm x -n t1 -o yaml | grep -c managedFields || true; }
check "managed fields hidden by default" '^0$' managed_fields_lines
check "patch takes ownership" 'configmap/x patched' kc patch cm x -n t1 --type=merge -p '{"data":{"a":"9"}}'
check_fails "re-apply conflicts" 'Apply failed with 1 conflict: conflict with "kubectl-patch"' kc apply --server-side -f "$cm2"
check "force-conflicts" 'configmap/x serverside-applied' kc apply --server-side --force-conflicts -f "$cm2"
check "forced value" '^1$' kc get cm x -n t1 -o 'jsonpath={.data.a}'
sed -e 's/  a: "1"/  b: "2"/' "$cm2" >"$work/cm2b.yaml"
check "apply without a field" 'serverside-applied' kc apply --server-side -f "$work/cm2b.yaml"
check "field the manager stopped applying is removed" '^\{"b":"2"\}$' kc get cm x -n t1 -o 'jsonpath={.data}'

# --- diff, dry run, replace -------------------------------------------------------
sed -e 's/  b: "2"/  b: "3"/' "$work/cm2b.yaml" >"$work/changed.yaml"
kc diff -f "$work/changed.yaml" >"$work/diff.out" 2>&1; rc=$?
if [ $rc -eq 1 ] && grep -q '^-  b: "2"' "$work/diff.out" && grep -q '^+  b: "3"' "$work/diff.out" \
    && ! grep -Eq '^[-+].*(resourceVersion|generation|managedFields)' "$work/diff.out"; then pass "diff shows data only, exit 1"
else fail "diff shows data only, exit 1" "exit $rc" "$(cat "$work/diff.out")"; fi
kc diff -f "$work/cm2b.yaml" >"$work/diff0.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && [ ! -s "$work/diff0.out" ]; then pass "diff of unchanged file exit 0"
else fail "diff of unchanged file exit 0" "exit $rc" "$(cat "$work/diff0.out")"; fi
new=$(f new.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: dry
  namespace: t1
EOF
)
check "server dry run create" 'configmap/dry created \(server dry run\)' kc apply --dry-run=server -f "$new"
check_fails "dry run persisted nothing" 'NotFound' kc get cm dry -n t1
rv=$(kc get cm x -n t1 -o 'jsonpath={.metadata.resourceVersion}')
check "server dry run patch" 'configmap/x patched' kc patch cm x -n t1 --dry-run=server --type=merge -p '{"data":{"z":"1"}}'
check "dry run kept resourceVersion" "^$rv\$" kc get cm x -n t1 -o 'jsonpath={.metadata.resourceVersion}'
kc get cm x -n t1 -o yaml >"$work/stale.yaml"
kc patch cm x -n t1 --type=merge -p '{"data":{"y":"1"}}' >/dev/null
check_fails "replace with a stale object is Conflict" '\(Conflict\).*the object has been modified' kc replace -f "$work/stale.yaml"

# --- watch -----------------------------------------------------------------------------
kc get cm -n t1 -w --output-watch-events --watch-only --no-headers >"$work/watch.out" 2>&1 &
watch_pid=$!
sleep 1
kc create configmap w -n t1 --from-literal=a=1 >/dev/null
kc patch cm w -n t1 --type=merge -p '{"data":{"a":"2"}}' >/dev/null
kc delete cm w -n t1 >/dev/null
for _ in $(seq 1 50); do grep -q DELETED "$work/watch.out" && break; sleep 0.2; done
kill $watch_pid 2>/dev/null; wait $watch_pid 2>/dev/null
if awk '$2 == "w" {print $1}' "$work/watch.out" | tr '\n' ' ' | grep -q '^ADDED MODIFIED DELETED $'; then
    pass "watch sees ADDED, MODIFIED, DELETED in order"
else fail "watch sees ADDED, MODIFIED, DELETED in order" "$(cat "$work/watch.out")"; fi

# --- CRDs ---------------------------------------------------------------------------------
crd=$(f crd.yaml <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string, default: blue}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
EOF
)
check "apply CRD" 'customresourcedefinition.apiextensions.k8s.io/widgets.example.com created' kc apply -f "$crd"
check "CRD Established" 'condition met' kc wait --for=condition=Established crd/widgets.example.com --timeout=10s
check "CRD in api-resources" 'widgets +wd +example.com/v1 +true +Widget' kc api-resources --api-group=example.com
wrong=$(f wrong-crd.yaml <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: wrong.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: things, kind: Thing}
  versions:
  - {name: v1, served: true, storage: true}
EOF
)
check_fails "CRD with a mismatched name is Invalid" 'metadata.name: Invalid value: "wrong.example.com"' kc apply -f "$wrong"
cel=$(f cel-crd.yaml <<'EOF'
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-validations:
        - rule: "self.metadata.name.size() < 10"
EOF
)
check "CEL rules are accepted with a warning that says they are not enforced" 'Warning: x-kubernetes-validations \(CEL\) rules are stored but not enforced' kc apply -f "$cel"
bad=$(f bad-widget.yaml <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w0, namespace: t1}
spec: {size: 2, shape: round}
EOF
)
check_fails "custom resource with an unknown field" 'unknown field "spec.shape"' kc apply -f "$bad"
small=$(f small-widget.yaml <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w0, namespace: t1}
spec: {size: 0}
EOF
)
check_fails "custom resource violating minimum" 'spec.size.*should be greater than or equal to 1' kc apply -f "$small"
good=$(f widget.yaml <<'EOF'
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1, namespace: t1}
spec: {size: 3}
EOF
)
check "create custom resource" 'widget.example.com/w1 created' kc apply -f "$good"
check "printer columns" 'NAME +SIZE +AGE' kc get widgets -n t1
check "printer column value" '^w1 +3 ' kc get wd -n t1 --no-headers
check "schema default applied" '^blue$' kc get widget w1 -n t1 -o 'jsonpath={.spec.color}'
check "status subresource patch" 'widget.example.com/w1 patched' kc patch widget w1 -n t1 --subresource=status --type=merge -p '{"status":{"conditions":[{"type":"Ready","status":"True"}]}}'
check "wait for custom condition" 'condition met' kc wait --for=condition=Ready widget/w1 -n t1 --timeout=5s
check "status patch kept generation" '^1$' kc get widget w1 -n t1 -o 'jsonpath={.metadata.generation}'
check "main resource ignores status" 'widget.example.com/w1 patched' kc patch widget w1 -n t1 --type=merge -p '{"status":{"conditions":[]},"spec":{"size":4}}'
check "status survived a main-resource patch" '^Ready 2$' kc get widget w1 -n t1 -o 'jsonpath={.status.conditions[0].type} {.metadata.generation}'

# --- finalizers and garbage collection --------------------------------------------------
fin=$(f fin.yaml <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: fin
  namespace: t1
  finalizers: ["example.com/hold"]
EOF
)
kc apply -f "$fin" >/dev/null
check "delete with a finalizer" 'configmap "fin" deleted' kc delete cm fin -n t1 --wait=false
check "deletionTimestamp set" '^[0-9]{4}-' kc get cm fin -n t1 -o 'jsonpath={.metadata.deletionTimestamp}'
check "clear finalizers" 'patched' kc patch cm fin -n t1 --type=merge -p '{"metadata":{"finalizers":null}}'
eventually "object gone after finalizers cleared" 'NotFound' get_cm_status fin

owner_uid() { kc get cm "$1" -n t1 -o 'jsonpath={.metadata.uid}'; }
make_pair() {
    kc create configmap "$1" -n t1 >/dev/null
    cat <<EOF | kc apply -f - >/dev/null
apiVersion: v1
kind: ConfigMap
metadata:
  name: $2
  namespace: t1
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: $1, uid: $(owner_uid "$1")}
EOF
}
make_pair o d
check "delete owner" 'configmap "o" deleted' kc delete cm o -n t1
eventually "dependent collected" 'NotFound' get_cm_status d
make_pair o2 d2
check "delete owner orphaning" 'configmap "o2" deleted' kc delete cm o2 -n t1 --cascade=orphan
check "orphan survives without ownerReferences" '^d2:$' kc get cm d2 -n t1 -o 'jsonpath={.metadata.name}:{.metadata.ownerReferences}'
make_pair o3 d3
check "delete owner in the foreground" 'configmap "o3" deleted' kc delete cm o3 -n t1 --cascade=foreground
eventually "foreground deletion removes the dependent" 'NotFound' get_cm_status d3

# --- workloads ---------------------------------------------------------------------------------
check "scale" 'deployment.apps/web scaled' kc scale deploy web -n t1 --replicas=3
check "rollout status" 'successfully rolled out' kc rollout status deploy/web -n t1 --timeout=20s
check "wait Available" 'condition met' kc wait --for=condition=Available deploy/web -n t1 --timeout=20s
eventually "three simulated pods ready" '^true true true$' kc get pods -n t1 -l app=web -o 'jsonpath={.items[*].status.containerStatuses[0].ready}'
check "simulated pods say so" 'gitplane.dev/simulated' kc get pods -n t1 -l app=web -o yaml
check "scale subresource" '"kind":"Scale".*"replicas":3' kc get --raw /apis/apps/v1/namespaces/t1/deployments/web/scale

# --- restart on the same data dir -----------------------------------------------------------------
stop_server
start_server
check "objects survive a restart" 'widget.example.com/w1' kc get widgets -n t1 -o name
check "configmaps survive a restart" '^2$' kc get cm x -n t1 -o 'jsonpath={.data.b}'

# --- namespace deletion -------------------------------------------------------------------------
check "delete namespace" 'namespace "t1" deleted' kc delete ns t1 --timeout=30s
check_fails "namespace gone" 'NotFound' kc get ns t1
check "its objects are gone" 'No resources found' kc get cm,widgets,deploy -n t1

echo
if [ $failures -eq 0 ]; then echo "all kubectl conformance checks passed"; exit 0; fi
echo "$failures kubectl conformance check(s) failed"; echo "server log:"; tail -30 "$work/server.log"; exit 1
