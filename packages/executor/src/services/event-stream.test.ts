import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionStreamEvent } from '@faas/protocol';
import { streamEvents, type EventStreamSource } from './event-stream.ts';
import { ExecutionLogWriter } from './execution-log.ts';

const dir = mkdtempSync(join(tmpdir(), 'faas-event-stream-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
interface Log {
  writer: ExecutionLogWriter;
  source: EventStreamSource;
  output(count: number): void;
  complete(): ExecutionStreamEvent;
}

/** A real log writer in a temp file; `source.live()` returns it until it is closed, like the service. */
function openLog(): Log {
  const path = join(dir, `exec-${++n}.ndjson`);
  const writer = new ExecutionLogWriter(path);
  let closed = false;
  return {
    writer,
    source: { path, live: () => (closed ? undefined : writer) },
    output(count) {
      for (let i = 0; i < count; i++) writer.append({ type: 'output', stream: 'stdout', data: `line ${writer.lastSeq + 1}\n` });
    },
    complete() {
      const event = writer.append({ type: 'completed', exit_code: 0, exit_reason: 'exited', signal: null, duration_ms: 1, output_truncated: false });
      closed = true;
      void writer.close();
      return event;
    },
  };
}

async function collect(events: AsyncGenerator<ExecutionStreamEvent>): Promise<number[]> {
  const seqs: number[] = [];
  for await (const e of events) seqs.push(e.seq);
  return seqs;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Fails instead of hanging when a stream does not end. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: did not settle within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

describe('streamEvents', () => {
  it('replays a finished log and ends after its terminal event', async () => {
    const log = openLog();
    log.output(5);
    log.complete();
    assert.deepEqual(await collect(streamEvents(log.source, 0)), range(1, 6));
    assert.deepEqual(await collect(streamEvents(log.source, 4)), [5, 6]);
  });

  it('goes from replay to live with no gap and no duplicate while events are appended concurrently', async () => {
    const log = openLog();
    log.output(200);
    const TOTAL = 2000;
    // The producer appends on every turn of the event loop, so appends land between the
    // reader's listen(), its file read (async I/O) and its yields.
    const producer = (async () => {
      while (log.writer.lastSeq < TOTAL) {
        log.output(1 + (log.writer.lastSeq % 3));
        await tick();
      }
      log.complete();
    })();
    // Readers join at different moments and cursors.
    const readers = [collect(streamEvents(log.source, 0))];
    for (const after of [0, 57, 199, 350]) {
      await tick();
      readers.push(collect(streamEvents(log.source, after)));
    }
    const results = await within(Promise.all(readers), 20_000, 'readers');
    await producer;
    const last = log.writer.lastSeq;
    assert.deepEqual(results[0], range(1, last));
    assert.deepEqual(results[1], range(1, last));
    assert.deepEqual(results[2], range(58, last));
    assert.deepEqual(results[3], range(200, last));
    assert.deepEqual(results[4], range(351, last));
  });

  it('delivers every event exactly once and in order to a slow reader that lets more than 1024 events queue up (it falls back to the file)', async () => {
    const log = openLog();
    log.output(1);
    const events = streamEvents(log.source, 0);
    const seqs: number[] = [];
    const first = await events.next();
    assert.equal(first.done, false);
    seqs.push(first.value!.seq);
    // The reader is suspended at a yield and listening: 3000 appends overflow its queue.
    log.output(3000);
    for (let i = 0; i < 1500; i++) {
      const next = await events.next();
      assert.equal(next.done, false);
      seqs.push(next.value!.seq);
    }
    // Still live (not finished): another burst past the queue size while it is behind again.
    log.output(2500);
    await sleep(5);
    log.output(10);
    log.complete();
    for await (const e of events) seqs.push(e.seq);
    assert.deepEqual(seqs, range(1, log.writer.lastSeq));
    assert.equal(seqs.length, 5512);
  });

  it('starts from the first event when after is negative (finished and live logs)', async () => {
    const finished = openLog();
    finished.output(3);
    finished.complete();
    assert.deepEqual(await collect(streamEvents(finished.source, -5)), [1, 2, 3, 4]);

    const live = openLog();
    const reading = collect(streamEvents(live.source, -1));
    await tick();
    live.output(3);
    await tick();
    live.complete();
    assert.deepEqual(await within(reading, 5000, 'negative cursor on a live log'), [1, 2, 3, 4]);
  });

  it('yields nothing and ends when after is beyond the end of a finished log', async () => {
    const log = openLog();
    log.output(3);
    log.complete();
    assert.deepEqual(await within(collect(streamEvents(log.source, 10)), 5000, 'cursor beyond a finished log'), []);
  });

  it('ends when the execution finishes even if after was beyond its last event while it ran', async () => {
    const log = openLog();
    log.output(3);
    const reading = collect(streamEvents(log.source, 10));
    await tick();
    log.output(2);
    log.complete(); // seq 6: the reader's cursor (10) is past the terminal event
    assert.deepEqual(await within(reading, 3000, 'cursor beyond a live log that then finished'), []);
  });

  it('ends the iteration when the abort signal fires while waiting for live events', async () => {
    const log = openLog();
    log.output(2);
    const abort = new AbortController();
    const events = streamEvents(log.source, 0, abort.signal);
    const seqs: number[] = [];
    const reading = (async () => {
      for await (const e of events) seqs.push(e.seq);
    })();
    await sleep(20);
    assert.deepEqual(seqs, [1, 2]);
    abort.abort();
    await within(reading, 2000, 'aborted stream');
    assert.deepEqual(seqs, [1, 2]);
    log.complete();
  });

  it('yields nothing when the signal is already aborted', async () => {
    const log = openLog();
    log.output(2);
    const abort = new AbortController();
    abort.abort();
    assert.deepEqual(await within(collect(streamEvents(log.source, 0, abort.signal)), 2000, 'pre-aborted stream'), []);
    log.complete();
  });
});
