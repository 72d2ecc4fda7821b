#!/usr/bin/env bash
# Build the pinned Helm CLI from the Go module proxy into a cache outside the checkout.
#
# The auditor renders Helm sources with `helm template`; tests need a real helm. The cache is keyed by the
# pinned version (tools/helm/go.mod), so a fresh clone, CI and later sessions reuse the same binary.
# driftwarden/settings.py helm_bin_dir computes the same directory; keep the two in step.
# Usage: tools/build-helm.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/gobuild.sh"
mod="$here/helm"
version="$(module_version "$mod/go.mod" helm.sh/helm/v3)"
out="$cache_root/helm-$version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi
if [[ -x "$out/helm" ]]; then
  echo "helm: cached in $out"
  exit 0
fi

require_go "helm $version" "$out"
mkdir -p "$out.partial"
cd "$mod"
echo "helm: building helm $version with $(go version | cut -d' ' -f3); the binary goes to $out"
go_build helm "$out.partial/helm" helm.sh/helm/v3/cmd/helm \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version"
"$out.partial/helm" version --short >/dev/null
publish "$out"
echo "helm: $version ready in $out"
