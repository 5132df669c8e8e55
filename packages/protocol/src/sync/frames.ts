/**
 * The content stream of a sync (docs/sync-protocol.md, "Content frames"): file contents one
 * after another, each named by its SHA-256, so the receiver can verify each one and a content
 * needed at several paths travels once.
 *
 *   frame  = u8(1) ‖ hash (32 raw bytes) ‖ u64(length, big-endian) ‖ content (length bytes)
 *   end    = u8(0)
 *
 * A stream that stops before `end` was cut: every frame before the cut is complete and usable.
 */
import { createHash } from 'node:crypto';
import { FaasError } from '../errors/index.ts';
import { ByteReader } from './byte-reader.ts';

const TAG_CONTENT = 1;
const TAG_END = 0;
const HEADER = 1 + 32 + 8;

export interface OutgoingContent {
  hash: string;
  size: number;
  content: AsyncIterable<Uint8Array>;
}

export interface IncomingContent {
  hash: string;
  size: number;
  /** The content, verified against `hash` as it is read: the last chunk throws if it differs. Must be read to the end before the next frame. */
  content: AsyncIterable<Uint8Array>;
}

/** Encodes contents as frames, ending with `end`; throws if a content is not `size` bytes. */
export async function* encodeFrames(items: AsyncIterable<OutgoingContent> | Iterable<OutgoingContent>): AsyncIterable<Uint8Array> {
  for await (const item of items) {
    const header = Buffer.alloc(HEADER);
    header[0] = TAG_CONTENT;
    Buffer.from(item.hash, 'hex').copy(header, 1);
    header.writeBigUInt64BE(BigInt(item.size), 33);
    yield header;
    let sent = 0;
    for await (const chunk of item.content) {
      sent += chunk.byteLength;
      if (sent > item.size) throw new FaasError('VALIDATION_FAILED', `content ${item.hash} grew past its ${item.size} bytes while it was sent`, { hash: item.hash });
      yield chunk;
    }
    if (sent !== item.size) throw new FaasError('VALIDATION_FAILED', `content ${item.hash} has ${sent} bytes, not ${item.size} (it changed while it was sent)`, { hash: item.hash });
  }
  yield Buffer.from([TAG_END]);
}

export function cut(what: string): FaasError {
  return new FaasError('VALIDATION_FAILED', `the content stream was cut ${what}`, { cut: true });
}

/**
 * Decodes frames. Each content's bytes are verified against its hash; a mismatch, a malformed
 * header or a stream cut inside a frame throws (VALIDATION_FAILED, details.cut for a cut).
 * Returns normally after `end`; a stream that ends cleanly between frames without `end` throws
 * a cut too, after every complete frame was yielded.
 */
export async function* decodeFrames(source: AsyncIterable<Uint8Array>, maxChunk = 1024 * 1024): AsyncIterable<IncomingContent> {
  const reader = new ByteReader(source);
  for (;;) {
    const tag = await reader.read(1);
    if (tag.length === 0) throw cut('between two contents (no end marker)');
    if (tag[0] === TAG_END) return;
    if (tag[0] !== TAG_CONTENT) throw new FaasError('VALIDATION_FAILED', `unknown frame tag ${tag[0]} in the content stream`, { tag: tag[0] });
    const header = await reader.read(HEADER - 1);
    if (header.length < HEADER - 1) throw cut('in a frame header');
    const hash = header.subarray(0, 32).toString('hex');
    const size = header.readBigUInt64BE(32);
    if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new FaasError('VALIDATION_FAILED', `content ${hash} claims ${size} bytes`, { hash });
    const total = Number(size);
    let consumed = false;
    const content = (async function* (): AsyncIterable<Uint8Array> {
      const hasher = createHash('sha256');
      let left = total;
      while (left > 0) {
        const chunk = await reader.readSome(Math.min(left, maxChunk));
        if (chunk.length === 0) throw cut(`inside content ${hash}`);
        left -= chunk.length;
        hasher.update(chunk);
        yield chunk;
      }
      const actual = hasher.digest('hex');
      if (actual !== hash) throw new FaasError('BLOB_HASH_MISMATCH', `content sent as ${hash} hashes to ${actual}`, { expected: hash, actual, size: total });
      consumed = true;
    })();
    yield { hash, size: total, content };
    if (!consumed) throw new FaasError('INTERNAL_ERROR', `content ${hash} was not read to its end before the next frame`, { hash });
  }
}
