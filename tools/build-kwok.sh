#!/usr/bin/env bash
# Build the pinned kwok from the Go module proxy into a cache outside the checkout, with the Stage objects it
# needs, taken from the same module version: Nodes become Ready and keep a Lease, Pods become Running and
# Ready, Job Pods complete, deleted Pods go away; then driftwarden's own stages (tools/kwok/stages/*.yaml:
# a Pod labelled driftwarden.io/kwok-fail=true fails). No container runs.
#
# The cache is keyed by the pinned version (tools/kwok/go.mod), so a fresh clone, CI and later sessions reuse it.
# driftwarden/settings.py kwok_bin_dir computes the same directory; keep the two in step.
# Usage: tools/build-kwok.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/gobuild.sh"
mod="$here/kwok"
version="$(module_version "$mod/go.mod" sigs.k8s.io/kwok)"
out="$cache_root/kwok-$version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi
# kwok's own stages (from the module), then a marker line, then the project's (tools/kwok/stages/*.yaml).
marker="# driftwarden's own stages follow (tools/kwok/stages/)"
upstream_stages() {
  local src="$1" stage
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
               pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"
    cat "$src/kustomize/stage/$stage.yaml"
  done
}
own_stages() {
  local own
  echo "$marker"
  for own in "$here"/kwok/stages/*.yaml; do
    echo "---"
    cat "$own"
  done
}

if [[ -x "$out/kwok" && -s "$out/stages.yaml" ]]; then
  # A cache made before the project's stages changed gets them rewritten after kwok's (no Go needed).
  current="$(awk -v m="$marker" '$0 == m {exit} {print}' "$out/stages.yaml"; own_stages)"
  if [[ "$current" != "$(cat "$out/stages.yaml")" ]]; then
    printf '%s\n' "$current" > "$out/stages.yaml.partial"
    mv "$out/stages.yaml.partial" "$out/stages.yaml"
    echo "kwok: the project's stages updated in $out/stages.yaml"
  fi
  echo "kwok: cached in $out"
  exit 0
fi

require_go "kwok $version" "$out"
mkdir -p "$out.partial"
cd "$mod"
echo "kwok: building kwok $version with $(go version | cut -d' ' -f3); the binary goes to $out"
go_build kwok "$out.partial/kwok" sigs.k8s.io/kwok/cmd/kwok -ldflags "-s -w"
src="$(go mod download -json "sigs.k8s.io/kwok@$version" | awk -F'"' '$2=="Dir" {print $4}')"
{ upstream_stages "$src"; own_stages; } > "$out.partial/stages.yaml"
"$out.partial/kwok" --version >/dev/null
publish "$out"
echo "kwok: $version ready in $out"
