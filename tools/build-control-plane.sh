#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the Go module proxy
# into a cache outside the checkout.
#
# The cache is keyed by the pinned versions (Kubernetes and etcd), so a fresh clone,
# CI and later sessions reuse the same binaries, and a change of pins builds a new set beside the old.
# devtools/controlplane/binaries.py computes the same directory; keep the two in step.
# Usage: tools/build-control-plane.sh [--print-dir]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/gobuild.sh"
mod="$here/k8s"
k8s_version="v1.35.4"
etcd_version="$(module_version "$mod/go.mod" go.etcd.io/etcd/server/v3)"
out="$cache_root/k8s-$k8s_version-etcd-$etcd_version"

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$out"
  exit 0
fi

binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)
have_all=1
for b in "${binaries[@]}"; do [[ -x "$out/$b" ]] || have_all=0; done
if [[ $have_all == 1 ]]; then
  echo "control plane: cached in $out"
  exit 0
fi

require_go "etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl" "$out"
mkdir -p "$out.partial"
# A cache made before the set grew keeps what it has: only the missing binaries are built.
for b in "${binaries[@]}"; do
  [[ -x "$out/$b" && ! -e "$out.partial/$b" ]] && cp -p "$out/$b" "$out.partial/$b"
done
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=35 \
-X k8s.io/client-go/pkg/version.gitVersion=$k8s_version"

cd "$mod"
echo "control plane: building Kubernetes $k8s_version and etcd $etcd_version with $(go version | cut -d' ' -f3)"
echo "control plane: first build takes many minutes on 2 cores; binaries go to $out"
step=0
for pkg in go.etcd.io/etcd/server/v3:etcd k8s.io/kubernetes/cmd/kubectl:kubectl \
           k8s.io/kubernetes/cmd/kube-apiserver:kube-apiserver \
           k8s.io/kubernetes/cmd/kube-controller-manager:kube-controller-manager \
           k8s.io/kubernetes/cmd/kube-scheduler:kube-scheduler; do
  step=$((step + 1))
  path="${pkg%%:*}"; name="${pkg##*:}"
  if [[ -x "$out.partial/$name" ]]; then
    echo "control plane: [$step/5] $name already built"
    continue
  fi
  go_build "control plane: [$step/5]" "$out.partial/$name" "$path" -tags selinux,notest -ldflags "$ldflags"
done
publish "$out"
echo "control plane: ready in $out"
