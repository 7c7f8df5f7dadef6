# Shared by the systemd harness's scripts (sourced, not run).
#
#   es_step MSG               progress line with the seconds since the script started
#   es_die MSG                message on stderr, exit 1
#   es_need_root
#   es_ensure_host_tools      apt-installs what the harness needs on the host (naming the package on failure)
#   es_debian_suite N         12 -> bookworm, 13 -> trixie
#   es_host_mirror SUITE      the Debian mirror from the host's apt configuration
#   es_cache_dir              ${ES_SYSTEMD_CACHE:-${TMPDIR:-/tmp}/early-service-systemd-test}
es_t0=${es_t0:-$SECONDS}
es_step() { printf '[systemd-test %4ds] %s\n' $((SECONDS - es_t0)) "$*" >&2; }
es_die() { echo "systemd-test: $*" >&2; exit 1; }
es_need_root() { [ "$(id -u)" = 0 ] || es_die "must run as root (debootstrap, overlay mounts, systemd-nspawn)"; }
es_cache_dir() { printf '%s\n' "${ES_SYSTEMD_CACHE:-${TMPDIR:-/tmp}/early-service-systemd-test}"; }

es_debian_suite() {
  case "$1" in
    12|bookworm) echo bookworm ;;
    13|trixie) echo trixie ;;
    *) es_die "unknown Debian version '$1' (12 or 13)" ;;
  esac
}

# Host commands the harness runs, and the Debian package of each.
ES_HOST_TOOLS="systemd-nspawn:systemd-container debootstrap:debootstrap script:bsdutils unshare:util-linux gcc:gcc zstd:zstd"
es_ensure_host_tools() {
  local need=() pair pkg
  for pair in $ES_HOST_TOOLS; do
    command -v "${pair%%:*}" > /dev/null || need+=("${pair#*:}")
  done
  # The in-container programs are linked statically (no libc assumption about the root).
  case "$(gcc -print-file-name=libc.a 2> /dev/null)" in */*) ;; *) need+=(libc6-dev) ;; esac
  [ ${#need[@]} -gt 0 ] || return 0
  es_step "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || es_die "apt-get update failed; cannot install: ${need[*]}"
  for pkg in "${need[@]}"; do
    apt-get install -y -qq --no-install-recommends "$pkg" > /dev/null ||
      es_die "cannot install the Debian package '$pkg' (apt-get install $pkg failed)"
  done
  for pair in $ES_HOST_TOOLS; do
    command -v "${pair%%:*}" > /dev/null || es_die "'${pair%%:*}' still missing after installing ${pair#*:}"
  done
}

# The first 'deb' source for SUITE, else the first for any main suite (one
# without a '-': not -updates or -security), from deb822 .sources files and
# one-line .list files alike (as test/boot/build-image.sh reads it).
es_host_mirror() {
  local suite=$1 files=() f
  for f in /etc/apt/sources.list.d/*.sources; do [ -e "$f" ] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    awk -v suite="$suite" '
      function flush() {
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled != "no" && uri != "") {
          if (!best && (" " suites " ") ~ (" " suite " ")) best = uri
          n = split(suites, s, /[ \t]+/)
          for (i = 1; i <= n; i++) if (!anymain && s[i] != "" && s[i] !~ /-/) anymain = uri
        }
        types = ""; suites = ""; uri = ""; enabled = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:" { uri = $2 }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { flush(); if (best) print best; else if (anymain) print anymain }
    ' "${files[@]}"
  fi
  files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -e "$f" ] && files+=("$f"); done
  if [ ${#files[@]} -gt 0 ]; then
    sed -E -n 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+)[[:space:]]+([^[:space:]]+).*/\3 \2/p' "${files[@]}" |
      awk -v suite="$suite" '$1 == suite && !best { best = $2 } $1 !~ /-/ && !anymain { anymain = $2 }
                             END { if (best) print best; else if (anymain) print anymain }'
  fi
}
