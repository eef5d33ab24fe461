#!/usr/bin/env bash
# Checks the monitoring configs with the real tools. Works from any directory; exits non-zero on
# the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

promtool check config prometheus/prometheus.yml
promtool check rules prometheus/rules/*.yml
promtool test rules prometheus/tests/*.yml

# --- compose checks (docker-compose -f FILE config -q) go below this line ---
