#!/usr/bin/env bash
# Builds a real kube-apiserver for the Kubernetes e2e tier, once per machine, and links it into the
# clone: `build-kube-apiserver.sh LINK` (make kube-apiserver passes .cache/kube-apiserver).
#
# Debian packages no kube-apiserver, so it is built from the k8s.io/kubernetes Go module as the Go
# module proxy serves it. That module's go.mod points every k8s.io/* staging module at
# ./staging/src/... (a directory the published module does not contain) and requires them at
# v0.0.0; we drop those replaces and require the published staging modules at the matching
# v0.KUBE_MINOR.PATCH instead (the v0.0.0-... pseudo-versions of kube-openapi, utils and
# sigs.k8s.io/json are real published versions and stay).
#
# The binary lives outside the clone, in ${GRAYLANE_CACHE:-~/.cache/graylane}, so fresh clones on
# the same machine (CI) reuse it; a second run is instant. The first build takes 8.5 CPU-minutes
# (~5 min on 2 idle cores, 20 on busy ones; nice'd, -p 2) and needs Go >= 1.23 (GO=/path/to/go
# picks one; /usr/local/go/bin/go is tried when no go is on PATH). Concurrent runs from several
# clones wait on one lock.
set -euo pipefail

KUBE_VERSION=1.32.3
link=${1:-}
case "$link" in ""|/*) ;; *) link=$PWD/$link ;; esac   # absolute: the build cds away
cache=${GRAYLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/graylane}
out=$cache/kube-apiserver-v$KUBE_VERSION

link_it() {
  [ -n "$link" ] || return 0
  mkdir -p "$(dirname "$link")"
  ln -sfn "$out" "$link"
}

if [ -x "$out" ]; then link_it; exit 0; fi

go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [ ! -x "$go" ] && ! command -v "$go" >/dev/null 2>&1; then
  echo "error: building kube-apiserver v$KUBE_VERSION (the Kubernetes e2e tier) needs Go >= 1.23, and no go was found." >&2
  echo "       Install Go >= 1.23 (https://go.dev/dl/, e.g. into /usr/local/go) and put it on PATH, or set GO=/path/to/go." >&2
  exit 1
fi
go_version=$("$go" env GOVERSION)   # e.g. go1.26.8
if ! printf '%s\n' go1.23 "$go_version" | sort -V -C; then
  echo "error: building kube-apiserver v$KUBE_VERSION needs Go >= 1.23; $go is $go_version. Install a newer Go (https://go.dev/dl/) or set GO=/path/to/go." >&2
  exit 1
fi

mkdir -p "$cache"
exec 9>"$cache/.kube-apiserver.lock"
if ! flock -n 9; then
  echo "waiting for another build of kube-apiserver v$KUBE_VERSION ($cache/.kube-apiserver.lock)..."
  flock 9
fi
if [ -x "$out" ]; then link_it; exit 0; fi   # another clone built it while we waited

# Never let go fetch another toolchain (go.mod says go 1.23.0; a newer local Go is fine), and
# ignore any go.work or GOFLAGS of the caller's.
export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0

start=$(date +%s)
echo "building kube-apiserver v$KUBE_VERSION into $out with $go_version (once per machine; 5-20 min on 2 cores)..."
module_dir=$("$go" mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$module_dir" ] || { echo "error: go mod download k8s.io/kubernetes@v$KUBE_VERSION gave no module directory" >&2; exit 1; }

src=$(mktemp -d "$cache/kubernetes-v$KUBE_VERSION-src.XXXXXX")
trap 'rm -rf "$src" "$out.tmp"' EXIT
trap 'exit 130' INT; trap 'exit 143' TERM
cp -r "$module_dir/." "$src"
chmod -R u+w "$src"   # the module cache is read-only
cd "$src"
export GOFLAGS="-mod=mod -buildvcs=false"   # go.sum gains the published staging modules' sums

# Every `k8s.io/X => ./staging/src/k8s.io/X` replace: drop it, and require k8s.io/X at the
# published v0.MINOR.PATCH where go.mod requires it (at v0.0.0).
staging_version=v0.${KUBE_VERSION#*.}
edits=()
while read -r mod; do
  edits+=("-dropreplace=$mod")
  if grep -qE "^[[:space:]]+$mod v0\.0\.0( |$)" go.mod; then edits+=("-require=$mod@$staging_version"); fi
done < <(sed -n 's|^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*|\1|p' go.mod)
[ ${#edits[@]} -gt 0 ] || { echo "error: no ./staging replaces found in k8s.io/kubernetes@v$KUBE_VERSION's go.mod" >&2; exit 1; }
"$go" mod edit "${edits[@]}"

# The version the binary and its /version endpoint report (what hack/lib/version.sh would set).
ldflags="-s -w"
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=v$KUBE_VERSION -X $pkg.gitMajor=${KUBE_VERSION%%.*}"
  ldflags+=" -X $pkg.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done

# Shared 2-core machines: low priority, two packages at a time.
nice -n 10 "$go" build -p 2 -trimpath -ldflags "$ldflags" -o "$out.tmp" ./cmd/kube-apiserver
"$out.tmp" --version >/dev/null
mv "$out.tmp" "$out"
echo "built $out ($(( $(stat -c %s "$out") / 1024 / 1024 )) MiB, $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s): $("$out" --version)"
link_it
