#!/usr/bin/env bash
# Re-runs the systemd facts probes of docs/SYSTEMD-FACTS.md (as root):
#
#   bash test/systemd/probes/run.sh NAME [12|13|all]     NAME: reload, notify-reload, fdstore, ratelimit, alien
#
# Boots a container per Debian version without the product, with this
# directory in /usr/lib/es-systemd-test/probes and the probe units in
# /etc/systemd/system, runs NAME.sh and prints the facts it recorded
# (results: $TMPDIR/early-service-systemd-test/runs/probe-NAME-DEBIAN/results/,
# with events.log: every step of the probe processes, and journal.txt).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:?usage: run.sh NAME [12|13|all]}
case "${2:-all}" in all) debians=(12 13) ;; *) debians=("$2") ;; esac
# shellcheck source=../lib.sh
. "$here/../lib.sh"
units=()
for u in "$here"/units/*.service; do units+=(--unit "$u"); done
status=0
for debian in "${debians[@]}"; do
  out=$(es_cache_dir)/runs/probe-$name-$debian
  rc=0
  bash "$here/../boot.sh" --debian "$debian" --out "$out" --no-product --scenario "$here/$name.sh" \
    --c-program "$here/../../../bench/journald-emit.c" \
    --file "$here:/usr/lib/es-systemd-test/probes" "${units[@]}" --timeout "${ES_PROBE_TIMEOUT:-300}" || rc=$?
  echo "=== $name on Debian $debian ($(sed -n 's/^systemd \([0-9]*\).*/systemd \1/p' "$out/results/info.txt" 2> /dev/null)): exit $rc"
  sed 's/^/  /' "$out/results/facts.env" 2> /dev/null || true
  [ "$rc" = 0 ] || { status=$rc; tail -n 20 "$out/results/scenario.log" 2> /dev/null | sed 's/^/  | /'; }
done
exit "$status"
