import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Agent, type ClientRequestArgs } from 'node:http';
import type { Socket } from 'node:net';
import { FaasError } from '@faas/protocol';
import type { Logger } from 'pino';
import type { Runtime } from '../runtime/types.ts';
import type { ExposedPortRecord, Store } from '../store/types.ts';
import type { Clock } from '../util/clock.ts';
import type { InstanceService } from './instance-service.ts';

/** Random bytes of a generated access token (256 bits, 43 base64url characters). */
const TOKEN_BYTES = 32;
/** connect() into the instance gives up after this long (CONNECT_TIMEOUT). */
const CONNECT_TIMEOUT_MS = 5_000;
/**
 * An idle pooled connection into an instance is closed after this long: well below the idle
 * timeouts of common servers (Node 5 s, uvicorn 5 s, gunicorn 2 s), so the pool rarely reuses
 * a connection the service is closing. Servers announcing `Keep-Alive: timeout=N` are obeyed.
 */
const POOL_IDLE_MS = 1_000;
/** Idle connections kept per instance port. */
const POOL_MAX_FREE = 16;

export interface PortServiceDeps {
  store: Store;
  runtime: Pick<Runtime, 'connect'>;
  instances: Pick<InstanceService, 'get' | 'requireRunning'>;
  clock: Clock;
  logger: Logger;
}

export interface ExposeOptions {
  /** true: generate one; a string: that token; false/undefined: none (unless `public: false`). */
  token?: boolean | string;
  /** Reachable with no credential. @default the opposite of `token` */
  public?: boolean;
}

/** What `expose` made: the record, and the token in clear when one was set (the only time it is). */
export interface Exposure {
  record: ExposedPortRecord;
  token?: string;
}

/** How a request to a public port URL presented its token. */
export type PresentedToken = { token: string; via: 'header' | 'query' | 'cookie' } | undefined;

/**
 * Port access: exposures of instance ports at public URLs (with optional access tokens) and the
 * connections the proxy opens into instances.
 *
 * Access rule: the API key reaches every port of every running instance (the authenticated
 * proxy route); without it, a port is reachable only while exposed, and then only with its
 * token when it has one. Tokens are stored as SHA-256 and compared in constant time.
 *
 * Connections opened for the proxy are tracked per instance, so an instance that stops, dies or
 * is deleted takes its proxied requests and WebSockets with it instead of leaving them hanging.
 * HTTP requests reuse idle connections (a keep-alive pool per instance port, `agent()`);
 * WebSockets get a connection of their own (`connect()`).
 */
export class PortService {
  private readonly open = new Map<string, Set<Socket>>();
  /** Keep-alive pools of connections into instances, by instance, then port. */
  private readonly agents = new Map<string, Map<number, Agent>>();

  constructor(private readonly deps: PortServiceDeps) {}

  /** Exposes a port. PORT_ALREADY_EXPOSED when it is; INSTANCE_NOT_FOUND / INSTANCE_NOT_RUNNING (deleted) for the instance. */
  async expose(instanceId: string, port: number, options: ExposeOptions = {}): Promise<Exposure> {
    checkPort(port);
    const instance = await this.deps.instances.get(instanceId);
    if (instance.state === 'deleted') {
      throw new FaasError('INSTANCE_NOT_RUNNING', `instance ${instanceId} is deleted; its ports cannot be exposed`, { instance_id: instanceId, state: instance.state });
    }
    const wantsToken = options.token !== undefined && options.token !== false;
    if (options.public === true && wantsToken) {
      throw new FaasError('VALIDATION_FAILED', 'a public port takes no token: send either public: true or a token, not both', {
        errors: [{ path: '/public', message: 'must not be true together with token' }],
      });
    }
    // A non-public exposure without a token of its own gets a generated one: it must require something.
    const token = typeof options.token === 'string' ? options.token : wantsToken || options.public === false ? randomBytes(TOKEN_BYTES).toString('base64url') : undefined;
    const record: ExposedPortRecord = { instanceId, port, tokenHash: token === undefined ? null : hashToken(token), createdAt: this.deps.clock.now() };
    await this.deps.store.exposedPorts.insert(record);
    this.deps.logger.info({ instance: instanceId, port, token_required: token !== undefined }, 'port exposed');
    return token === undefined ? { record } : { record, token };
  }

  /** The exposures of an instance (INSTANCE_NOT_FOUND when there is none by that id). */
  async list(instanceId: string): Promise<ExposedPortRecord[]> {
    await this.deps.instances.get(instanceId);
    return this.deps.store.exposedPorts.listByInstance(instanceId);
  }

  /** One exposure; PORT_NOT_EXPOSED when the port is not exposed. */
  async get(instanceId: string, port: number): Promise<ExposedPortRecord> {
    checkPort(port);
    await this.deps.instances.get(instanceId);
    return this.requireExposed(instanceId, port);
  }

  /** Un-exposes; PORT_NOT_EXPOSED when it was not. Requests in flight on its public URL finish. */
  async unexpose(instanceId: string, port: number): Promise<void> {
    checkPort(port);
    await this.deps.instances.get(instanceId);
    if (!(await this.deps.store.exposedPorts.delete(instanceId, port))) throw notExposed(instanceId, port);
    this.deps.logger.info({ instance: instanceId, port }, 'port un-exposed');
  }

  /**
   * Access check of the public URL: the exposure must exist and the token, when it has one,
   * must match. An unknown instance answers as an unexposed port: strangers learn nothing.
   */
  async authorizePublic(instanceId: string, port: number, presented: PresentedToken): Promise<ExposedPortRecord> {
    checkPort(port);
    const record = await this.requireExposed(instanceId, port);
    if (record.tokenHash === null) return record;
    const details = { instance_id: instanceId, port };
    if (presented === undefined) throw new FaasError('PORT_TOKEN_REQUIRED', `port ${port} of instance ${instanceId} needs its access token (X-Faas-Port-Token header or faas_token query parameter)`, details);
    // Both sides are SHA-256 digests: equal length, so the comparison takes constant time.
    if (!timingSafeEqual(Buffer.from(hashToken(presented.token), 'hex'), Buffer.from(record.tokenHash, 'hex'))) {
      throw new FaasError('PORT_TOKEN_INVALID', `the access token is not the one of port ${port} of instance ${instanceId}`, details);
    }
    return record;
  }

  /**
   * A TCP connection to `127.0.0.1:port` inside the running instance, tracked until it closes.
   * INSTANCE_NOT_FOUND / INSTANCE_NOT_RUNNING, PORT_UNREACHABLE, CONNECT_TIMEOUT.
   */
  async connect(instanceId: string, port: number): Promise<Socket> {
    checkPort(port);
    await this.deps.instances.requireRunning(instanceId);
    return this.connectTracked(instanceId, port);
  }

  /**
   * The keep-alive pool of HTTP connections to a port of the running instance (proxied requests
   * reuse connections instead of opening one each). New connections come from `connect`, so
   * they are tracked and end with the instance; their failures (PORT_UNREACHABLE,
   * CONNECT_TIMEOUT) reach the request as its `error`. INSTANCE_NOT_FOUND / INSTANCE_NOT_RUNNING.
   */
  async agent(instanceId: string, port: number): Promise<Agent> {
    checkPort(port);
    await this.deps.instances.requireRunning(instanceId);
    let byPort = this.agents.get(instanceId);
    if (byPort === undefined) this.agents.set(instanceId, (byPort = new Map()));
    let agent = byPort.get(port);
    if (agent === undefined) {
      agent = new Agent({ keepAlive: true, timeout: POOL_IDLE_MS, maxFreeSockets: POOL_MAX_FREE, scheduling: 'lifo' });
      agent.createConnection = (_options: ClientRequestArgs, callback?: (err: Error | null, stream: Socket) => void) => {
        this.connectTracked(instanceId, port).then(
          (socket) => callback?.(null, socket),
          (err: Error) => callback?.(err, undefined as unknown as Socket),
        );
        return undefined;
      };
      byPort.set(port, agent);
    }
    return agent;
  }

  private async connectTracked(instanceId: string, port: number): Promise<Socket> {
    const socket = await this.deps.runtime.connect(instanceId, port, { timeoutMs: CONNECT_TIMEOUT_MS });
    let set = this.open.get(instanceId);
    if (set === undefined) this.open.set(instanceId, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0 && this.open.get(instanceId) === set) this.open.delete(instanceId);
    });
    return socket;
  }

  /** Proxied connections into the instance now open (tests, metrics). */
  openConnections(instanceId: string): number {
    return this.open.get(instanceId)?.size ?? 0;
  }

  /** The instance stopped, died or is being deleted: its proxied connections end now. */
  endInstance(instanceId: string): void {
    this.dropAgents(instanceId);
    for (const socket of this.open.get(instanceId) ?? []) socket.destroy();
  }

  /** The instance is deleted: its exposures go with it (its public URLs answer 404 from now on). */
  async instanceDeleted(instanceId: string): Promise<void> {
    this.dropAgents(instanceId);
    const removed = await this.deps.store.exposedPorts.deleteByInstance(instanceId);
    if (removed > 0) this.deps.logger.info({ instance: instanceId, removed }, 'exposed ports of a deleted instance removed');
  }

  /** At start-up: exposures of instances deleted while no listener could remove them. */
  async recover(): Promise<number> {
    return this.deps.store.exposedPorts.deleteOfDeletedInstances();
  }

  private dropAgents(instanceId: string): void {
    for (const agent of this.agents.get(instanceId)?.values() ?? []) agent.destroy();
    this.agents.delete(instanceId);
  }

  private async requireExposed(instanceId: string, port: number): Promise<ExposedPortRecord> {
    const record = await this.deps.store.exposedPorts.get(instanceId, port);
    if (record === undefined) throw notExposed(instanceId, port);
    return record;
  }
}

/** SHA-256 hex of a token: what the store keeps. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** VALIDATION_FAILED unless an integer in 1..65535 (routes parse path segments with parsePortParam first). */
function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new FaasError('VALIDATION_FAILED', `port must be an integer in 1..65535, not ${String(port)}`, { errors: [{ path: '/port', message: 'must be an integer in 1..65535' }] });
  }
}

/** A port from a path segment: digits only, 1..65535; else VALIDATION_FAILED naming it. */
export function parsePortParam(raw: string): number {
  const port = /^[0-9]{1,5}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new FaasError('VALIDATION_FAILED', `port must be an integer in 1..65535, not ${JSON.stringify(raw.slice(0, 32))}`, { errors: [{ path: 'params:/port', message: 'must be an integer in 1..65535' }] });
  }
  return port;
}

function notExposed(instanceId: string, port: number): FaasError {
  return new FaasError('PORT_NOT_EXPOSED', `port ${port} of instance ${instanceId} is not exposed`, { instance_id: instanceId, port });
}
