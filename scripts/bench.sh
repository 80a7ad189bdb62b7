#!/usr/bin/env bash
# Prints the performance figures the README reports. Every figure comes from
# a Go benchmark or from a load run between separate processes on loopback.
# BENCHTIME sets the Go benchmarks' -benchtime (default 2s).
set -euo pipefail
cd "$(dirname "$0")/.."
export CANOPY_FIXTURES="${CANOPY_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
export CANOPY_TEST_POSTGRES_URL="${CANOPY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
benchtime="${BENCHTIME:-2s}"

echo "== API: authenticated GET /api/v1/projects (20 projects), 50 connections, vs a bare net/http handler"
go run ./internal/loadtest/cmd/loadtest -postgres "$CANOPY_TEST_POSTGRES_URL"

echo
echo "== store: ListProjects (20 projects) on SQLite and PostgreSQL"
go test -run '^$' -bench ListProjects -benchmem -benchtime "$benchtime" ./tenancy/sqlstore/

echo
echo "== collector: parse and aggregate the 2.1 MB kubelet fixture, against textparse and expfmt"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./collector/parse/ ./collector/aggregate/

echo
echo "== collector against Prometheus on the same work: 20 stand-in kubelets serve the 2.1 MB fixture every 5 s"
proms=/usr/bin/prometheus
prom3="${XDG_CACHE_HOME:-$HOME/.cache}/canopy/prometheus/v0.316.0/prometheus"
if [[ -x "$prom3" ]]; then
  proms="$proms,$prom3"
else
  echo "(Prometheus 3 not built: scripts/prometheus3.sh builds it once; comparing with Debian's 2.42 only)"
fi
make build >/dev/null   # the whole binary is measured too, beside the collector alone
go run ./internal/benchcollector -mode versus -duration "${VERSUS_DURATION:-60s}" \
  -runs "${VERSUS_RUNS:-1}" -prometheus "$proms" -canopy bin/canopy

echo
echo "== collector at scale: 1,000 nodes with 110 pods each through the static targets file"
go run ./internal/benchcollector -mode scale -nodes 1000 -pods 110 -cycles 5

echo
echo "== quota metrics: one scrape over 1,000 namespaces (real API server)"
KUBEBUILDER_ASSETS="$(scripts/testbin.sh)" go test -run '^$' -bench . -benchmem \
  -benchtime "$benchtime" ./collector/quota/

echo
echo "== tenant query proxy: expression enforcement"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./tenancy/promproxy/

echo
echo "== reconciler: one pass over a converged project with three apps (real API server)"
KUBEBUILDER_ASSETS="$(scripts/testbin.sh)" go test -run '^$' -bench ConvergedPass -benchmem \
  -benchtime "$benchtime" ./tenancy/reconcile/

echo
echo "== dashboards: render one project's dashboards; a sync pass that changes nothing"
go test -run '^$' -bench . -benchmem -benchtime 20x ./dashboards/...
