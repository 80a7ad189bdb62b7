#!/usr/bin/env bash
# The main job end to end on real parts (see internal/e2e). Needs
# KUBEBUILDER_ASSETS (make e2e sets it), PostgreSQL and Prometheus as for make test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CANOPY_FIXTURES="${CANOPY_FIXTURES:-$(cd .. && pwd)/shared/fixtures}"
export CANOPY_TEST_POSTGRES_URL="${CANOPY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
go test -tags e2e -count=1 -v -timeout 20m -run TestEndToEnd ./internal/e2e/ "$@"
