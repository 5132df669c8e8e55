import { isUtf8 } from 'node:buffer';

/**
 * Splits a byte stream into chunks that are whole UTF-8 text where possible. A multi-byte
 * character cut by a read boundary is held back until its remaining bytes arrive; a chunk that
 * is not UTF-8 even so is passed on as base64, so no byte is ever altered.
 */
export class OutputEncoder {
  private held: Buffer = Buffer.alloc(0);

  /** Returns the chunk to emit now, or undefined when everything was held back. */
  push(chunk: Buffer): { data: string; encoding?: 'base64' } | undefined {
    const bytes = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    const cut = incompleteTail(bytes);
    this.held = cut > 0 ? Buffer.from(bytes.subarray(bytes.length - cut)) : Buffer.alloc(0);
    const body = cut > 0 ? bytes.subarray(0, bytes.length - cut) : bytes;
    return body.length === 0 ? undefined : encode(body);
  }

  /** Whatever is still held at end of stream (an incomplete character: base64). */
  flush(): { data: string; encoding?: 'base64' } | undefined {
    if (this.held.length === 0) return undefined;
    const rest = this.held;
    this.held = Buffer.alloc(0);
    return encode(rest);
  }
}

function encode(bytes: Buffer): { data: string; encoding?: 'base64' } {
  return isUtf8(bytes) ? { data: bytes.toString('utf8') } : { data: bytes.toString('base64'), encoding: 'base64' };
}

/** Bytes at the end that start a UTF-8 sequence not yet complete (0 to 3). */
function incompleteTail(bytes: Buffer): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: look further back
    // Bytes 0x80-0xC1 and 0xF5-0xFF never start a character: nothing to wait for.
    const need = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 1;
    return need > back ? back : 0;
  }
  return 0;
}
