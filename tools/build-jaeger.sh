#!/usr/bin/env bash
# Build the pinned Jaeger v2 (the all-in-one `jaeger` binary) from the Go module proxy into a cache outside the checkout.
#
# The end-to-end tracing tests and the demo export OTLP to a real Jaeger and read traces back from its query API.
# The cache is keyed by the pinned module version (tools/jaeger/go.mod), so a fresh clone, CI and later sessions
# reuse the same binary. driftwarden/jaeger.py jaeger_bin_dir computes the same directory; keep the two in step.
# The UI assets are not embedded (that needs the separate jaeger-ui npm build): the query API, which is all the
# tests use, works without them, and the UI path serves Jaeger's placeholder page.
# Usage: tools/build-jaeger.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mod="$here/jaeger"
jaeger_version="$(awk '$1=="github.com/jaegertracing/jaeger" && $2 ~ /^v/ {print $2; exit}' "$mod/go.mod")"
if [[ -z "$jaeger_version" ]]; then
  echo "error: no github.com/jaegertracing/jaeger version in $mod/go.mod" >&2
  exit 2
fi

cache_root="${DRIFTWARDEN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwarden}"
out="$cache_root/jaeger-$jaeger_version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi

if [[ -x "$out/jaeger" ]]; then
  echo "jaeger: cached in $out"
  exit 0
fi

go_min="$(awk '$1=="go" {print $2; exit}' "$mod/go.mod")"
if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain (go $go_min or newer) is needed to build jaeger $jaeger_version from source," >&2
  echo "       and 'go' is not on PATH. Install Go, or put a prebuilt jaeger binary at $out/jaeger." >&2
  exit 2
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$out.partial"
ldflags="-s -w -X github.com/jaegertracing/jaeger/internal/version.latestVersion=$jaeger_version"

cd "$mod"
echo "jaeger: building jaeger $jaeger_version with $(go version | cut -d' ' -f3)"
echo "jaeger: first build takes many minutes on 2 cores (it links the whole OpenTelemetry Collector); the binary goes to $out"
start=$(date +%s)
# A progress line every minute, so a long silent compile is not mistaken for a hang.
( while sleep 60; do echo "jaeger:       still building ($(( $(date +%s) - start ))s)"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
go build -trimpath -ldflags "$ldflags" -o "$out.partial/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
kill $ticker 2>/dev/null || true
"$out.partial/jaeger" version >/dev/null 2>&1
rm -rf "$out"
mv "$out.partial" "$out"
echo "jaeger: $jaeger_version ready in $out ($(( $(date +%s) - start ))s)"
