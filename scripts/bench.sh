#!/usr/bin/env bash
# make bench: Go micro-benchmarks, then the produce benchmark of floe (on
# versitygw) against kfake in one run. Figures go to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
go test -run XXX -bench . -benchmem ./internal/... ./broker/... ./tabletopic/...
export FLOE_VERSITYGW="$root/bin/versitygw"
(cd test/bench && go run . -floe "$root/bin/floe" -duration "${BENCH_DURATION:-20s}")
(cd test/bench && go run ./freshness -floe "$root/bin/floe" -duration "${FRESHNESS_DURATION:-60s}")
(cd test/bench && go run ./cluster -floe "$root/bin/floe" -duration "${BENCH_DURATION:-20s}")
