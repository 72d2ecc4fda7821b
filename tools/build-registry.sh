#!/usr/bin/env bash
# Build the pinned CNCF Distribution registry (an OCI registry) from the Go module proxy into a cache outside
# the checkout. Only tests use it: they push Helm charts to it and render spec.source.chart with an oci://
# repoURL (tests/support/charts.py). Measured cold on the 2-core machine: about 13 minutes (it links the
# storage drivers of every cloud); later runs reuse the cache at once.
#
# The cache is keyed by the pinned version (tools/registry/go.mod); tests/support/charts.py registry_bin_dir
# computes the same directory; keep the two in step.
# Usage: tools/build-registry.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/gobuild.sh"
mod="$here/registry"
version="$(module_version "$mod/go.mod" github.com/distribution/distribution/v3)"
out="$cache_root/registry-$version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi
if [[ -x "$out/registry" ]]; then
  echo "registry: cached in $out"
  exit 0
fi

require_go "the OCI registry $version" "$out"
mkdir -p "$out.partial"
cd "$mod"
echo "registry: building distribution $version with $(go version | cut -d' ' -f3); the binary goes to $out"
go_build registry "$out.partial/registry" github.com/distribution/distribution/v3/cmd/registry -ldflags "-s -w"
"$out.partial/registry" --version >/dev/null
publish "$out"
echo "registry: $version ready in $out"
