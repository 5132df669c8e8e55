import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { OutputEncoder } from './output-encoder.ts';

type Piece = { data: string; encoding?: 'base64' };

/** Feeds chunks, then flushes; returns every piece emitted, in order. */
function encodeAll(chunks: Buffer[]): Piece[] {
  const encoder = new OutputEncoder();
  const pieces: Piece[] = [];
  for (const chunk of chunks) {
    const piece = encoder.push(chunk);
    if (piece !== undefined) pieces.push(piece);
  }
  const rest = encoder.flush();
  if (rest !== undefined) pieces.push(rest);
  return pieces;
}

/** The original bytes back from the pieces, whatever their encoding. */
function decode(pieces: Piece[]): Buffer {
  return Buffer.concat(pieces.map((p) => Buffer.from(p.data, p.encoding === 'base64' ? 'base64' : 'utf8')));
}

const CHARACTERS: Array<[string, number]> = [
  ['é', 2],
  ['€', 3],
  ['😀', 4],
];

describe('OutputEncoder', () => {
  for (const [ch, width] of CHARACTERS) {
    it(`keeps a ${width}-byte character whole as text when a chunk boundary falls at any byte inside it`, () => {
      const text = `a${ch}b${ch}`;
      const bytes = Buffer.from(text, 'utf8');
      assert.equal(Buffer.byteLength(ch), width);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const pieces = encodeAll([bytes.subarray(0, cut), bytes.subarray(cut)]);
        assert.ok(
          pieces.every((p) => p.encoding === undefined),
          `cut at byte ${cut}: no piece may be base64, got ${JSON.stringify(pieces)}`,
        );
        assert.equal(pieces.map((p) => p.data).join(''), text, `cut at byte ${cut}`);
      }
    });

    it(`keeps a ${width}-byte character whole when it arrives one byte per chunk`, () => {
      const text = `${ch}x${ch}`;
      const bytes = Buffer.from(text, 'utf8');
      const pieces = encodeAll([...bytes].map((b) => Buffer.from([b])));
      assert.ok(pieces.every((p) => p.encoding === undefined), JSON.stringify(pieces));
      assert.equal(pieces.map((p) => p.data).join(''), text);
    });

    it(`holds back only the incomplete tail of a ${width}-byte character and emits the text before it at once`, () => {
      const encoder = new OutputEncoder();
      const bytes = Buffer.from(`ok${ch}`, 'utf8');
      const first = encoder.push(bytes.subarray(0, 2 + width - 1));
      assert.deepEqual(first, { data: 'ok' });
      assert.deepEqual(encoder.push(bytes.subarray(2 + width - 1)), { data: ch });
      assert.equal(encoder.flush(), undefined);
    });
  }

  it('passes a chunk holding bytes that are not UTF-8 on as base64 with every byte unchanged', () => {
    const bytes = Buffer.from([0x61, 0xff, 0xfe, 0x62, 0xc3, 0x28, 0x00, 0x80]);
    const pieces = encodeAll([bytes]);
    assert.equal(pieces.length, 1);
    assert.equal(pieces[0]!.encoding, 'base64');
    assert.deepEqual(decode(pieces), bytes);
  });

  it('preserves every byte of random binary output across random chunk boundaries', () => {
    let state = 12345;
    const rand = () => (state = (state * 1103515245 + 12345) & 0x7fffffff);
    for (let round = 0; round < 200; round++) {
      const bytes = Buffer.from(Array.from({ length: 1 + (rand() % 64) }, () => rand() & 0xff));
      const chunks: Buffer[] = [];
      for (let at = 0; at < bytes.length; ) {
        const len = 1 + (rand() % 8);
        chunks.push(bytes.subarray(at, at + len));
        at += len;
      }
      assert.deepEqual(decode(encodeAll(chunks)), bytes, `round ${round}`);
    }
  });

  it('flushes a dangling partial character at end of stream as base64 of exactly its bytes', () => {
    const encoder = new OutputEncoder();
    const euro = Buffer.from('€', 'utf8');
    assert.equal(encoder.push(euro.subarray(0, 2)), undefined, 'an incomplete character alone is held back');
    const rest = encoder.flush();
    assert.deepEqual(rest, { data: euro.subarray(0, 2).toString('base64'), encoding: 'base64' });
    assert.equal(encoder.flush(), undefined, 'a second flush has nothing left');
  });

  it('passes an incomplete character followed by a non-continuation byte on as base64 without losing bytes', () => {
    const pieces = encodeAll([Buffer.from([0x41, 0xe2, 0x82]), Buffer.from([0x41, 0x42])]);
    assert.deepEqual(decode(pieces), Buffer.from([0x41, 0xe2, 0x82, 0x41, 0x42]));
    assert.deepEqual(pieces[0], { data: 'A' });
    assert.ok(pieces.slice(1).some((p) => p.encoding === 'base64'));
  });

  it('does not hold back a trailing continuation byte that has no lead byte', () => {
    const encoder = new OutputEncoder();
    const piece = encoder.push(Buffer.from([0x61, 0x80]));
    assert.deepEqual(piece, { data: Buffer.from([0x61, 0x80]).toString('base64'), encoding: 'base64' });
    assert.equal(encoder.flush(), undefined);
  });

  it('does not hold back a trailing byte that can never start a UTF-8 character (0xC0, 0xC1, 0xF5-0xFF), so the next chunk stays text', () => {
    for (const bad of [0xc0, 0xc1, 0xf5, 0xf8, 0xfe, 0xff]) {
      const encoder = new OutputEncoder();
      const first = encoder.push(Buffer.from([0x61, bad]));
      assert.deepEqual(first, { data: Buffer.from([0x61, bad]).toString('base64'), encoding: 'base64' }, `byte 0x${bad.toString(16)} must be emitted at once`);
      assert.deepEqual(encoder.push(Buffer.from('bc')), { data: 'bc' }, `text after byte 0x${bad.toString(16)} must stay text`);
    }
  });

  it('emits nothing for an empty chunk', () => {
    const encoder = new OutputEncoder();
    assert.equal(encoder.push(Buffer.alloc(0)), undefined);
    assert.equal(encoder.flush(), undefined);
  });
});
