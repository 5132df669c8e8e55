import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { isFaasError } from '../errors/index.ts';
import { createUploadDigest, decodeUploadFrames, DIGEST_BYTES, END_FRAME, FILE_HEADER_BYTES, sameFrame, writeFileHeader, type UploadFrame } from './upload-frames.ts';

async function fileFrame(index: number, content: Buffer, corrupt = false): Promise<Buffer> {
  const header = Buffer.alloc(FILE_HEADER_BYTES);
  writeFileHeader(header, 0, index, content.length);
  const d = await createUploadDigest();
  d.init();
  d.update(content);
  const digest = Buffer.from(d.digest('binary'));
  assert.equal(digest.length, DIGEST_BYTES);
  if (corrupt) digest[0]! ^= 1;
  return Buffer.concat([header, content, digest]);
}

async function* pieces(b: Buffer, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

async function decodeAll(stream: Buffer, piece = 7): Promise<Array<{ frame: UploadFrame; content?: Buffer }>> {
  const out: Array<{ frame: UploadFrame; content?: Buffer }> = [];
  for await (const frame of decodeUploadFrames(pieces(stream, piece), 1000)) {
    if (frame.kind === 'file') {
      const parts: Buffer[] = [];
      for await (const c of frame.content) parts.push(Buffer.from(c));
      out.push({ frame, content: Buffer.concat(parts) });
    } else out.push({ frame });
  }
  return out;
}

test('file and same frames round-trip whatever the chunking, empty files included', async () => {
  const a = randomBytes(5000);
  const b = Buffer.alloc(0);
  const stream = Buffer.concat([await fileFrame(0, a), await fileFrame(2, b), sameFrame(1, 0), END_FRAME]);
  for (const piece of [1, 7, 4096, stream.length]) {
    const got = await decodeAll(stream, piece);
    assert.equal(got.length, 3);
    assert.deepEqual(got[0]!.frame.kind === 'file' && [got[0]!.frame.index, got[0]!.frame.size], [0, 5000]);
    assert.ok(got[0]!.content!.equals(a));
    assert.ok(got[1]!.frame.kind === 'file' && got[1]!.frame.index === 2 && got[1]!.content!.length === 0);
    assert.deepEqual(got[2]!.frame, { kind: 'same', index: 1, earlier: 0 });
  }
});

test('a damaged content is BLOB_HASH_MISMATCH at its end', async () => {
  const stream = Buffer.concat([await fileFrame(0, randomBytes(300), true), END_FRAME]);
  await assert.rejects(decodeAll(stream), (e: unknown) => isFaasError(e) && e.code === 'BLOB_HASH_MISMATCH');
});

test('a stream cut anywhere before the end marker is a cut; frames before it are whole', async () => {
  const a = randomBytes(100);
  const whole = Buffer.concat([await fileFrame(0, a), await fileFrame(1, randomBytes(100)), END_FRAME]);
  for (let at = 0; at < whole.length; at += 13) {
    const seen: number[] = [];
    await assert.rejects(
      (async () => {
        for await (const f of decodeUploadFrames(pieces(whole.subarray(0, at), 9))) {
          if (f.kind === 'file') for await (const _ of f.content) void _;
          seen.push(f.index);
        }
      })(),
      (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED' && (e.details as { cut?: boolean }).cut === true,
      `cut at ${at}`,
    );
    if (at >= FILE_HEADER_BYTES + 100 + DIGEST_BYTES) assert.deepEqual(seen.slice(0, 1), [0]);
  }
});

test('an unknown tag is refused', async () => {
  await assert.rejects(decodeAll(Buffer.from([1, 0, 0])), (e: unknown) => isFaasError(e) && e.code === 'VALIDATION_FAILED' && /unknown frame tag 1/.test(e.message));
});
