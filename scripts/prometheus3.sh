#!/usr/bin/env bash
# Builds Prometheus 3 (github.com/prometheus/prometheus v0.316.0, cmd/prometheus)
# from the Go module proxy, once, into a cache outside the repository, and
# prints the binary's path. make bench compares Canopy with it when it is
# there; the build takes about 25 minutes on 2 cores, so make bench never
# starts it by itself.
set -euo pipefail
version="${PROMETHEUS3_VERSION:-v0.316.0}"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/canopy/prometheus/$version"
if [[ -x "$dir/prometheus" ]]; then
  echo "$dir/prometheus"
  exit 0
fi
mkdir -p "$dir/src"
cd "$dir/src"
cat > go.mod <<MOD
module canopy.dev/prometheus-build

go 1.26.0
MOD
cat > tools.go <<'SRC'
//go:build tools

package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
SRC
echo "building Prometheus $version into $dir (about 25 minutes cold)" >&2
go get "github.com/prometheus/prometheus@$version" >&2
go mod tidy >&2
nice go build -trimpath -o "$dir/prometheus.tmp" github.com/prometheus/prometheus/cmd/prometheus
mv "$dir/prometheus.tmp" "$dir/prometheus"
echo "$dir/prometheus"
