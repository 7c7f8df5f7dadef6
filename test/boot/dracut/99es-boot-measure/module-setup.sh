#!/bin/bash
# Boot test only: dracut module "es-boot-measure" puts the kernel-log marks of
# the three-way comparison into the initrd (test/boot/measure/): the moment
# sysinit.target is reached, the first answer of whichever service the initrd
# has, and (with es_boot.poweroff_in_initrd) the power-off once both are in.
# Also the probe the compressor benchmark runs as rdinit. Every initrd of the
# comparison has it, so it adds the same to all. Only when asked for.

# called by dracut
check() {
    return 255
}

# called by dracut
depends() {
    echo systemd
    return 0
}

# called by dracut
# shellcheck disable=SC2154 # systemdsystemunitdir, initdir, SYSTEMCTL: dracut's
install() {
    local _unit
    inst /usr/lib/es-boot-test/es-boot-probe
    for _unit in es-boot-mark-sysinit.service es-boot-mark-serving.service es-boot-measure-poweroff.service; do
        inst "$systemdsystemunitdir/$_unit"
        $SYSTEMCTL -q --root "$initdir" add-wants sysinit.target "$_unit"
    done
}
