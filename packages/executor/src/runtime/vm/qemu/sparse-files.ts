import { execFile } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import koffi from 'koffi';
import { FaasError } from '@faas/protocol';

/**
 * Sparse files (VM RAM files, data disks): copying only their data, and a byte stream for the
 * content-addressed blob store.
 *
 * Stream format ("FAASSPK1"), all integers big-endian:
 *   header  = "FAASSPK1" | u64 file size
 *   extent* = u64 offset | u32 length | length bytes       (length > 0)
 *   end     = u64 file size | u32 0
 * Extents are the maximal runs of 4 KiB blocks (the last block may be shorter) that are not all
 * zero, cut every EXTENT_MAX bytes from the run's start (and, for region streams, at region
 * boundaries), in increasing offset order. Holes and
 * written zeros are therefore the same thing: the stream, and so its SHA-256, depends only on
 * the bytes the file reads as, never on how the filesystem happens to store them.
 */

const MAGIC = Buffer.from('FAASSPK1');
const BLOCK = 4096;
const EXTENT_MAX = 1 << 20;
const READ_CHUNK = 1 << 20;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

const libc = koffi.load('libc.so.6');
// Node has no lseek; SEEK_DATA/SEEK_HOLE let a 1 GiB file with 10 MB of data be read as 10 MB.
const lseek = libc.func('int64_t lseek(int fd, int64_t offset, int whence)');

const execFileAsync = promisify(execFile);

/**
 * Copies `src` to `dst` (replacing it), writing only data: holes stay holes and zero blocks
 * become holes. Reflinks where the filesystem can (btrfs, xfs). coreutils' cp walks extents
 * with SEEK_DATA, which no user-space loop here could beat.
 */
export async function copySparse(src: string, dst: string): Promise<void> {
  try {
    await execFileAsync('cp', ['--sparse=always', '--reflink=auto', '--', src, dst]);
  } catch (error) {
    throw new FaasError('RUNTIME_ERROR', `copying ${src} to ${dst} failed: ${(error as { stderr?: string }).stderr?.trim() ?? String(error)}`, {}, { cause: error });
  }
}

/** The FAASSPK1 stream of the file at `path` (see the module comment). */
export function packSparse(path: string): Readable {
  return Readable.from(packGenerator(path), { objectMode: false });
}

async function* packGenerator(path: string): AsyncGenerator<Buffer> {
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    yield Buffer.concat([MAGIC, u64(size)]);
    for await (const extent of extents(file, size, Number.POSITIVE_INFINITY)) yield* extent.buffers;
    yield Buffer.concat([u64(size), u32(0)]);
  } finally {
    await file.close();
  }
}

/**
 * The file cut into regions of `regionBytes` (a multiple of 4 KiB), each as a FAASSPK1 stream of
 * its own holding only that region's extents (header and end give the whole file's size), in
 * order, empty regions included: `ceil(size / regionBytes)` buffers. A region's bytes depend only
 * on its content, so consecutive images of a file that changed in a few places share the rest
 * (the blob store keeps equal regions once). Each buffer is at most the region plus headers.
 */
export async function* packSparseRegions(path: string, regionBytes: number): AsyncGenerator<Buffer> {
  if (regionBytes <= 0 || regionBytes % BLOCK !== 0) throw new FaasError('VALIDATION_FAILED', `region size must be a positive multiple of ${BLOCK}, not ${regionBytes}`);
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    const header = Buffer.concat([MAGIC, u64(size)]);
    const end = Buffer.concat([u64(size), u32(0)]);
    let region = 0;
    let parts: Buffer[] = [header];
    for await (const extent of extents(file, size, regionBytes)) {
      const at = Math.floor(extent.offset / regionBytes);
      for (; region < at; region++) {
        yield Buffer.concat([...parts, end]);
        parts = [header];
      }
      parts.push(...extent.buffers);
    }
    for (const count = Math.ceil(size / regionBytes); region < count; region++) {
      yield Buffer.concat([...parts, end]);
      parts = [header];
    }
  } finally {
    await file.close();
  }
}

/**
 * The file's extents (maximal runs of non-zero blocks, cut every EXTENT_MAX bytes and at every
 * multiple of `cutEvery`), each as its record header followed by its blocks.
 */
async function* extents(file: FileHandle, size: number, cutEvery: number): AsyncGenerator<{ offset: number; buffers: Buffer[] }> {
  let run: Buffer[] = [];
  let runStart = 0;
  let runLength = 0;
  const take = (): { offset: number; buffers: Buffer[] } => {
    const extent = { offset: runStart, buffers: [Buffer.concat([u64(runStart), u32(runLength)]), ...run] };
    run = [];
    runLength = 0;
    return extent;
  };
  for await (const { offset, data } of dataChunks(file, size)) {
    for (let at = 0; at < data.length; at += BLOCK) {
      const block = data.subarray(at, at + BLOCK);
      const blockOffset = offset + at;
      const zero = isZero(block);
      const breaks = runLength > 0 && (runStart + runLength !== blockOffset || blockOffset % cutEvery === 0);
      if (runLength > 0 && (zero || breaks)) yield take();
      if (zero) continue;
      if (runLength === 0) runStart = blockOffset;
      run.push(block);
      runLength += block.length;
      if (runLength === EXTENT_MAX) yield take();
    }
  }
  if (runLength > 0) yield take();
}

/** Block-aligned chunks of the file's data regions (holes skipped), in offset order. */
async function* dataChunks(file: FileHandle, size: number): AsyncGenerator<{ offset: number; data: Buffer }> {
  let offset = 0;
  while (offset < size) {
    const dataStart = seek(file.fd, offset, SEEK_DATA);
    if (dataStart < 0) return; // only a hole is left
    const start = dataStart - (dataStart % BLOCK);
    const holeStart = Math.min(seek(file.fd, dataStart, SEEK_HOLE), size);
    for (let at = start; at < holeStart; at += READ_CHUNK) {
      const length = Math.min(READ_CHUNK, size - at);
      // A fresh buffer per chunk: its blocks are yielded by reference.
      const data = Buffer.allocUnsafe(length);
      const { bytesRead } = await file.read(data, 0, length, at);
      yield { offset: at, data: data.subarray(0, bytesRead) };
    }
    offset = Math.max(holeStart, start + Math.ceil((holeStart - start) / READ_CHUNK) * READ_CHUNK);
  }
}

function seek(fd: number, offset: number, whence: number): number {
  const result = Number(lseek(fd, offset, whence));
  if (result >= 0) return result;
  const errno = koffi.errno();
  if (errno === ENXIO) return -1;
  throw new FaasError('RUNTIME_ERROR', `lseek failed with errno ${errno}`);
}

const ZERO_BLOCK = Buffer.alloc(BLOCK);

function isZero(block: Buffer): boolean {
  return block.length === BLOCK ? block.equals(ZERO_BLOCK) : block.equals(ZERO_BLOCK.subarray(0, block.length));
}

function u64(value: number): Buffer {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(BigInt(value));
  return buffer;
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value);
  return buffer;
}

/**
 * Writes the file a FAASSPK1 stream describes to `dst` (replacing it): a sparse file of the
 * stream's size with only the extents written. With `into`, writes the extents into the
 * existing file instead (one region of `packSparseRegions` after another), which must already
 * have the stream's size. Rejects a malformed stream with VALIDATION_FAILED.
 */
export async function unpackSparse(stream: Readable, dst: string, options: { into?: boolean } = {}): Promise<void> {
  const reader = new ExactReader(stream);
  const file = await open(dst, options.into === true ? 'r+' : 'w');
  try {
    const header = await reader.read(16);
    if (!header.subarray(0, 8).equals(MAGIC)) throw malformed('bad magic');
    const size = Number(header.readBigUInt64BE(8));
    if (options.into !== true) await file.truncate(size);
    else if ((await file.stat()).size !== size) throw malformed(`stream of a ${size}-byte file written into a file of another size`);
    let end = 0;
    for (;;) {
      const record = await reader.read(12);
      const offset = Number(record.readBigUInt64BE(0));
      const length = record.readUInt32BE(8);
      if (length === 0) {
        if (offset !== size) throw malformed('end record does not repeat the size');
        break;
      }
      if (offset < end || offset + length > size || length > EXTENT_MAX) throw malformed(`extent ${offset}+${length} out of order or range`);
      await file.write(await reader.read(length), 0, length, offset);
      end = offset + length;
    }
    if (!(await reader.atEnd())) throw malformed('trailing bytes after the end record');
  } finally {
    await file.close();
  }
}

function malformed(why: string): FaasError {
  return new FaasError('VALIDATION_FAILED', `sparse stream: ${why}`);
}

/** Reads exact byte counts from a stream of arbitrary chunks. */
class ExactReader {
  readonly #iterator: AsyncIterator<Buffer>;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(stream: Readable) {
    this.#iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async read(length: number): Promise<Buffer> {
    while (this.#pendingBytes < length) {
      if (!(await this.#pull())) throw malformed('truncated');
    }
    const all = this.#pending.length === 1 ? (this.#pending[0] as Buffer) : Buffer.concat(this.#pending);
    this.#pending = all.length > length ? [all.subarray(length)] : [];
    this.#pendingBytes = all.length - length;
    return all.subarray(0, length);
  }

  async atEnd(): Promise<boolean> {
    return this.#pendingBytes === 0 && !(await this.#pull());
  }

  async #pull(): Promise<boolean> {
    const next = await this.#iterator.next();
    if (next.done) return false;
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value);
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    return true;
  }
}
