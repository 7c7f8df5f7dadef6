// Fault injection, for the tests, the stress tool and its chaos campaign:
// with EARLY_SERVICE_FAULT=<fault>, this process acts the fault out at that
// point of its lifecycle. Nothing happens without the variable.
//
//   stop-before-request, stop-after-receive, stop-after-commit
//       a successor stops itself (SIGSTOP) at that point of its takeover,
//       for the caller to kill or continue it there;
//   stop-donor-frozen, stop-donor-sent
//       a donor stops itself right after the freeze, or once everything is
//       sent and before the successor's verdict;
//   stop-stopping
//       a process told to stop stops itself (SIGSTOP) right after its freeze,
//       before its clients are drained;
//   ticker-exit, ticker-hang
//       on SIGUSR2, the ticker thread crashes (the thread exits) or hangs.
import type { Logger } from '../ipc/log-line';
import type { SharedState } from '../ipc/shared-state';

export type FaultPoint = 'before-request' | 'after-receive' | 'after-commit' | 'donor-frozen' | 'donor-sent' | 'stopping';

/** Stops this process (SIGSTOP) at `point` if asked to; says so first (and waits until the line is out). */
export async function injectFault(point: FaultPoint, log: Logger, flush: (timeoutMs: number) => Promise<void>): Promise<void> {
  if (process.env.EARLY_SERVICE_FAULT !== `stop-${point}`) return;
  log.notice(`fault injection: stopping ${point.replace('-', ' ')}`);
  await flush(1000);
  process.kill(process.pid, 'SIGSTOP');
}

/** EARLY_SERVICE_FAULT=ticker-exit|ticker-hang: on SIGUSR2, the ticker thread crashes or hangs. */
export function injectTickerFault(state: SharedState, log: Logger): void {
  const fault = process.env.EARLY_SERVICE_FAULT;
  if (fault !== 'ticker-exit' && fault !== 'ticker-hang') return;
  process.on('SIGUSR2', () => {
    log.notice(`fault injection: ${fault}`);
    state.injectTickerFault(fault === 'ticker-exit' ? 'exit' : 'hang');
  });
}
