import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';

const TOKEN_BYTES = 16;
/** An accepted peer that has not named its pair by then is dropped. */
const HANDSHAKE_TIMEOUT_MS = 5_000;

/**
 * Turns a Duplex into a real `net.Socket`. Callers of `Runtime.connect` (the port proxy's HTTP
 * agent, the SSH gateway) want a socket (setNoDelay, socket events), while a vm instance's TCP
 * connection is a channel of its agent. Each call connects a unix socket to a listener of ours;
 * the accepted end names its pair by a random token and is piped to the channel.
 */
export class SocketPairs {
  private server: Server | undefined;
  private readonly waiting = new Map<string, Duplex>();

  constructor(private readonly path: string) {}

  async socketFor(channel: Duplex): Promise<Socket> {
    await this.listening();
    const token = randomBytes(TOKEN_BYTES);
    const key = token.toString('hex');
    this.waiting.set(key, channel);
    const socket = createConnection(this.path);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
    } catch (err) {
      this.waiting.delete(key);
      channel.destroy();
      throw err;
    }
    socket.write(token);
    return socket;
  }

  close(): void {
    this.server?.close();
    this.server = undefined;
    for (const channel of this.waiting.values()) channel.destroy();
    this.waiting.clear();
    rmSync(this.path, { force: true });
  }

  private async listening(): Promise<Server> {
    if (this.server !== undefined) return this.server;
    rmSync(this.path, { force: true });
    const server = createServer({ allowHalfOpen: true }, (peer) => this.accept(peer));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    return server;
  }

  private accept(peer: Socket): void {
    const timer = setTimeout(() => peer.destroy(), HANDSHAKE_TIMEOUT_MS);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length < TOKEN_BYTES) return;
      // Paused before the listener goes: a flowing stream without one would drop data.
      peer.pause();
      peer.off('data', onData);
      clearTimeout(timer);
      const key = head.subarray(0, TOKEN_BYTES).toString('hex');
      const channel = this.waiting.get(key);
      this.waiting.delete(key);
      if (channel === undefined) {
        peer.destroy();
        return;
      }
      const rest = head.subarray(TOKEN_BYTES);
      if (rest.length > 0) channel.write(rest);
      // Half-closes travel both ways: an HTTP client may end its side and still read.
      pipeline(peer, channel, () => peer.destroy());
      pipeline(channel, peer, () => channel.destroy());
    };
    peer.on('data', onData);
    peer.on('error', () => clearTimeout(timer));
  }
}
