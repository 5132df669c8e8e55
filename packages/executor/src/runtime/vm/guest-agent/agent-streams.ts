import { Duplex, Readable, Writable } from 'node:stream';
import { GRANT_BATCH, MAX_DATA, WINDOW } from './agent-frames.ts';

/**
 * Receive side of one credited stream: counts what the consumer has taken out of the stream's
 * buffer and gives that back to the agent as credit, in batches. The agent never has more than
 * WINDOW bytes unread here, so a consumer that stops reading stops the process writing.
 */
export class ReceiveWindow {
  private received = 0;
  private credited = 0;

  constructor(private readonly grant: (bytes: number) => void) {}

  onReceived(bytes: number): void {
    this.received += bytes;
  }

  /** `buffered`: bytes still waiting in the stream for its consumer. */
  settle(buffered: number): void {
    const consumed = this.received - buffered;
    if (consumed - this.credited < GRANT_BATCH) return;
    this.grant(consumed - this.credited);
    this.credited = consumed;
  }
}

/**
 * Send side of one credited stream: splits writes into data frames and waits for credit when
 * the agent's window is used up. After close() every write is accepted and dropped (the
 * reader is gone, as with a pipe whose process exited).
 */
export class SendWindow {
  private credit = WINDOW;
  private wake: (() => void) | undefined;
  private closed = false;

  constructor(private readonly emit: (chunk: Buffer) => void) {}

  add(bytes: number): void {
    this.credit += bytes;
    this.wakeUp();
  }

  close(): void {
    this.closed = true;
    this.wakeUp();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async send(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length && !this.closed) {
      if (this.credit === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      const size = Math.min(this.credit, MAX_DATA, data.length - offset);
      this.emit(data.subarray(offset, offset + size));
      this.credit -= size;
      offset += size;
    }
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** A Readable fed by data frames, granting credit as its consumer reads. */
export class InboundReadable extends Readable {
  private readonly window: ReceiveWindow;

  constructor(grant: (bytes: number) => void) {
    super({ highWaterMark: WINDOW });
    this.window = new ReceiveWindow(grant);
  }

  deliver(chunk: Buffer): void {
    this.window.onReceived(chunk.length);
    this.push(chunk);
    this.window.settle(this.readableLength);
  }

  // Every way of consuming (flowing mode, pipe, async iteration) goes through read(); _read
  // alone is not enough, Node skips it while an earlier call has not been answered by a push.
  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    this.window.settle(this.readableLength);
    return chunk;
  }

  override _read(): void {}
}

/** A Writable turned into data frames within the agent's credit; end() sends the EOF frame. */
export class OutboundWritable extends Writable {
  constructor(
    private readonly window: SendWindow,
    private readonly sendEof: () => void,
  ) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.window.send(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.window.isClosed) this.sendEof();
    callback();
  }
}

/**
 * Both directions of a TCP connection inside the guest, shaped like a socket: half-close is
 * not allowed (when the peer ends, so do we, as net.Socket does by default).
 */
export class AgentTcpStream extends Duplex {
  private readonly inbound: ReceiveWindow;

  constructor(
    grant: (bytes: number) => void,
    private readonly outbound: SendWindow,
    private readonly hooks: { sendEof: () => void; abort: () => void },
  ) {
    super({ readableHighWaterMark: WINDOW, allowHalfOpen: false });
    this.inbound = new ReceiveWindow(grant);
  }

  deliver(chunk: Buffer): void {
    this.inbound.onReceived(chunk.length);
    this.push(chunk);
    this.inbound.settle(this.readableLength);
  }

  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    this.inbound.settle(this.readableLength);
    return chunk;
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.outbound.send(chunk).then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.outbound.isClosed) this.hooks.sendEof();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.outbound.isClosed) this.hooks.abort();
    this.outbound.close();
    callback(error);
  }
}
