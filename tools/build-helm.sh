#!/usr/bin/env bash
# Build the pinned Helm CLI from the Go module proxy into a cache outside the checkout.
#
# The auditor renders Helm sources with `helm template`; tests need a real helm. The cache is keyed by the
# pinned version (tools/helm/go.mod), so a fresh clone, CI and later sessions reuse the same binary.
# driftwarden/settings.py helm_bin_dir computes the same directory; keep the two in step.
# Usage: tools/build-helm.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/helm"
helm_version="$(awk '$1=="helm.sh/helm/v3" && $2 ~ /^v/ {print $2; exit}' "$mod/go.mod")"
if [[ -z "$helm_version" ]]; then
  echo "error: no helm.sh/helm/v3 version in $mod/go.mod" >&2
  exit 2
fi

cache_root="${DRIFTWARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwarden}"
out="$cache_root/helm-$helm_version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi

if [[ -x "$out/helm" ]]; then
  echo "helm: cached in $out"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain (go 1.25 or newer) is needed to build helm $helm_version from source," >&2
  echo "       and 'go' is not on PATH. Install Go, or put a prebuilt helm binary at $out/helm." >&2
  exit 2
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$out.partial"
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"

cd "$mod"
echo "helm: building helm $helm_version with $(go version | cut -d' ' -f3)"
echo "helm: first build takes a few minutes on 2 cores; the binary goes to $out"
start=$(date +%s)
# A progress line every minute, so a long silent compile is not mistaken for a hang.
( while sleep 60; do echo "helm:       still building ($(( $(date +%s) - start ))s)"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
go build -trimpath -ldflags "$ldflags" -o "$out.partial/helm" helm.sh/helm/v3/cmd/helm
kill $ticker 2>/dev/null || true
"$out.partial/helm" version --short >/dev/null
rm -rf "$out"
mv "$out.partial" "$out"
echo "helm: $helm_version ready in $out ($(( $(date +%s) - start ))s)"
