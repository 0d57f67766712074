#!/usr/bin/env bash
# Gateway API's standard-channel CRDs for the Kubernetes e2e tier, once per machine, linked into the
# clone: `fetch-gateway-api-crds.sh LINK` (make gateway-api-crds passes .cache/gateway-api-crds).
#
# They come from the sigs.k8s.io/gateway-api Go module as the Go module proxy serves it (its
# config/crd/standard/*.yaml), so the test API server validates the generated HTTPRoutes with the
# real schemas and CEL rules. Kept in ${GRAYLANE_CACHE:-~/.cache/graylane}, like kube-apiserver.
set -euo pipefail

VERSION=v1.6.3
link=${1:-}
case "$link" in ""|/*) ;; *) link=$PWD/$link ;; esac
cache=${GRAYLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/graylane}
out=$cache/gateway-api-$VERSION

if [ ! -f "$out/.complete" ]; then
  go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
  if [ ! -x "$go" ] && ! command -v "$go" >/dev/null 2>&1; then
    echo "error: fetching the Gateway API CRDs $VERSION needs Go (its module proxy), and no go was found; set GO=/path/to/go." >&2
    exit 1
  fi
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # Outside any module: go mod download fetches into the module cache and names the directory.
  dir=$(cd "$work" && "$go" mod download -json "sigs.k8s.io/gateway-api@$VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$dir" ] || [ ! -d "$dir/config/crd/standard" ]; then
    echo "error: go mod download sigs.k8s.io/gateway-api@$VERSION gave no config/crd/standard" >&2
    exit 1
  fi
  mkdir -p "$out"
  cp "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$out/"
  chmod u+w "$out"/*.yaml
  touch "$out/.complete"
  echo "fetched the Gateway API $VERSION standard CRDs into $out"
fi
if [ -n "$link" ]; then
  mkdir -p "$(dirname "$link")"
  ln -sfn "$out" "$link"
fi
