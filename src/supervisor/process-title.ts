// --survive_systemd_kill_signal: systemd spares, at switch-root, the
// root-owned processes whose argv[0][0] is '@' (systemd.io/ROOT_STORAGE_DAEMONS).
// This module is imported first by main.ts so that the title changes before
// anything slow is loaded. Node rewrites argv in place and truncates the title
// to the original command line's length, which always leaves room here. A unit
// can also give '@' from exec on, with ExecStart=@/usr/bin/node @early-service …
const SURVIVE_FLAGS = ['--survive_systemd_kill_signal', '--survive-systemd-kill-signal'];

export function markSurvivor(args: readonly string[]): void {
  process.title = `@early-service ${args.join(' ')}`.trimEnd();
}

const args = process.argv.slice(2);
if (args.some((arg) => SURVIVE_FLAGS.includes(arg))) markSurvivor(args);
