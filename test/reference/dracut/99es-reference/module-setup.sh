#!/bin/bash
# Test only: dracut module "es-reference" puts the C reference
# (test/reference/early-service-ref.c) into the initrd and starts it there,
# the way dracut/module-setup.sh does for early-service: the binary (with the
# libraries it links), its unit, sysinit.target wanting it. Only when asked
# for (-m/-a es-reference); the boot test builds one initrd with it.

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
    inst /usr/lib/es-reference/early-service-ref
    inst "$systemdsystemunitdir/es-reference-initrd.service"
    $SYSTEMCTL -q --root "$initdir" add-wants sysinit.target es-reference-initrd.service
}
