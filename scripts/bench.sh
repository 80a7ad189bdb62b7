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
echo "== tenant query proxy: expression enforcement"
go test -run '^$' -bench . -benchmem -benchtime "$benchtime" ./tenancy/promproxy/

echo
echo "== dashboards: render one project's dashboards; a sync pass that changes nothing"
go test -run '^$' -bench . -benchmem -benchtime 20x ./dashboards/...
