/**
 * A second thread for the instance-side checksums of sync's checksum mode: the event loop
 * opens the files (inside the instance's root) while this thread reads and hashes them, so the
 * two halves of the work run on two cores (rsync's receiver gets a process of its own too).
 *
 * One worker per server, started on first use and kept (unref'd: it never holds the process
 * open); batches are answered in order. If the worker cannot start or dies, every unanswered
 * batch fails with the error, and the caller hashes those files on its own thread.
 */
import { Worker } from 'node:worker_threads';

export type ThreadResult = { checksum: string; size: number } | { error: string };

export class ChecksumThread {
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (r: ThreadResult[]) => void; reject: (e: Error) => void }>();

  /**
   * XXH3-128 and length of each open descriptor, read from offset 0 and of at most `limits[i]`
   * bytes (the descriptors stay open).
   */
  checksum(fds: readonly number[], limits: readonly number[]): Promise<ThreadResult[]> {
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, fds, limits });
    });
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) await w.terminate();
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    // execArgv []: no tsx (or other) preloads in a worker that needs none.
    const worker = new Worker(new URL('./sync-checksum-worker.js', import.meta.url), { execArgv: [] });
    worker.unref();
    worker.on('message', (msg: { id: number; results: ThreadResult[] }) => {
      const p = this.#pending.get(msg.id);
      this.#pending.delete(msg.id);
      p?.resolve(msg.results);
    });
    const fail = (error: Error): void => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const p of this.#pending.values()) p.reject(error);
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the checksum thread exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }
}
