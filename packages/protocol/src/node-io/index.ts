/**
 * Small Node-only I/O helpers shared by the tree walkers (snapshot scanner, sync manifests).
 * Reachable as `@faas/protocol/node-io`, never from the package root (the SDK's browser
 * bundle must stay free of node: modules).
 */
import * as crypto from 'node:crypto';
import { read } from 'node:fs';

/** SHA-256 hex of a buffer; crypto.hash (Node >= 20.12) is a cheaper one-shot than createHash for small inputs. */
export const sha256Hex: (data: Uint8Array) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'hex')
    : (data) => crypto.createHash('sha256').update(data).digest('hex');

/** A counting semaphore: at most `max` calls of `run` in progress at once, the rest queued in order. */
export class Limiter {
  #active = 0;
  readonly #waiting: Array<() => void> = [];
  constructor(private readonly max: number) {}
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.max) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active++;
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    }
  }
}

/** One positional read into `buf` through the thread pool; resolves with the bytes read. */
export function readAt(fd: number, buf: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, buf.length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
  });
}
