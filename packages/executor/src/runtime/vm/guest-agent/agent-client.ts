import { FaasError, ErrorCode } from '@faas/protocol';
import { randomUUID } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { decodeCredit, encodeCredit, encodeFrame, encodeJson, FrameDecoder, FrameType, type ChannelHandler, type ChannelLink, type Frame } from './agent-frames.ts';
import { ExecChannel, type AgentExecSpec, type AgentProcess } from './agent-process.ts';
import { AgentTcpStream, SendWindow } from './agent-streams.ts';

export type { AgentExecSpec, AgentExit, AgentProcess } from './agent-process.ts';

/** What the host tells the agent on every (re)connection. */
export interface AgentHello {
  /**
   * The guest clock is set to this.
   * @default Date.now() when HELLO is sent
   */
  nowMs?: number;
  hostname?: string;
  /** Limits of the instance's cgroup (every exec runs in a child group of it). */
  limits?: { memoryMb: number; pidsMax: number; cpuCores: number };
}

export interface AgentConnectOptions {
  /**
   * Give up (RUNTIME_ERROR) when no HELLO_OK came by then, retries included.
   * @default 30000
   */
  timeoutMs?: number;
}

/** The agent's answer to HELLO. */
export interface AgentInfo {
  version: number;
  /** Changes with every guest boot; a restored memory snapshot keeps the saver's. */
  bootId: string;
  /** Execs of earlier connections whose main process still runs. */
  pidCount: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const RETRY_MS = 20;
/** HELLO is repeated this often until answered (cheap insurance against a lost first one). */
const HELLO_REPEAT_MS = 1_000;

interface PendingRequest {
  resolve: (reply: Frame) => void;
  reject: (error: Error) => void;
}

/**
 * The host end of the guest agent's port: one connection multiplexing execs, TCP connections
 * and control requests (CONTRACT.md, "Agent protocol").
 *
 * @example
 * const agent = await AgentClient.connect(`${dir}/agent.sock`, { hostname: id });
 * const proc = await agent.exec({ argv: ['true'], env: {}, cwd: '/', uid: 1000, gid: 1000 });
 * const { exitCode } = await proc.wait();
 */
export class AgentClient {
  private readonly channels = new Map<number, ChannelHandler>();
  private readonly requests = new Map<number, PendingRequest>();
  private readonly closeListeners: ((error?: Error) => void)[] = [];
  private nextChannel = 1;
  private nextRequest = 1;
  private closed = false;
  private handshake!: { resolve: (info: AgentInfo) => void; reject: (error: Error) => void };
  private readonly ready: Promise<AgentInfo>;
  private helloTimer: NodeJS.Timeout | undefined;
  /** Set once HELLO_OK arrived. */
  info: AgentInfo | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly hello: AgentHello,
  ) {
    const nonce = randomUUID();
    const decoder = new FrameDecoder(nonce);
    this.ready = new Promise((resolve, reject) => (this.handshake = { resolve, reject }));
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const frame of decoder.push(chunk)) this.onFrame(frame);
      } catch (error) {
        this.fail(agentError(`bad data from the guest agent: ${(error as Error).message}`));
      }
    });
    socket.on('error', (error) => this.fail(agentError(`guest agent connection failed: ${error.message}`)));
    socket.on('close', () => this.fail(agentError('guest agent connection closed')));
    this.sendHello(nonce);
  }

  /**
   * Connects to the agent's unix socket (the QEMU chardev), retrying while it does not exist
   * or refuses, and completes the HELLO handshake.
   */
  static async connect(socketPath: string, hello: AgentHello, options: AgentConnectOptions = {}): Promise<AgentClient> {
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    for (;;) {
      let lastError: Error;
      try {
        const socket = await openUnixSocket(socketPath);
        return await AgentClient.fromSocket(socket, hello, { timeoutMs: deadline - Date.now() });
      } catch (error) {
        lastError = error as Error;
      }
      if (Date.now() + RETRY_MS >= deadline) {
        throw agentError(`guest agent at ${socketPath} did not answer: ${lastError.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }

  /** Runs the handshake on a connected socket (either end: tests accept the agent's connection). */
  static async fromSocket(socket: Socket, hello: AgentHello, options: AgentConnectOptions = {}): Promise<AgentClient> {
    const client = new AgentClient(socket, hello);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(() => client.fail(agentError(`no HELLO_OK from the guest agent within ${timeoutMs} ms`)), timeoutMs);
    try {
      client.info = await client.ready;
      return client;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts a process; rejects with RUNTIME_ERROR (details.reason: COMMAND_NOT_FOUND, ...) when it cannot. */
  exec(spec: AgentExecSpec): Promise<AgentProcess> {
    const link = this.openLink();
    const channel = new ExecChannel(link, spec);
    this.channels.set(link.channel, channel);
    return channel.start();
  }

  /**
   * A TCP connection to `host:port` inside the guest (loopback or the guest's own address).
   * Rejects with PORT_UNREACHABLE, CONNECT_TIMEOUT or VALIDATION_FAILED.
   */
  connectTcp(host: string, port: number, timeoutMs: number): Promise<Duplex> {
    const link = this.openLink();
    return new Promise((resolve, reject) => {
      const window = new SendWindow((chunk) => link.send(encodeFrame(FrameType.DATA, link.channel, chunk)));
      const stream = new AgentTcpStream((bytes) => link.send(encodeCredit(link.channel, FrameType.DATA, bytes)), window, {
        sendEof: () => link.send(encodeFrame(FrameType.EOF, link.channel)),
        abort: () => {
          link.send(encodeFrame(FrameType.CLOSE, link.channel));
          link.release();
        },
      });
      this.channels.set(link.channel, {
        onFrame: (frame) => onTcpFrame(frame, { stream, window, link, resolve, reject }),
        onDisconnect: (error) => {
          reject(error);
          stream.destroy(error);
        },
      });
      link.send(encodeJson(FrameType.CONNECT, link.channel, { host, port, timeout_ms: timeoutMs }));
    });
  }

  /** Flushes and freezes the guest's data file system (before saving a memory snapshot). */
  async freezeFs(): Promise<void> {
    await this.request(FrameType.FS_FREEZE);
  }

  async thawFs(): Promise<void> {
    await this.request(FrameType.FS_THAW);
  }

  /** Round trip to the agent's event loop, in milliseconds. */
  async ping(): Promise<number> {
    const started = performance.now();
    await this.request(FrameType.PING);
    return performance.now() - started;
  }

  /** `listener` runs once when the connection ends; with an error unless close() ended it. */
  onClose(listener: (error?: Error) => void): void {
    this.closeListeners.push(listener);
  }

  /** Drops the connection. Processes in the guest keep running (a new HELLO detaches them). */
  close(): void {
    this.shutdown(agentError('guest agent connection closed by the host'), undefined);
  }

  private sendHello(nonce: string): void {
    const send = () => {
      const { nowMs, hostname, limits } = this.hello;
      this.socket.write(
        encodeJson(FrameType.HELLO, 0, {
          now_ms: nowMs ?? Date.now(),
          hostname,
          limits: limits && { memory_mb: limits.memoryMb, pids_max: limits.pidsMax, cpu_cores: limits.cpuCores },
          nonce,
        }),
      );
    };
    send();
    this.helloTimer = setInterval(send, HELLO_REPEAT_MS);
  }

  private openLink(): ChannelLink {
    if (this.closed) throw agentError('guest agent connection is closed');
    const channel = this.nextChannel++;
    return {
      channel,
      send: (frame) => {
        if (!this.closed) this.socket.write(frame);
      },
      release: () => this.channels.delete(channel),
    };
  }

  private request(type: FrameType): Promise<Frame> {
    if (this.closed) return Promise.reject(agentError('guest agent connection is closed'));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
      this.socket.write(encodeJson(type, 0, { id }));
    });
  }

  private onFrame(frame: Frame): void {
    if (frame.channel !== 0) {
      this.channels.get(frame.channel)?.onFrame(frame);
      return;
    }
    const body = JSON.parse(frame.payload.toString('utf8')) as Record<string, unknown>;
    switch (frame.type) {
      case FrameType.HELLO_OK:
        clearInterval(this.helloTimer);
        this.handshake.resolve({ version: body.version as number, bootId: body.boot_id as string, pidCount: body.pid_count as number });
        return;
      case FrameType.ERROR:
        this.fail(agentError(`guest agent reported a protocol error: ${String(body.message)}`));
        return;
      case FrameType.PONG:
      case FrameType.FS_OK:
      case FrameType.FS_ERROR: {
        const pending = this.requests.get(body.id as number);
        this.requests.delete(body.id as number);
        if (frame.type === FrameType.FS_ERROR) pending?.reject(agentError(`guest file system freeze/thaw failed: ${String(body.message)}`));
        else pending?.resolve(frame);
      }
    }
  }

  private fail(error: Error): void {
    this.shutdown(error, error);
  }

  private shutdown(error: Error, reported: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.helloTimer);
    this.socket.destroy();
    this.handshake.reject(error);
    for (const channel of this.channels.values()) channel.onDisconnect(error);
    this.channels.clear();
    for (const pending of this.requests.values()) pending.reject(error);
    this.requests.clear();
    for (const listener of this.closeListeners) listener(reported);
  }
}

interface TcpState {
  stream: AgentTcpStream;
  window: SendWindow;
  link: ChannelLink;
  resolve: (stream: Duplex) => void;
  reject: (error: Error) => void;
}

function onTcpFrame(frame: Frame, { stream, window, link, resolve, reject }: TcpState): void {
  switch (frame.type) {
    case FrameType.CONNECTED:
      resolve(stream);
      return;
    case FrameType.CONNECT_FAILED: {
      const { code, message } = JSON.parse(frame.payload.toString('utf8')) as { code: string; message: string };
      link.release();
      reject(new FaasError(code in ErrorCode ? (code as ErrorCode) : 'RUNTIME_ERROR', message));
      return;
    }
    case FrameType.DATA:
      stream.deliver(frame.payload);
      return;
    case FrameType.EOF:
      stream.push(null);
      return;
    case FrameType.CREDIT:
      window.add(decodeCredit(frame.payload).bytes);
      return;
    case FrameType.CLOSE: {
      // Without an error both directions already ended; with one, the guest socket broke.
      const { error } = JSON.parse(frame.payload.toString('utf8')) as { error?: string };
      window.close();
      link.release();
      if (error !== undefined) stream.destroy(agentError(`connection inside the guest failed: ${error}`));
    }
  }
}

function agentError(message: string): FaasError {
  return new FaasError('RUNTIME_ERROR', message);
}

function openUnixSocket(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}
