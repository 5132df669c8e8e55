/**
 * Framing of the host <-> guest agent protocol (CONTRACT.md, "Agent protocol"); agent.py holds
 * the same numbers. A frame is `u32 length | u8 type | u32 channel | payload`, big-endian,
 * where length counts type + channel + payload.
 */

export const FrameType = {
  HELLO: 0x01,
  HELLO_OK: 0x02,
  PING: 0x03,
  PONG: 0x04,
  FS_FREEZE: 0x05,
  FS_THAW: 0x06,
  FS_OK: 0x07,
  FS_ERROR: 0x08,
  ERROR: 0x09,
  EXEC: 0x10,
  STARTED: 0x11,
  EXEC_FAILED: 0x12,
  STDIN: 0x13,
  STDIN_EOF: 0x14,
  STDOUT: 0x15,
  STDERR: 0x16,
  PROGRESS: 0x17,
  SIGNAL: 0x18,
  RESIZE: 0x19,
  EXIT: 0x1a,
  CONNECT: 0x20,
  CONNECTED: 0x21,
  CONNECT_FAILED: 0x22,
  DATA: 0x23,
  EOF: 0x24,
  CLOSE: 0x25,
  CREDIT: 0x30,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Bytes of type + channel, counted in the length field. */
const FRAME_HEAD = 5;
const HEADER = 4 + FRAME_HEAD;
export const MAX_PAYLOAD = 1 << 20;
/** Initial credit of every data stream (each channel, each direction). */
export const WINDOW = 256 * 1024;
/** Largest data payload we send: keeps one stream from hogging the shared port. */
export const MAX_DATA = 64 * 1024;
/** Credit is given back in batches of at least this much (the sender keeps >= 3/4 of its window). */
export const GRANT_BATCH = WINDOW / 4;

export interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}

export function encodeFrame(type: FrameType, channel: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.allocUnsafe(HEADER);
  head.writeUInt32BE(FRAME_HEAD + payload.length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32BE(channel, 5);
  return payload.length === 0 ? head : Buffer.concat([head, payload]);
}

export function encodeJson(type: FrameType, channel: number, body: unknown): Buffer {
  return encodeFrame(type, channel, Buffer.from(JSON.stringify(body)));
}

/** CREDIT payload: the type of the data frames it is for (u8) and the bytes granted (u32). */
export function encodeCredit(channel: number, stream: FrameType, bytes: number): Buffer {
  const body = Buffer.allocUnsafe(5);
  body.writeUInt8(stream, 0);
  body.writeUInt32BE(bytes, 1);
  return encodeFrame(FrameType.CREDIT, channel, body);
}

export function decodeCredit(payload: Buffer): { stream: number; bytes: number } {
  return { stream: payload.readUInt8(0), bytes: payload.readUInt32BE(1) };
}

/**
 * Splits the byte stream into frames. Until `sync` finds the HELLO_OK answering our HELLO
 * (matched by nonce), everything else is skipped: after a reconnect the port may still carry
 * the tail of what the agent sent to the previous connection (or to a snapshot's saver).
 */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  private synced = false;

  constructor(private readonly nonce: string) {}

  /** Returns the complete frames in `chunk`; throws on a length no frame can have. */
  push(chunk: Buffer): Frame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Frame[] = [];
    for (;;) {
      if (!this.synced && !this.findHelloOk()) return frames;
      if (this.buffer.length < HEADER) return frames;
      const length = this.buffer.readUInt32BE(0);
      if (length < FRAME_HEAD || length - FRAME_HEAD > MAX_PAYLOAD) throw new Error(`agent sent a frame of length ${length}`);
      if (this.buffer.length < 4 + length) return frames;
      frames.push({ type: this.buffer.readUInt8(4), channel: this.buffer.readUInt32BE(5), payload: this.buffer.subarray(HEADER, 4 + length) });
      this.buffer = this.buffer.subarray(4 + length);
    }
  }

  private findHelloOk(): boolean {
    const mark = Buffer.from([FrameType.HELLO_OK, 0, 0, 0, 0, 0x7b]);
    for (let at = this.buffer.indexOf(mark, 4); at >= 0; at = this.buffer.indexOf(mark, at + 1)) {
      const length = this.buffer.readUInt32BE(at - 4);
      if (length > MAX_PAYLOAD) continue;
      if (this.buffer.length < at + length) {
        this.buffer = this.buffer.subarray(at - 4); // maybe ours, not complete yet
        return false;
      }
      if (this.isOurs(this.buffer.subarray(at + FRAME_HEAD, at + length))) {
        this.buffer = this.buffer.subarray(at - 4);
        this.synced = true;
        return true;
      }
    }
    // Keep only what could be the start of a mark cut in two.
    this.buffer = this.buffer.subarray(Math.max(0, this.buffer.length - mark.length - 4));
    return false;
  }

  private isOurs(payload: Buffer): boolean {
    try {
      return (JSON.parse(payload.toString('utf8')) as { nonce?: unknown }).nonce === this.nonce;
    } catch {
      return false;
    }
  }
}

/** What a channel needs from the connection it lives on. */
export interface ChannelLink {
  readonly channel: number;
  send(frame: Buffer): void;
  /** The channel is over: forget it (frames still arriving for it are dropped). */
  release(): void;
}

/** One open channel as the connection sees it. */
export interface ChannelHandler {
  onFrame(frame: Frame): void;
  /** The connection is gone: fail whatever is pending with `error`. */
  onDisconnect(error: Error): void;
}
