#!/usr/bin/env bash
# Build the pinned OPA (Open Policy Agent) from the Go module proxy into a cache outside the checkout.
#
# Benchmarks only: benchmarks/opa_admission.py serves a Rego policy that decides the webhook's
# managed-label + identity rule, to set driftwarden's admission figures beside OPA's (docs/benchmarks.md).
# The cache is keyed by the pinned version (tools/opa/go.mod); benchmarks/opa_admission.py computes the same
# directory. Usage: tools/build-opa.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/gobuild.sh"
mod="$here/opa"
version="$(module_version "$mod/go.mod" github.com/open-policy-agent/opa)"
out="$cache_root/opa-$version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi
if [[ -x "$out/opa" ]]; then
  echo "opa: cached in $out"
  exit 0
fi

require_go "opa $version" "$out"
mkdir -p "$out.partial"
cd "$mod"
echo "opa: building opa $version with $(go version | cut -d' ' -f3); the binary goes to $out"
go_build opa "$out.partial/opa" github.com/open-policy-agent/opa \
  -ldflags "-s -w -X github.com/open-policy-agent/opa/v1/version.Version=${version#v}"
"$out.partial/opa" version >/dev/null
publish "$out"
echo "opa: $version ready in $out"
