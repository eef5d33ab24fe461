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
  ALERTMANAGER_PAGE_URL=https://page.example/hook \
  docker-compose -f docker-compose.prod.yml config -q
for path in collector remote-write victoriametrics; do
  docker-compose -f docker-compose.yml -f "docker-compose.$path.yml" config -q
  env POSTGRES_PASSWORD=check GRAFANA_ADMIN_USER=check GRAFANA_ADMIN_PASSWORD=check \
    ALERTMANAGER_PAGE_URL=https://page.example/hook \
    docker-compose -f docker-compose.prod.yml -f "docker-compose.$path.yml" config -q
done

# --- Alertmanager ---

# The committed file, and what render.sh makes of it with and without receivers.
rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
sh alertmanager/render.sh alertmanager/alertmanager.yml "$rendered/none.yml" 2>/dev/null
env ALERTMANAGER_PAGE_URL=https://page.example/hook ALERTMANAGER_NOTIFY_URL=https://chat.example/hook \
  sh alertmanager/render.sh alertmanager/alertmanager.yml "$rendered/both.yml"
amtool check-config alertmanager/alertmanager.yml "$rendered/none.yml" "$rendered/both.yml"
# Each alert's receiver (alertmanager/tests/routes.txt: RECEIVER LABEL=VALUE...).
grep -v '^\s*\(#\|$\)' alertmanager/tests/routes.txt | while read -r receiver labels; do
  # shellcheck disable=SC2086  # one argument per label
  if ! found=$(amtool config routes test --config.file=alertmanager/alertmanager.yml \
      --verify.receivers="$receiver" $labels 2>/dev/null); then
    echo "routes test: $labels reaches $found, not $receiver" >&2
    exit 1
  fi
done
