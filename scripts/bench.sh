#!/usr/bin/env bash
# Prints the performance figures the README reports. Every figure comes from
# a Go benchmark or a load run between two processes on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
export CANOPY_FIXTURES="${CANOPY_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
export CANOPY_TEST_POSTGRES_URL="${CANOPY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"

echo "== collector: parse and aggregate the 2.1 MB kubelet fixture, against textparse and expfmt"
go test -run '^$' -bench . -benchmem -benchtime "${BENCHTIME:-2s}" ./collector/parse/ ./collector/aggregate/
