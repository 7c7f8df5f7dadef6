#!/bin/bash
# Boot test only: dracut module "es-boot-test" puts the socket poller
# (es-boot-poller.service, /usr/lib/es-boot-test/es-boot-poller) into the initrd and
# starts it there. Only when asked for (-m/-a es-boot-test).

# called by dracut
check() {
    return 255
}

# called by dracut
depends() {
    echo systemd early-service
    return 0
}

# called by dracut
# shellcheck disable=SC2154 # systemdsystemunitdir, initdir, SYSTEMCTL: dracut's
install() {
    inst /usr/lib/es-boot-test/es-boot-poller
    inst "$systemdsystemunitdir/es-boot-poller.service"
    $SYSTEMCTL -q --root "$initdir" add-wants sysinit.target es-boot-poller.service
}
