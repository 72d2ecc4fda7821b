#!/usr/bin/env bash
# Build the pinned Jaeger v2 (the all-in-one `jaeger` binary) from the Go module proxy into a cache outside
# the checkout.
#
# The end-to-end tracing tests and the benchmark export OTLP to a real Jaeger and read traces back from its
# query API. The cache is keyed by the pinned module version (tools/jaeger/go.mod), so a fresh clone, CI and
# later sessions reuse the same binary. devtools/jaeger.py jaeger_bin_dir computes the same directory;
# keep the two in step. The UI assets are not embedded (that needs the separate jaeger-ui npm build): the
# query API, which is all the tests use, works without them, and the UI path serves Jaeger's placeholder.
# Usage: tools/build-jaeger.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/gobuild.sh"
mod="$here/jaeger"
version="$(module_version "$mod/go.mod" github.com/jaegertracing/jaeger)"
out="$cache_root/jaeger-$version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi
if [[ -x "$out/jaeger" ]]; then
  echo "jaeger: cached in $out"
  exit 0
fi

require_go "jaeger $version" "$out"
mkdir -p "$out.partial"
cd "$mod"
echo "jaeger: building jaeger $version with $(go version | cut -d' ' -f3); the binary goes to $out"
echo "jaeger: the first build takes many minutes on 2 cores (it links the whole OpenTelemetry Collector)"
go_build jaeger "$out.partial/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger \
  -ldflags "-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$version"
"$out.partial/jaeger" version >/dev/null 2>&1
publish "$out"
echo "jaeger: $version ready in $out"
