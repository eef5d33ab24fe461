#!/usr/bin/env bash
# Checks the monitoring configs with the real tools. Works from any directory; exits non-zero on
# the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

promtool check config prometheus/prometheus.yml
# The same Prometheus for the collector and remote-write export paths.
promtool check config prometheus/prometheus.collector.yml prometheus/prometheus.remote-write.yml
promtool check rules prometheus/rules/*.yml
promtool test rules prometheus/tests/*.yml

# --- compose checks (docker-compose -f FILE config -q) go below this line ---

# Each stack, then each override (export paths, VictoriaMetrics) on it; production needs its secrets
# (dummies here).
docker-compose -f docker-compose.yml config -q
env POSTGRES_PASSWORD=check GRAFANA_ADMIN_USER=check GRAFANA_ADMIN_PASSWORD=check \
  docker-compose -f docker-compose.prod.yml config -q
for path in collector remote-write victoriametrics; do
  docker-compose -f docker-compose.yml -f "docker-compose.$path.yml" config -q
  env POSTGRES_PASSWORD=check GRAFANA_ADMIN_USER=check GRAFANA_ADMIN_PASSWORD=check \
    docker-compose -f docker-compose.prod.yml -f "docker-compose.$path.yml" config -q
done
