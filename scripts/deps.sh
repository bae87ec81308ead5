#!/usr/bin/env bash
# Installs what floe's tests need on a fresh Debian machine. Idempotent:
# anything already present is left alone. In CI a tool that cannot be
# installed is an error; tests never skip for a missing tool.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mkdir -p bin

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# A real S3 server for integration tests.
if [ ! -x bin/versitygw ]; then
  echo "deps: building versitygw v1.8.0 into ./bin (about 2 minutes)"
  GOBIN="$root/bin" go install github.com/versity/versitygw/cmd/versitygw@v1.8.0
fi

# Kafka clients written by others, and PostgreSQL for the catalog tests.
need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
/usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null || need_apt+=(python3-confluent-kafka)
/usr/bin/python3 -c "import requests" 2>/dev/null || need_apt+=(python3-requests)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql-15)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: apt-get install ${need_apt[*]}"
  sudo_ apt-get update -qq
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# Node packages used by tests (each directory has its package.json and lock).
for d in test/compat/js schema/testdata/js catalog/testdata/js query-examples/duckdb; do
  if [ -f "$d/package.json" ] && [ ! -d "$d/node_modules" ]; then
    echo "deps: npm ci in $d"
    (cd "$d" && { [ -f package-lock.json ] && npm ci --no-audit --no-fund || npm install --no-audit --no-fund; })
  fi
done
echo "deps: ok"
