#!/usr/bin/env bash
# Builds the early-service RPM from this working tree:
#
#   scripts/create-rpm.sh [--topdir DIR] [SPEC]
#
# SPEC defaults to conf/early-service.spec. The RPM tree is DIR (--topdir, or
# $RPM_TOPDIR, or rpm's %_topdir, usually ~/rpmbuild). The version is
# package.json's. Into DIR/SOURCES go:
#
#   early-service-VERSION.tar.gz               the files git knows of (tracked,
#                                              and untracked ones not ignored),
#                                              as they are in the working tree,
#                                              uncommitted changes included
#   early-service-VERSION-node_modules.tar.gz  node_modules from `npm ci
#                                              --ignore-scripts` in a scratch
#                                              directory (the repo's own
#                                              node_modules is not touched)
#   early-service.sysusers                     conf/early-service.sysusers
#
# then `rpmbuild -bb` runs, offline from there on. Progress goes to stderr;
# the last line on stdout is the path of the built RPM. Then, as the
# original example does:
#
#   createrepo_c DIR/RPMS/x86_64/     (and use it as an extra repo in the
#                                      CentOS Automotive sample-images build)
set -euo pipefail

usage() { echo "usage: $0 [--topdir DIR] [SPEC]" >&2; exit 2; }
die() { echo "$0: $*" >&2; exit 1; }
need() {
  command -v "$1" > /dev/null 2>&1 || die "'$1' not found: $2"
}

topdir=${RPM_TOPDIR:-}
spec=
while [ $# -gt 0 ]; do
  case "$1" in
    --topdir) [ $# -ge 2 ] || usage; topdir=$2; shift 2 ;;
    --topdir=*) topdir=${1#--topdir=}; shift ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) [ -z "$spec" ] || usage; spec=$1; shift ;;
  esac
done

need rpmbuild "install it (Debian/Ubuntu: apt-get install rpm; Fedora/CentOS: dnf install rpm-build)"
need rpm "install it (Debian/Ubuntu: apt-get install rpm; Fedora/CentOS: dnf install rpm)"
need git "install git"
need tar "install tar"
need gzip "install gzip"
need node "install Node.js >= 20"
need npm "install npm"

top=$(cd "$(dirname "$0")/.." && pwd)
spec=${spec:-$top/conf/early-service.spec}
[ -f "$spec" ] || die "no spec file $spec"
spec=$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")

git -C "$top" rev-parse --is-inside-work-tree > /dev/null 2>&1 ||
  die "$top is not a git working tree: the source tarball is made from git's file list"

name=$(node -p "require(process.argv[1]).name" "$top/package.json")
version=$(node -p "require(process.argv[1]).version" "$top/package.json")
# An RPM version cannot hold '-': npm's pre-release 1.2.0-rc.1 becomes 1.2.0~rc.1
# (which RPM sorts before 1.2.0, as npm does).
rpm_version=${version//-/\~}
spec_version=$(sed -n 's/^%{!?es_version:%global es_version \(.*\)}$/\1/p' "$spec")
if [ -n "$spec_version" ] && [ "$spec_version" != "$rpm_version" ]; then
  echo "$0: note: $spec's default es_version is $spec_version; building $rpm_version (package.json)" >&2
fi

if [ -z "$topdir" ]; then
  topdir=$(rpm --eval '%{_topdir}')
fi
mkdir -p "$topdir"
topdir=$(cd "$topdir" && pwd)
mkdir -p "$topdir"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}
sources=$topdir/SOURCES

work=$(mktemp -d "${TMPDIR:-/tmp}/early-service-rpm.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Timestamps in the tarballs: the last commit's, so that the same tree gives
# the same tarball.
mtime=$(git -C "$top" log -1 --format=%ct 2> /dev/null || date +%s)
tar_opts=(--sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime")

# Source0. `git archive HEAD` would leave out uncommitted work; this takes the
# files git tracks plus untracked ones that .gitignore does not exclude, as
# they are on disk (a tracked file deleted in the tree is left out).
prefix=$name-$rpm_version
(
  cd "$top"
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done |
    sort -zu > "$work/files"
  untracked=$(git ls-files --others --exclude-standard | wc -l)
  if [ "$untracked" -gt 0 ]; then
    echo "$0: note: the source tarball includes $untracked untracked file(s) (git ls-files --others --exclude-standard)" >&2
  fi
  # S: the prefix goes on member names, not on symlink targets.
  tar "${tar_opts[@]}" --transform "s,^,$prefix/,S" --null -T "$work/files" -cf - |
    gzip -n > "$sources/$prefix.tar.gz"
)
echo "$0: wrote $sources/$prefix.tar.gz" >&2

# Source1: the dependencies, fetched now (from npm's cache or the registry) so
# that the build needs no network. --ignore-scripts: no install scripts run,
# so nothing is compiled into it; the addon is built by the spec's %build.
mkdir "$work/vendor"
cp "$top/package.json" "$top/package-lock.json" "$work/vendor/"
if [ -f "$top/.npmrc" ]; then cp "$top/.npmrc" "$work/vendor/"; fi
if ! (cd "$work/vendor" &&
  npm ci --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error > "$work/npm.log" 2>&1); then
  # npm follows its error with its whole usage text: show the error only.
  grep -v -e '^npm error *$' "$work/npm.log" | sed -n '1,/^npm error Clean install a project/p' | head -n 30 >&2
  die "npm ci --ignore-scripts failed (is package-lock.json in step with package.json?)"
fi
tar "${tar_opts[@]}" -C "$work/vendor" -cf - node_modules | gzip -n > "$sources/$prefix-node_modules.tar.gz"
echo "$0: wrote $sources/$prefix-node_modules.tar.gz" >&2

# Source2, read at spec parse time by %sysusers_create_compat.
cp "$top/conf/$name.sysusers" "$sources/$name.sysusers"
cp "$spec" "$topdir/SPECS/"

rpmbuild_args=(-bb --define "_topdir $topdir" --define "es_version $rpm_version")
# rpmbuild checks BuildRequires against the rpm database. Where rpm is not the
# system's package manager (Debian, Ubuntu) that database is empty (`rpm -q
# rpm` finds not even rpm itself), so the check would fail for packages that
# are installed, with dpkg: skip it there. On Fedora/CentOS it stays on.
if ! rpm -q rpm > /dev/null 2>&1; then
  echo "$0: note: no rpm database (rpm is not this system's package manager): rpmbuild --nodeps" >&2
  rpmbuild_args+=(--nodeps)
fi

log=$work/rpmbuild.log
echo "$0: rpmbuild ${rpmbuild_args[*]} $spec" >&2
if ! rpmbuild "${rpmbuild_args[@]}" "$spec" > "$log" 2>&1; then
  cat "$log" >&2
  die "rpmbuild failed"
fi
cat "$log" >&2

# The package itself (not -debuginfo/-debugsource), from rpmbuild's "Wrote:" lines.
rpm_path=
while IFS= read -r line; do
  case "$line" in
    Wrote:\ *.rpm)
      path=${line#Wrote: }
      case "$(basename "$path")" in
        "$name-$rpm_version-"*) rpm_path=$path ;;
      esac ;;
  esac
done < "$log"
[ -n "$rpm_path" ] || die "rpmbuild succeeded but wrote no $name-$rpm_version-*.rpm"
echo "$rpm_path"
