import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { readAhead } from './read-ahead.ts';

const chunk = (n: number, fill: number) => Buffer.alloc(n, fill);

test('readAhead yields the chunks in order and ends with the stream', async () => {
  const s = new PassThrough();
  s.write(chunk(3, 1));
  s.write(chunk(5, 2));
  s.end(chunk(2, 3));
  const got: number[] = [];
  for await (const c of readAhead(s, 1024)) got.push(c.length, c[0]!);
  assert.deepEqual(got, [3, 1, 5, 2, 2, 3]);
});

test('readAhead keeps reading while the consumer waits, and pauses the stream once maxBytes are queued', async () => {
  const s = new PassThrough();
  const it = readAhead(s, 10)[Symbol.asyncIterator]();
  const first = it.next();
  s.write(chunk(4, 1));
  assert.equal((await first).value!.length, 4);
  // The consumer is busy: the stream keeps flowing into the queue until 10 bytes wait there.
  s.write(chunk(4, 2));
  s.write(chunk(4, 3));
  s.write(chunk(4, 4));
  await new Promise((r) => setImmediate(r));
  assert.equal(s.isPaused(), true);
  assert.equal((await it.next()).value![0], 2);
  assert.equal(s.isPaused(), false, 'resumed once the queue is below maxBytes');
  assert.equal((await it.next()).value![0], 3);
  assert.equal((await it.next()).value![0], 4);
  s.end();
  assert.equal((await it.next()).done, true);
});

test('readAhead throws a stream error after the chunks that came before it', async () => {
  const s = new PassThrough();
  const it = readAhead(s, 1024)[Symbol.asyncIterator]();
  s.write(chunk(2, 7));
  await new Promise((r) => setImmediate(r));
  s.destroy(new Error('boom'));
  assert.equal((await it.next()).value![0], 7);
  await assert.rejects(it.next(), /boom/);
});

test('readAhead ends when the stream closes without an end (a cut the consumer notices)', async () => {
  const s = new PassThrough();
  const it = readAhead(s, 1024)[Symbol.asyncIterator]();
  const pending = it.next();
  s.destroy();
  assert.equal((await pending).done, true);
});
