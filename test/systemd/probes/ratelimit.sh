# Fact 4: journald's per-unit rate limit: which settings lift it. (journald
# writes "Suppressed N messages from UNIT" only when a message of that unit
# arrives after the interval ends: these units are gone by then, so the count
# is sent - arrived.) Each case
# runs journald-emit (as fast as the stream takes it, blocking writes: the
# emitter drops nothing) in a transient unit and counts the lines that
# arrived and what journald said it suppressed.
set -u
. /usr/lib/es-systemd-test/lib.sh
LINES=${ES_RATELIMIT_LINES:-60000}
journal=$(systemctl show -p Id --value systemd-journald.service)
# case TAG PROPERTIES...: one transient unit per case
case_run() {
  local tag=$1; shift
  local unit=rl-$tag.service props=()
  for p in "$@"; do props+=(-p "$p"); done
  systemd-run --quiet --wait --unit="$unit" "${props[@]}" /usr/lib/es-systemd-test/journald-emit --lines "$LINES" --tag "$tag" \
    --summary "$ES_RESULTS/rl-$tag.summary"
  journalctl --sync
  sleep 0.5
  count "$tag" "$unit" "props='$*' (systemd-run -p)"
}
# count TAG UNIT DESCRIPTION: the fact rl_TAG
count() {
  local got
  got=$(journalctl -b -u "$2" -o cat --no-pager | grep -c "^$1 [0-9]")
  es_fact "rl_$1" "$3 sent=$LINES arrived=$got lost=$((LINES - got)) emitter_elapsed_us=$(sed -n 's/elapsed_us=//p' "$ES_RESULTS/rl-$1.summary")"
}
# file_case TAG SETTINGS...: the same from a unit file (not a transient unit)
file_case() {
  local tag=$1; shift
  { printf '[Service]\nType=oneshot\nExecStart=/usr/lib/es-systemd-test/journald-emit --lines %s --tag %s --summary %s\n' \
      "$LINES" "$tag" "$ES_RESULTS/rl-$tag.summary"; printf '%s\n' "$@"; } > /run/systemd/system/rl-$tag.service
  systemctl daemon-reload
  systemctl start rl-$tag.service
  journalctl --sync
  sleep 0.5
  count "$tag" "rl-$tag.service" "unit file: $*"
}
es_fact journal_storage "$(journalctl --header 2>/dev/null | sed -n 's/^File path: //p' | head -n1)"
es_fact journald_defaults "$(grep -E '^#?RateLimit' /etc/systemd/journald.conf | tr '\n' ' ')"
case_run default
case_run interval0 LogRateLimitIntervalSec=0
case_run burst0 LogRateLimitBurst=0
case_run both0 LogRateLimitIntervalSec=0 LogRateLimitBurst=0
case_run bigburst LogRateLimitIntervalSec=1s LogRateLimitBurst=1000000
case_run burstonly LogRateLimitBurst=1000000
file_case fileinterval0 LogRateLimitIntervalSec=0
file_case fileburst LogRateLimitBurst=1000000
# The same with a global journald.conf that disables it (RateLimitIntervalSec=0).
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nRateLimitIntervalSec=0\n' > /etc/systemd/journald.conf.d/50-es-ratelimit.conf
systemctl restart systemd-journald
case_run global_interval0
rm /etc/systemd/journald.conf.d/50-es-ratelimit.conf
printf '[Journal]\nRateLimitBurst=0\n' > /etc/systemd/journald.conf.d/50-es-ratelimit.conf
systemctl restart systemd-journald
case_run global_burst0
rm /etc/systemd/journald.conf.d/50-es-ratelimit.conf
systemctl restart systemd-journald
