import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { FaasError } from '@faas/protocol';

/**
 * A client for QEMU's machine protocol (QMP) over a unix socket.
 *
 * QMP is newline-delimited JSON: one greeting, then `qmp_capabilities` to leave negotiation
 * mode, then commands answered in order by `{return}` or `{error: {class, desc}}` carrying the
 * `id` we sent, interleaved with asynchronous `{event}` messages (STOP, RESUME, SHUTDOWN,
 * MIGRATION...). Events are re-emitted as `'event'`; `'close'` fires once when the socket
 * goes, after every pending call has been rejected.
 */

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export interface QmpConnectOptions {
  /** How long to retry while the socket does not exist yet or refuses. @default 10000 */
  timeoutMs?: number;
  /** Stops retrying early, e.g. when the QEMU process has exited. */
  signal?: AbortSignal;
}

export interface QmpExecuteOptions {
  /** @default 30000 */
  timeoutMs?: number;
}

export interface WaitForEventOptions {
  timeoutMs?: number;
  filter?: (event: QmpEvent) => boolean;
}

interface PendingCall {
  command: string;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

type QmpMessage =
  | { QMP: unknown }
  | { return: unknown; id?: number }
  | { error: { class: string; desc: string }; id?: number }
  | QmpEvent;

const RETRYABLE_CONNECT_ERRORS = new Set(['ENOENT', 'ECONNREFUSED']);
const CONNECT_RETRY_MS = 20;

export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  readonly #socket: Socket;
  readonly #pending = new Map<number, PendingCall>();
  #nextId = 1;
  #buffered = '';
  #closed = false;
  #onGreeting: ((error?: Error) => void) | undefined;

  private constructor(socket: Socket) {
    super();
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.#onData(chunk));
    // 'close' always follows 'error'; rejecting there covers both.
    socket.on('error', () => {});
    socket.on('close', () => this.#onClose());
  }

  /** Connects (retrying until the socket appears), reads the greeting and negotiates capabilities. */
  static async connect(socketPath: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const socket = await connectWithRetry(socketPath, options);
    const client = new QmpClient(socket);
    try {
      await client.#greeting(options.timeoutMs ?? 10_000);
      await client.execute('qmp_capabilities');
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs one command; rejects with RUNTIME_ERROR carrying QMP's error class and description. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options: QmpExecuteOptions = {}): Promise<T> {
    if (this.#closed) return Promise.reject(connectionClosed(command));
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? 30_000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new FaasError('RUNTIME_ERROR', `QMP ${command} timed out after ${timeoutMs} ms`, { command }));
      }, timeoutMs);
      this.#pending.set(id, { command, resolve: resolve as (value: unknown) => void, reject, timer });
      const message = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
      this.#socket.write(`${JSON.stringify(message)}\n`);
    });
  }

  /**
   * Resolves with the next event named `name` that passes `filter`; rejects on timeout or when
   * the connection closes. Subscribe before issuing the command that causes the event.
   */
  waitForEvent(name: string, options: WaitForEventOptions = {}): Promise<QmpEvent> {
    if (this.#closed) return Promise.reject(connectionClosed(`wait for ${name}`));
    return new Promise((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('close', onClose);
      };
      const onEvent = (event: QmpEvent): void => {
        if (event.event !== name || (options.filter && !options.filter(event))) return;
        cleanup();
        resolve(event);
      };
      const onClose = (): void => {
        cleanup();
        reject(connectionClosed(`wait for ${name}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new FaasError('RUNTIME_ERROR', `QMP event ${name} did not arrive within ${options.timeoutMs} ms`));
      }, options.timeoutMs ?? 30_000);
      this.on('event', onEvent);
      this.on('close', onClose);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #greeting(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new FaasError('RUNTIME_ERROR', 'QMP greeting did not arrive')), timeoutMs);
      const done = (error?: Error): void => {
        clearTimeout(timer);
        this.#onGreeting = undefined;
        if (error) reject(error);
        else resolve();
      };
      this.#onGreeting = done;
    });
  }

  #onData(chunk: string): void {
    this.#buffered += chunk;
    let newline: number;
    while ((newline = this.#buffered.indexOf('\n')) >= 0) {
      const line = this.#buffered.slice(0, newline).trim();
      this.#buffered = this.#buffered.slice(newline + 1);
      if (line !== '') this.#onMessage(JSON.parse(line) as QmpMessage);
    }
  }

  #onMessage(message: QmpMessage): void {
    if ('QMP' in message) {
      this.#onGreeting?.();
      return;
    }
    if ('event' in message) {
      this.emit('event', message);
      return;
    }
    // Replies without an id answer nothing we sent (QEMU only omits it for parse errors).
    const call = message.id === undefined ? undefined : this.#pending.get(message.id);
    if (!call || message.id === undefined) return;
    this.#pending.delete(message.id);
    clearTimeout(call.timer);
    if ('error' in message) {
      const { class: errorClass, desc } = message.error;
      call.reject(new FaasError('RUNTIME_ERROR', `QMP ${call.command} failed: ${errorClass}: ${desc}`, { command: call.command, qmpClass: errorClass }));
    } else {
      call.resolve(message.return);
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onGreeting?.(connectionClosed('greeting'));
    for (const call of this.#pending.values()) {
      clearTimeout(call.timer);
      call.reject(connectionClosed(call.command));
    }
    this.#pending.clear();
    this.emit('close');
  }
}

function connectionClosed(what: string): FaasError {
  return new FaasError('RUNTIME_ERROR', `QMP connection closed (QEMU exited?) during ${what}`);
}

async function connectWithRetry(socketPath: string, options: QmpConnectOptions): Promise<Socket> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  for (;;) {
    try {
      return await connectOnce(socketPath);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      if (!RETRYABLE_CONNECT_ERRORS.has(code)) throw new FaasError('RUNTIME_ERROR', `QMP connect to ${socketPath} failed: ${code}`, {}, { cause: error });
      if (options.signal?.aborted) throw new FaasError('RUNTIME_ERROR', `QMP connect to ${socketPath} abandoned: ${String(options.signal.reason)}`);
      if (Date.now() >= deadline) throw new FaasError('RUNTIME_ERROR', `QMP socket ${socketPath} not ready: ${code}`);
      await sleep(CONNECT_RETRY_MS);
    }
  }
}

function connectOnce(socketPath: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
