#!/bin/sh
# Writes alertmanager.yml with the receivers' URLs from the environment, then runs the command
# given after the two paths (the container's entrypoint: render.sh IN OUT /bin/alertmanager ...).
#
#   ALERTMANAGER_PAGE_URL    webhook for critical alerts
#   ALERTMANAGER_NOTIFY_URL  webhook for warnings
#
# A receiver without a URL is routed around: warnings go to the page receiver, and with no page
# receiver either, alerts are only shown (Alertmanager UI, Grafana): the development default.
# Production's compose file refuses to start without ALERTMANAGER_PAGE_URL.
# POSIX sh and sed only: the official image is busybox, without bash or Python.
set -eu

if [ "$#" -lt 2 ]; then
  echo "usage: render.sh TEMPLATE OUTPUT [COMMAND...]" >&2
  exit 2
fi
template=$1
output=$2
shift 2

# A URL has only RFC 3986 characters: none of them is special inside a double-quoted YAML
# string, and "|" (sed's delimiter below) is not one of them.
check_url() {
  case $2 in
    http://?* | https://?*) ;;
    *) echo "render.sh: $1 must be an http:// or https:// URL" >&2; exit 1 ;;
  esac
  case $2 in
    *[!A-Za-z0-9._~:/?#@!\$\&\'\(\)*+,\;=%[\]-]*)
      echo "render.sh: $1 has characters a URL cannot have (encode them with %XX)" >&2; exit 1 ;;
  esac
}

# sed script: fill in a receiver's URL, or send its routes to the next receiver down.
receiver() {
  name=$1 variable=$2 fallback=$3
  eval "url=\${$variable:-}"
  if [ -n "$url" ]; then
    check_url "$variable" "$url"
    escaped=$(printf '%s' "$url" | sed 's/&/\\&/g')
    printf 's|"http://%s.receiver.invalid/"|"%s"|\n' "$name" "$escaped"
  else
    echo "render.sh: $variable is not set: $name alerts go to $fallback" >&2
    printf 's|^\\([ -]*\\)receiver: %s$|\\1receiver: %s|\n' "$name" "$fallback"
  fi
}

script=$(receiver notify ALERTMANAGER_NOTIFY_URL page; receiver page ALERTMANAGER_PAGE_URL view-only)
sed -e "$script" "$template" >"$output.tmp"
mv "$output.tmp" "$output"

if [ "$#" -gt 0 ]; then
  exec "$@"
fi
