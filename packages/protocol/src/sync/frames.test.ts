import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { decodeFrames, encodeFrames } from './frames.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
async function* chunks(b: Buffer, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}
async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}
/** Re-chunks a byte stream into pieces of `size`, as a network would. */
async function* rechunk(source: AsyncIterable<Uint8Array>, size: number) {
  const all = await collect(source);
  yield* chunks(all, size);
}

test('contents round-trip in order, verified, whatever the chunking', async () => {
  const items = [randomBytes(0), randomBytes(1), randomBytes(70_000), randomBytes(3 * 1024 * 1024 + 5)];
  for (const piece of [1, 7, 4096, 1 << 20]) {
    const encoded = encodeFrames(items.map((b) => ({ hash: sha(b), size: b.length, content: chunks(b, 65_536) })));
    const got: Buffer[] = [];
    for await (const f of decodeFrames(rechunk(encoded, piece))) {
      const content = await collect(f.content);
      assert.equal(f.hash, sha(content));
      assert.equal(f.size, content.length);
      got.push(content);
    }
    assert.deepEqual(got, items, `chunking ${piece}`);
  }
});

test('a cut stream yields every complete frame, then throws a cut', async () => {
  const a = randomBytes(1000);
  const b = randomBytes(1000);
  const whole = await collect(encodeFrames([a, b].map((x) => ({ hash: sha(x), size: x.length, content: chunks(x, 100) }))));
  const cuts: Array<[number, string[]]> = [
    [whole.length - 1, [sha(a), sha(b)]], // only the end marker missing
    [whole.length - 500, [sha(a)]], // inside b's content
    [41 + 1000 + 10, [sha(a)]], // inside b's header
  ];
  for (const [at, expected] of cuts) {
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const f of decodeFrames(chunks(whole.subarray(0, at), 333))) {
          await collect(f.content);
          got.push(f.hash);
        }
      })(),
      (err: unknown) => isFaasError(err) && (err.details as { cut?: boolean }).cut === true,
    );
    assert.deepEqual(got, expected, `cut at ${at}`);
  }
});

test('content that does not match its hash is refused', async () => {
  const a = randomBytes(100);
  const wrong = encodeFrames([{ hash: sha(randomBytes(100)), size: 100, content: chunks(a, 10) }]);
  await assert.rejects(
    (async () => {
      for await (const f of decodeFrames(wrong)) await collect(f.content);
    })(),
    (err: unknown) => isFaasError(err) && err.code === 'BLOB_HASH_MISMATCH',
  );
});

test('the sender refuses content whose size changed while it was sent', async () => {
  const a = randomBytes(100);
  await assert.rejects(collect(encodeFrames([{ hash: sha(a), size: 99, content: chunks(a, 10) }])), (err: unknown) => isFaasError(err) && err.code === 'VALIDATION_FAILED');
  await assert.rejects(collect(encodeFrames([{ hash: sha(a), size: 101, content: chunks(a, 10) }])), (err: unknown) => isFaasError(err) && err.code === 'VALIDATION_FAILED');
});

test('an unknown tag is refused', async () => {
  await assert.rejects(
    (async () => {
      for await (const f of decodeFrames(chunks(Buffer.from([7, 1, 2]), 1))) await collect(f.content);
    })(),
    (err: unknown) => isFaasError(err) && err.code === 'VALIDATION_FAILED',
  );
});
