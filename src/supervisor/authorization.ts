// Who may take this service's socket over: a handoff hands over every client
// connection and the counter, so it is obeyed only from root, this process's
// own user, the owner of the socket file, or a uid the operator allowed.
import path from 'node:path';
import { addon } from './native';

export interface Peer {
  pid: number;
  uid: number;
}

export class HandoffAuthorization {
  private socketOwner: number | undefined;
  private directoryFd: number | undefined;

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
   * request, because the owner changes after start-up: the rootfs unit's
   * RuntimeDirectory= makes systemd chown the directory and the socket to
   * the service user just before the successor starts. That is after
   * switch-root, when the path no longer resolves from the initrd's root, so
   * the owner is read through a descriptor of the socket's directory, opened
   * while the path still worked.
   */
  readOwner(): void {
    try {
      this.directoryFd ??= addon.openDirectory(path.dirname(path.resolve(this.socketPath)));
      this.socketOwner = addon.ownerAt(this.directoryFd, path.basename(this.socketPath));
    } catch {
      // Keep the last one seen.
    }
  }
}
