// Who may take this service's socket over: a handoff hands over every client
// connection and the counter, so it is obeyed only from root, this process's
// own user, the owner of the socket file, or a uid the operator allowed.
import fs from 'node:fs';
import { addon } from './native';

export interface Peer {
  pid: number;
  uid: number;
}

export class HandoffAuthorization {
  private socketOwner: number | undefined;

  constructor(
    private readonly socketPath: string,
    private readonly allowedUids: readonly number[],
  ) {}

  /** The peer on `fd` if it may take over, otherwise the peer to report. */
  check(fd: number): { allowed: boolean; peer: Peer } {
    const peer = addon.peerCredentials(fd);
    this.readOwner();
    const allowed = peer.uid === 0 || peer.uid === process.getuid?.() || peer.uid === this.socketOwner ||
      this.allowedUids.includes(peer.uid);
    return { allowed, peer };
  }

  /**
   * Notes the socket file's owner: once the socket exists, and again at each
   * request (a unit may chown it after start-up). After switch-root the path
   * no longer resolves from the initrd's root; the owner seen last stands.
   */
  readOwner(): void {
    try {
      this.socketOwner = fs.statSync(this.socketPath).uid;
    } catch {
      // Keep the last one seen.
    }
  }
}
