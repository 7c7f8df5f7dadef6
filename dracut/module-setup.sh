#!/bin/bash
# dracut module "early-service" (installed as modules.d/99early-service): puts
# the initrd instance of early-service into the initrd, so that it serves
# /run/early-service/early-service.sock from early boot and hands its state and
# listening socket to early-service.service after switch-root.
#
# Every path is read through dracut's helpers or prefixed with
# $dracutsysrootdir, so `dracut --sysroot DIR` (image builders) takes the files
# and settings of DIR, not the build host's. (Tried by hand with Debian's dracut
# 059, whose --sysroot also needs systemdutildir= and systemdsystemunitdir= in
# its configuration, or it leaves them empty for every module.)

# $initdir, $dracutsysrootdir, $systemdsystemunitdir, $hostonly, $SYSTEMCTL
# and the helpers come from dracut, which sources this file.
# shellcheck disable=SC2154

# The product's files, as scripts/install.sh lays them out.
early_service_lib=/usr/lib/early-service
early_service_files="$early_service_lib/early-service.js $early_service_lib/early_service.node"

# called by dracut
check() {
    local _f
    # The initrd unit runs the bundle with /usr/bin/node; without it (or
    # without the package) there is nothing to put in.
    require_binaries /usr/bin/node || return 1
    for _f in $early_service_files "$systemdsystemunitdir/early-service-initrd.service"; do
        if [[ ! -e "$dracutsysrootdir$_f" ]]; then
            dinfo "dracut module 'early-service' will not be installed, because $_f is missing (is early-service installed?)"
            return 1
        fi
    done

    # A host-only initrd carries what this host boots with. The initrd instance
    # only makes sense if early-service.service is there to take over from it,
    # and it costs the boot time of unpacking node (~100 MB) from the initrd:
    # leave it out unless the rootfs service is enabled. 255 means "only if
    # asked for": dracut accepts it for a module named with --add or -m.
    if [[ $hostonly ]] && ! early_service_rootfs_enabled > /dev/null; then
        return 255
    fi

    # A generic initrd (--no-hostonly: image builds, rescue images) carries
    # every installed package's module, as dracut's own modules do. install()
    # still enables the initrd unit only if the rootfs service is enabled;
    # otherwise a boot entry can turn it on with
    # rd.systemd.wants=early-service-initrd.service.
    return 0
}

# called by dracut
depends() {
    # Units, the wants symlink and switch-root are systemd's; without it the
    # initrd would never start the service.
    echo systemd
    return 0
}

# Prints the state of early-service.service on the root that the initrd is
# built for, and succeeds if systemd will start it there (is-enabled's exit
# status: enabled, static, alias, ... count, disabled/masked/not-found do not).
early_service_rootfs_enabled() {
    "${SYSTEMCTL:-systemctl}" --root "${dracutsysrootdir:-/}" is-enabled early-service.service 2> /dev/null
}

# Copies the line for NAME from the root's passwd or group file into the
# initrd's, unless it is there already.
early_service_copy_account() {
    local _file=$1 _name=$2 _line
    _line=$(grep -m1 "^$_name:" "$dracutsysrootdir/etc/$_file" 2> /dev/null) || return 1
    grep -qs "^$_name:" "$initdir/etc/$_file" && return 0
    mkdir -p "$initdir/etc"
    printf '%s\n' "$_line" >> "$initdir/etc/$_file"
}

# Strips the initrd's copy of node of everything but what it runs with:
# `strip --strip-all` (the same as --strip-unneeded for an executable) drops
# the symbol table and its strings, which dracut's own stripping (`strip -g`,
# debug information only) keeps: 96.4 -> 86.3 MB for Node.js 20.20, and the
# kernel unpacks every byte at boot. The dynamic symbols stay (`strip` never
# removes .dynsym), so native addons still link against node's N-API.
#
# Done here, on the copy in the initrd, and not at install time: /usr/bin/node
# belongs to the distribution's package and is left as it is (a debugger or
# `perf` on the root file system keeps its symbols), and only dracut knows
# where its copy lands. Skipped, as dracut skips its own stripping, when the
# integrator asked for none (`--nostrip`, do_strip="no" in dracut.conf.d) or
# there is no `strip` (binutils); a strip that fails (a --sysroot of another
# architecture) leaves the copy as it was.
early_service_strip_node() {
    local _node="$initdir/usr/bin/node" _before
    [[ ${do_strip:-yes} == no ]] && return 0
    if ! command -v strip > /dev/null; then
        dinfo "early-service: no 'strip' (binutils): node goes into the initrd unstripped"
        return 0
    fi
    # A copy of its own (dracut-install copies): strip must not write through
    # a hard link into the root file system's node.
    if [[ $(stat -c %h "$_node") != 1 ]]; then
        dwarn "early-service: the initrd's node has other hard links; not stripping it"
        return 0
    fi
    _before=$(stat -c %s "$_node")
    if strip --strip-all "$_node"; then
        dinfo "early-service: stripped the initrd's node: $_before -> $(stat -c %s "$_node") bytes"
    else
        dwarn "early-service: 'strip --strip-all' failed on the initrd's node; it stays unstripped"
    fi
}

# called by dracut
install() {
    local _state _f _missing=

    # `inst`, not inst_simple/inst_library: those test the source path on the
    # build host even under --sysroot (dracut 059); inst leaves that to
    # dracut-install, which reads $dracutsysrootdir and, for ELF files (node,
    # the addon), also installs the shared libraries they link.
    for _f in /usr/bin/node $early_service_files "$systemdsystemunitdir/early-service-initrd.service"; do
        inst "$_f" || _missing+=" $_f"
    done
    [[ $_missing == *" /usr/bin/node"* ]] || early_service_strip_node

    # The unit's drop-ins (e.g. the one that lets it survive the final kill at
    # switch-root). Not early-service.service: the rootfs instance never runs
    # in the initrd.
    for _f in "$dracutsysrootdir$systemdsystemunitdir"/early-service-initrd.service.d/*.conf; do
        [[ -e $_f ]] || continue
        inst "${_f#"$dracutsysrootdir"}" || _missing+=" ${_f#"$dracutsysrootdir"}"
    done

    # The service account, with the root's uid and gid. The initrd instance
    # runs as root (systemd spares only root's '@' processes at switch-root)
    # with Group=early-service: without the group in the initrd's /etc/group
    # it fails to start (216/GROUP). systemd creates /run/early-service
    # (RuntimeDirectory=) with that gid, and the directory, the socket in it
    # and their owner numbers live on into the root file system, where
    # early-service.service must find them as its own: so copy the root's
    # lines rather than let systemd-sysusers allocate numbers in the initrd.
    if ! early_service_copy_account group early-service; then
        derror "early-service: no 'early-service' group in $dracutsysrootdir/etc/group (run systemd-sysusers)"
        _missing+=" the early-service group"
    fi
    if ! early_service_copy_account passwd early-service; then
        dwarn "early-service: no 'early-service' user in $dracutsysrootdir/etc/passwd (run systemd-sysusers); the initrd will not know it"
    fi

    # dracut ignores install()'s status, so a failed copy would go unnoticed
    # until boot: say so, and leave the unit disabled rather than start a
    # service whose files (or group) are not there.
    if [[ $_missing ]]; then
        derror "early-service: could not install$_missing; early-service-initrd.service is not enabled in the initrd"
        return 1
    fi

    # Start the initrd instance at boot only if the rootfs instance will be
    # there to take over: otherwise its socket and state would outlive the
    # initrd with nobody to hand them to. add-wants names the target itself,
    # so this does not depend on the unit's [Install] section; sysinit.target,
    # as the initrd instance must be up as early as its few dependencies allow.
    if _state=$(early_service_rootfs_enabled); then
        $SYSTEMCTL -q --root "$initdir" add-wants sysinit.target early-service-initrd.service
    else
        dinfo "early-service: early-service-initrd.service installed but not enabled in the initrd, because early-service.service is ${_state:-not installed} on ${dracutsysrootdir:-/} (enable it and rebuild the initrd, or boot with rd.systemd.wants=early-service-initrd.service)"
    fi
}
