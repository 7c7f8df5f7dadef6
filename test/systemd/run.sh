#!/usr/bin/env bash
# The systemd harness by hand (as root):
#
#   bash test/systemd/run.sh --debian 12|13|all --scenario NAME|PATH [boot.sh options...]
#
# Builds the product (npm run build; ES_SYSTEMD_SKIP_BUILD=1 skips it), the
# cached Debian base if needed, boots the container(s) with the scenario and
# prints its output, the facts it recorded and where everything is. Any other
# option goes to boot.sh (see its header: --timeout, --no-product, --dropin,
# --unit, --enable, --file, --c-program, --env, --keep). Exit status: the
# scenario's (the first non-zero one with --debian all).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
unset NODE_EXTRA_CA_CERTS

debians=() scenario=smoke pass=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debian) if [ "$2" = all ]; then debians=(12 13); else debians+=("$2"); fi; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    --no-product|--no-enable|--keep) pass+=("$1"); shift ;;
    *) [ $# -ge 2 ] || { echo "run.sh: $1 needs a value" >&2; exit 2; }; pass+=("$1" "$2"); shift 2 ;;
  esac
done
[ ${#debians[@]} -gt 0 ] || debians=(12)
es_need_root
es_ensure_host_tools
if [ "${ES_SYSTEMD_SKIP_BUILD:-}" != 1 ]; then
  es_step "npm run build"
  (cd "$top" && npm run --silent build > /dev/null) || es_die "npm run build failed"
fi
status=0
for debian in "${debians[@]}"; do
  out=$(es_cache_dir)/runs/$debian-$(basename "$scenario" .sh)
  rc=0
  bash "$here/boot.sh" --debian "$debian" --out "$out" --scenario "$scenario" "${pass[@]}" || rc=$?
  echo "--- Debian $debian, scenario $(basename "$scenario" .sh): exit $rc"
  [ -f "$out/results/scenario.log" ] && sed 's/^/  | /' "$out/results/scenario.log"
  [ -f "$out/results/facts.env" ] && { echo "  facts:"; sed 's/^/    /' "$out/results/facts.env"; }
  echo "  results: $out/results/   console: $out/console.log"
  [ "$status" != 0 ] || status=$rc
done
exit "$status"
