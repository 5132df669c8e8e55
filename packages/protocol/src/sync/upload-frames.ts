/**
 * The content stream of an upload (docs/sync-protocol.md, "Upload frames"): the files the plan
 * needs, each named by its position in the plan's `needed` list and followed by the XXH3-128
 * of its bytes, which the server checks before it renames the file into place.
 *
 *   file = u8(2) ‖ u32(index) ‖ u64(length, big-endian) ‖ content ‖ xxh3-128(content) (16 bytes)
 *   same = u8(3) ‖ u32(index) ‖ u32(earlier index)   the content of an earlier file of the stream
 *   end  = u8(0)
 *
 * Why a trailing digest rather than a leading content hash (as download frames have): the
 * client hashes while it sends, so no pass over the files delays the first byte, and the
 * checksum guards the transfer only (what is written is what was read), so a fast
 * non-cryptographic one is enough: the client names its own files, nothing is shared or
 * stored under that name. A stream that stops before `end` was cut: every file before the cut
 * is in place.
 */
import { createXXHash128, type IHasher } from 'hash-wasm';
import { FaasError } from '../errors/index.ts';
import { ByteReader } from './byte-reader.ts';
import { cut } from './frames.ts';

const TAG_END = 0;
const TAG_FILE = 2;
const TAG_SAME = 3;
/** Bytes of a file frame's header (tag, index, length). */
export const FILE_HEADER_BYTES = 1 + 4 + 8;
/** Bytes of the digest after a file frame's content. */
export const DIGEST_BYTES = 16;
const SAME_BYTES = 1 + 4 + 4;

export const END_FRAME: Uint8Array = Uint8Array.of(TAG_END);

export type UploadFrame =
  | {
      kind: 'file';
      index: number;
      size: number;
      /** The content, checked against its digest as it is read: the step after the last chunk throws on a mismatch. Read it to its end before the next frame. */
      content: AsyncIterable<Uint8Array>;
    }
  | { kind: 'same'; index: number; earlier: number };

/** An XXH3-128 hasher for the digests of one stream (used for one file at a time). */
export function createUploadDigest(): Promise<IHasher> {
  return createXXHash128();
}

/** Writes a file frame's header into `into` at `offset` (FILE_HEADER_BYTES bytes). */
export function writeFileHeader(into: Buffer, offset: number, index: number, length: number): void {
  into[offset] = TAG_FILE;
  into.writeUInt32BE(index, offset + 1);
  into.writeBigUInt64BE(BigInt(length), offset + 5);
}

/** A `same` frame: file `index` has the content of the earlier file `earlier`. */
export function sameFrame(index: number, earlier: number): Buffer {
  const b = Buffer.allocUnsafe(SAME_BYTES);
  b[0] = TAG_SAME;
  b.writeUInt32BE(index, 1);
  b.writeUInt32BE(earlier, 5);
  return b;
}

/**
 * Decodes an upload stream. A digest mismatch (BLOB_HASH_MISMATCH), a malformed frame or a cut
 * inside a frame (VALIDATION_FAILED, details.cut) throws; returns after `end`. Indexes are not
 * checked against anything here: the receiver knows its plan.
 */
export async function* decodeUploadFrames(source: AsyncIterable<Uint8Array>, maxChunk = 1024 * 1024): AsyncIterable<UploadFrame> {
  const reader = new ByteReader(source);
  const hasher = await createUploadDigest();
  for (;;) {
    const tag = await reader.read(1);
    if (tag.length === 0) throw cut('between two files (no end marker)');
    if (tag[0] === TAG_END) return;
    if (tag[0] === TAG_SAME) {
      const body = await reader.read(SAME_BYTES - 1);
      if (body.length < SAME_BYTES - 1) throw cut('in a frame header');
      yield { kind: 'same', index: body.readUInt32BE(0), earlier: body.readUInt32BE(4) };
      continue;
    }
    if (tag[0] !== TAG_FILE) throw new FaasError('VALIDATION_FAILED', `unknown frame tag ${tag[0]} in the upload stream`, { tag: tag[0] });
    const header = await reader.read(FILE_HEADER_BYTES - 1);
    if (header.length < FILE_HEADER_BYTES - 1) throw cut('in a frame header');
    const index = header.readUInt32BE(0);
    const length = header.readBigUInt64BE(4);
    if (length > BigInt(Number.MAX_SAFE_INTEGER)) throw new FaasError('VALIDATION_FAILED', `file ${index} of the upload claims ${length} bytes`, { index });
    const size = Number(length);
    let consumed = false;
    const content = (async function* (): AsyncIterable<Uint8Array> {
      hasher.init();
      let left = size;
      while (left > 0) {
        const chunk = await reader.readSome(Math.min(left, maxChunk));
        if (chunk.length === 0) throw cut(`inside file ${index}`);
        left -= chunk.length;
        hasher.update(chunk);
        yield chunk;
      }
      const sent = await reader.read(DIGEST_BYTES);
      if (sent.length < DIGEST_BYTES) throw cut(`in the digest of file ${index}`);
      const actual = Buffer.from(hasher.digest('binary'));
      if (!actual.equals(sent)) {
        throw new FaasError('BLOB_HASH_MISMATCH', `file ${index} of the upload does not match its checksum (it was damaged in transit)`, { index, expected: sent.toString('hex'), actual: actual.toString('hex'), size });
      }
      consumed = true;
    })();
    yield { kind: 'file', index, size, content };
    if (!consumed) throw new FaasError('INTERNAL_ERROR', `file ${index} of the upload was not read to its end before the next frame`, { index });
  }
}
