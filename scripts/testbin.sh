#!/usr/bin/env bash
# Builds kube-apiserver and etcd for envtest from the Go module proxy, once, into a cache
# outside the repository, and prints the folder. Tests find it through KUBEBUILDER_ASSETS.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
version_of() { # module go.mod: the version that go.mod requires of module
  awk -v m="$1" '{for (i = 1; i < NF; i++) if ($i == m) {print $(i + 1); exit}}' "$2"
}
k8s_version=$(version_of k8s.io/kubernetes "$top/tools/testbin/apiserver/go.mod")
etcd_version=$(version_of go.etcd.io/etcd/server/v3 "$top/tools/testbin/etcd/go.mod")
dir="${CANOPY_TESTBIN_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/canopy/testbin/${k8s_version}-etcd${etcd_version}}"

if [[ -x "$dir/kube-apiserver" && -x "$dir/etcd" ]]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$dir"
echo "building kube-apiserver $k8s_version and etcd $etcd_version into $dir (several minutes cold)" >&2
(cd "$top/tools/testbin/apiserver" && go build -trimpath -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver)
(cd "$top/tools/testbin/etcd" && go build -trimpath -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3)
mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
mv "$dir/etcd.tmp" "$dir/etcd"
echo "$dir"
