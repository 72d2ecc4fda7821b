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
# The upstream stages (from the module) followed by the project's own, written to $1.
write_stages() {
  local src="$1" target="$2"
  {
    for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
                 pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
      echo "---"
      cat "$src/kustomize/stage/$stage.yaml"
    done
    for own in "$here"/kwok/stages/*.yaml; do
      echo "---"
      cat "$own"
    done
  } > "$target"
}

# Whether the cached stages file has every stage of tools/kwok/stages/ as committed now.
own_stages_current() {
  local own
  for own in "$here"/kwok/stages/*.yaml; do
    grep -qxF -- "$(grep -m1 '^  name: ' "$own")" "$out/stages.yaml" || return 1
  done
}

if [[ -x "$out/kwok" && -s "$out/stages.yaml" ]]; then
  if ! own_stages_current; then
    # A cache made before a project stage was added: rewrite the stages only (the binary is unchanged).
    src="$(cd "$mod" && go mod download -json "sigs.k8s.io/kwok@$version" | awk -F'"' '$2=="Dir" {print $4}')"
    write_stages "$src" "$out/stages.yaml.partial"
    mv "$out/stages.yaml.partial" "$out/stages.yaml"
    echo "kwok: stages updated in $out"
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
write_stages "$src" "$out.partial/stages.yaml"
"$out.partial/kwok" --version >/dev/null
publish "$out"
echo "kwok: $version ready in $out"
