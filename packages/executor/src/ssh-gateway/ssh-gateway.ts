import { createServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import ssh2, { type AcceptConnection, type ClientInfo, type Connection, type RejectConnection, type ServerChannel, type Session, type TcpipRequestInfo } from 'ssh2';
import { AddressLimiter } from './address-limiter.ts';
import { ConnectionAuth, type SshAuthority, type SshLogin } from './auth.ts';
import { SshGatewayError, SshGatewayErrorCode } from './errors.ts';
import { handleDirectTcpip } from './forwarding.ts';
import type { HostKey } from './host-key.ts';
import type { InstanceAccess } from './instance-access.ts';
import { handleSession } from './session-channel.ts';

/** Bounds that keep one client (or many) from exhausting the gateway. Each has a default. */
export interface SshGatewayLimits {
  /** From TCP accept to successful login; then the connection is dropped. @default 30_000 (sshd: LoginGraceTime) */
  handshakeTimeoutMs: number;
  /** Failed authentication attempts on one connection. @default 6 (sshd: MaxAuthTries) */
  maxAuthFailures: number;
  /** Connections with failed attempts per client address within `addressWindowMs` before it must wait. @default 20 */
  maxAddressFailures: number;
  /** @default 60_000 */
  addressWindowMs: number;
  /** Connections not yet logged in, in all and per client address (sshd: MaxStartups). @default 64, 10 */
  maxUnauthenticated: number;
  maxUnauthenticatedPerAddress: number;
  /** Sessions (shell, exec, sftp) open at once on one connection. @default 10 (sshd: MaxSessions) */
  maxSessionsPerConnection: number;
  /** Forwarded TCP connections open at once on one connection. @default 64 */
  maxForwardsPerConnection: number;
}

export const DEFAULT_SSH_GATEWAY_LIMITS: SshGatewayLimits = {
  handshakeTimeoutMs: 30_000,
  maxAuthFailures: 6,
  maxAddressFailures: 20,
  addressWindowMs: 60_000,
  maxUnauthenticated: 64,
  maxUnauthenticatedPerAddress: 10,
  maxSessionsPerConnection: 10,
  maxForwardsPerConnection: 64,
};

export interface SshGatewayOptions {
  /** Address to listen on. */
  host: string;
  /** 0 picks a free port (read it back from `info()`). */
  port: number;
  hostKey: HostKey;
  authority: SshAuthority;
  access: InstanceAccess;
  logger: Logger;
  limits?: Partial<SshGatewayLimits>;
  /** Login outcomes, for metrics. */
  onLogin?: (success: boolean) => void;
  /** Connections open (logged in or not) changed, for metrics. */
  onConnectionCount?: (open: number) => void;
}

/** What clients need to reach the gateway and pin its host key (GET /api/v1/instances/:id/ssh). */
export interface SshGatewayInfo {
  host: string;
  port: number;
  hostKeyFingerprint: string;
}

/** How long a disconnected client gets to read our DISCONNECT before its socket is destroyed. */
const DISCONNECT_GRACE_MS = 500;

interface Peer {
  socket: Socket;
  address: string;
  client?: Connection;
  login?: SshLogin;
  timer: NodeJS.Timeout;
  sessions: number;
  forwards: number;
}

/**
 * The SSH server for real OpenSSH clients (`ssh`, `scp`, `sftp`, `ssh -L`): user name =
 * instance id, public keys checked by the key service, every process run in the instance by
 * the runtime as the sandbox user.
 *
 * We own the TCP listener and hand sockets to ssh2 (`injectSocket`), because ssh2 only hears of
 * a connection once the client has sent its version line: a client that connects and says
 * nothing, or trickles garbage, would otherwise hold a socket forever. Here every socket has a
 * deadline to log in, and unauthenticated sockets are capped in all and per address.
 */
export class SshGateway {
  private readonly limits: SshGatewayLimits;
  private readonly limiter: AddressLimiter;
  private readonly listener: NetServer;
  private readonly ssh: ssh2.Server;
  /** By "address|port" of the client: ssh2's `connection` event names the peer only so. */
  private readonly peers = new Map<string, Peer>();
  private readonly byInstance = new Map<string, Set<Peer>>();
  private readonly unauthenticated = new Map<string, number>();
  private unauthenticatedTotal = 0;
  private bound: AddressInfo | undefined;
  private closing: Promise<void> | undefined;

  constructor(private readonly options: SshGatewayOptions) {
    this.limits = { ...DEFAULT_SSH_GATEWAY_LIMITS, ...options.limits };
    this.limiter = new AddressLimiter({ maxFailures: this.limits.maxAddressFailures, windowMs: this.limits.addressWindowMs });
    this.ssh = new ssh2.Server({ hostKeys: [options.hostKey.privateKey], ident: 'faas' }, (client, info) => this.onClient(client, info));
    this.listener = createServer({ pauseOnConnect: true }, (socket) => this.onSocket(socket));
  }

  /** Starts listening; resolves with the bound address (the real port when 0 was asked). */
  async listen(): Promise<SshGatewayInfo> {
    const { host, port, logger } = this.options;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        reject(new SshGatewayError(SshGatewayErrorCode.LISTEN_FAILED, `the SSH gateway cannot listen on ${host}:${port}: ${err.message}`, { host, port }, { cause: err }));
      };
      this.listener.once('error', onError);
      this.listener.listen({ host, port }, () => {
        this.listener.off('error', onError);
        resolve();
      });
    });
    this.listener.on('error', (err) => logger.error({ err }, 'ssh gateway listener error'));
    this.bound = this.listener.address() as AddressInfo;
    const info = this.info()!;
    logger.info({ host: info.host, port: info.port, host_key: info.hostKeyFingerprint }, 'ssh gateway listening');
    return info;
  }

  /** Where clients connect, or null before `listen()` and after `close()`. */
  info(): SshGatewayInfo | null {
    if (this.bound === undefined || this.closing !== undefined) return null;
    return { host: this.options.host, port: this.bound.port, hostKeyFingerprint: this.options.hostKey.fingerprint };
  }

  /** Connections open now (logged in or not); for tests and metrics. */
  get connectionCount(): number {
    return this.peers.size;
  }

  /** The instance stopped or is being deleted: every connection logged in to it ends now. */
  endInstance(instanceId: string, reason: string): void {
    const peers = this.byInstance.get(instanceId);
    if (peers === undefined) return;
    this.options.logger.info({ instance: instanceId, reason, connections: peers.size }, 'closing ssh connections of an ended instance');
    for (const peer of peers) this.drop(peer);
    this.byInstance.delete(instanceId);
  }

  /** Stops listening and ends every connection. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => this.listener.close(() => resolve()));
      const gone = [...this.peers.values()].map((peer) => new Promise<void>((resolve) => {
        if (peer.socket.destroyed) return resolve();
        peer.socket.once('close', () => resolve());
        this.drop(peer);
      }));
      await Promise.all([stopped, ...gone]);
    })();
    return this.closing;
  }

  private onSocket(socket: Socket): void {
    const address = socket.remoteAddress ?? 'unknown';
    const { logger } = this.options;
    socket.on('error', (err) => logger.debug({ err, client: address }, 'ssh socket error'));
    if (this.closing !== undefined || this.bound === undefined) return void socket.destroy();
    const perAddress = this.unauthenticated.get(address) ?? 0;
    const backoff = this.limiter.retryAfterMs(address);
    if (this.unauthenticatedTotal >= this.limits.maxUnauthenticated || perAddress >= this.limits.maxUnauthenticatedPerAddress || backoff > 0) {
      // Refused before the (costly) key exchange: the client sees the connection closed.
      logger.info({ client: address, pending: perAddress, backoff_ms: backoff }, 'ssh connection refused: too many pending or failed logins');
      return void socket.destroy();
    }
    // SSH sends many small packets that wait on each other (exit-status, EOF, close; keystrokes
    // and their echo): Nagle's algorithm would hold each behind a delayed ACK (~40 ms).
    socket.setNoDelay(true);
    this.unauthenticatedTotal++;
    this.unauthenticated.set(address, perAddress + 1);
    const timer = setTimeout(() => {
      logger.info({ client: address, code: SshGatewayErrorCode.HANDSHAKE_TIMEOUT }, 'ssh client did not log in in time');
      this.drop(peer);
    }, this.limits.handshakeTimeoutMs);
    timer.unref();
    const peer: Peer = { socket, address, timer, sessions: 0, forwards: 0 };
    const key = peerKey(address, socket.remotePort);
    this.peers.set(key, peer);
    this.options.onConnectionCount?.(this.peers.size);
    socket.once('close', () => {
      clearTimeout(timer);
      if (this.peers.get(key) === peer) this.peers.delete(key);
      if (peer.login === undefined) this.releaseUnauthenticated(address);
      else this.byInstance.get(peer.login.instanceId)?.delete(peer);
      this.options.onConnectionCount?.(this.peers.size);
    });
    this.ssh.injectSocket(socket);
  }

  private onClient(client: Connection, info: ClientInfo): void {
    const { logger, authority, access } = this.options;
    const peer = this.peers.get(peerKey(info.ip, info.port));
    if (peer === undefined) {
      // Not a socket of ours (cannot happen: only onSocket injects); refuse rather than serve unbounded.
      client.end();
      return;
    }
    peer.client = client;
    client.on('error', (err: Error) => logger.debug({ err, client: peer.address }, 'ssh connection error'));
    const auth = new ConnectionAuth({
      authority,
      limiter: this.limiter,
      clientAddress: peer.address,
      clientPort: peer.socket.remotePort ?? 0,
      maxFailures: this.limits.maxAuthFailures,
      logger,
      ...(this.options.onLogin !== undefined ? { onOutcome: this.options.onLogin } : {}),
      onExhausted: (why) => {
        logger.info({ client: peer.address, code: SshGatewayErrorCode.AUTH_LIMIT, why }, 'ssh connection dropped');
        this.drop(peer);
      },
    });
    client.on('authentication', (ctx) => auth.handle(ctx));
    client.on('ready', () => {
      const login = auth.login!;
      clearTimeout(peer.timer);
      this.releaseUnauthenticated(peer.address);
      peer.login = login;
      let set = this.byInstance.get(login.instanceId);
      if (set === undefined) this.byInstance.set(login.instanceId, (set = new Set()));
      set.add(peer);
      // The instance may have ended between the key check and now (its end hook ran already).
      access.instanceEnv(login.instanceId).catch(() => this.drop(peer));
      const ends = { clientAddress: peer.address, clientPort: peer.socket.remotePort ?? 0, serverAddress: peer.socket.localAddress ?? '', serverPort: peer.socket.localPort ?? 0 };
      client.on('session', (accept: AcceptConnection<Session>, reject: RejectConnection) => {
        if (peer.sessions >= this.limits.maxSessionsPerConnection) return reject();
        peer.sessions++;
        void handleSession(accept, { instanceId: login.instanceId, access, ends, logger: logger.child({ instance: login.instanceId }) }).finally(() => peer.sessions--);
      });
      client.on('tcpip', (accept: AcceptConnection<ServerChannel>, reject: RejectConnection, tcp: TcpipRequestInfo) => {
        if (peer.forwards >= this.limits.maxForwardsPerConnection) return reject();
        peer.forwards++;
        handleDirectTcpip(accept, reject, tcp, { instanceId: login.instanceId, access, logger })
          .catch((err: unknown) => logger.error({ err, instance: login.instanceId }, 'ssh forwarding failed'))
          .finally(() => peer.forwards--);
      });
    });
  }

  /** Ends a connection: DISCONNECT if the protocol got that far, then the socket, whatever state it is in. */
  private drop(peer: Peer): void {
    clearTimeout(peer.timer);
    try {
      peer.client?.end();
    } catch {
      // the protocol may already be torn down
    }
    if (peer.client === undefined) peer.socket.destroy();
    else setTimeout(() => peer.socket.destroy(), DISCONNECT_GRACE_MS).unref();
  }

  private releaseUnauthenticated(address: string): void {
    this.unauthenticatedTotal--;
    const n = (this.unauthenticated.get(address) ?? 1) - 1;
    if (n <= 0) this.unauthenticated.delete(address);
    else this.unauthenticated.set(address, n);
  }
}

function peerKey(address: string | undefined, port: number | undefined): string {
  return `${address ?? ''}|${port ?? 0}`;
}
