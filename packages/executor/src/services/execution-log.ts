import { closeSync, fsync, mkdirSync, openSync, readFileSync, writeSync, close as closeFd, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ExecutionStreamEvent } from '@faas/protocol';

type EventBody = ExecutionStreamEvent extends infer E ? (E extends ExecutionStreamEvent ? Omit<E, 'seq' | 'time'> : never) : never;

/**
 * The durable, append-only event log of one execution: one JSON event per line. An event is
 * written (to the kernel, synchronously, so it survives a crash of the server) before any
 * listener sees it; the file is fsynced when the execution ends.
 */
export class ExecutionLogWriter {
  private fd: number | undefined;
  private seq: number;
  private readonly listeners = new Set<(event: ExecutionStreamEvent) => void>();
  private finished = false;

  constructor(
    readonly path: string,
    startSeq = 0,
    private readonly now: () => Date = () => new Date(),
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.fd = openSync(path, 'a', 0o600);
    this.seq = startSeq;
  }

  get lastSeq(): number {
    return this.seq;
  }

  get isFinished(): boolean {
    return this.finished;
  }

  append(body: EventBody): ExecutionStreamEvent {
    if (this.fd === undefined) throw new Error(`execution log ${this.path} is closed`);
    const event = { ...body, seq: this.seq + 1, time: this.now().toISOString() } as ExecutionStreamEvent;
    writeSync(this.fd, `${JSON.stringify(event)}\n`);
    this.seq = event.seq;
    if (event.type === 'completed' || event.type === 'error') this.finished = true;
    for (const l of this.listeners) l(event);
    return event;
  }

  /** Listeners are called synchronously after each append. */
  listen(listener: (event: ExecutionStreamEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** fsyncs and closes; resolves when the bytes are on disk. */
  close(): Promise<void> {
    const fd = this.fd;
    this.fd = undefined;
    this.listeners.clear();
    if (fd === undefined) return Promise.resolve();
    return new Promise((resolve) => fsync(fd, () => closeFd(fd, () => resolve())));
  }

  closeSync(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Parses complete lines of a log; a torn last line (crash mid-write) is ignored. */
export function parseLog(text: string): ExecutionStreamEvent[] {
  const events: ExecutionStreamEvent[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break;
    const line = text.slice(start, nl);
    start = nl + 1;
    if (line.length === 0) continue;
    try {
      events.push(JSON.parse(line) as ExecutionStreamEvent);
    } catch {
      // a torn line can only be the last; anything after it is not trusted either
      break;
    }
  }
  return events;
}

export async function readLog(path: string): Promise<ExecutionStreamEvent[]> {
  try {
    return parseLog(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export function readLogSync(path: string): ExecutionStreamEvent[] {
  return existsSync(path) ? parseLog(readFileSync(path, 'utf8')) : [];
}

/** Where an execution's log lives: sharded by two id characters so no directory grows huge. */
export function logPath(dataDir: string, executionId: string): string {
  const shard = executionId.slice(-2);
  return join(dataDir, 'logs', shard, `${executionId}.ndjson`);
}
