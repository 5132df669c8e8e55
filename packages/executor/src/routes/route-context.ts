import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { ExecuteService } from '../services/execute-service.ts';
import type { ExecutionService } from '../services/execution-service.ts';
import type { InstanceService } from '../services/instance-service.ts';
import type { Metrics } from '../services/metrics.ts';
import type { EnvironmentCatalog } from '../services/environment-catalog.ts';
import type { WarmPool } from '../services/warm-pool.ts';
import type { SnapshotService } from '../services/snapshot-service.ts';
import type { ResultCache } from '../services/result-cache.ts';
import type { SyncService } from '../services/sync-service.ts';
import type { PortService } from '../services/port-service.ts';
import type { ReadinessService } from '../services/readiness/readiness-service.ts';
import type { SshKeyService } from '../services/ssh-key-service.ts';
import type { SessionService } from '../services/sessions/session-service.ts';
import type { Runtime } from '../runtime/types.ts';
import type { Clock } from '../util/clock.ts';

/** What route plugins may use: services only, never the runtime's internals or the store. */
export interface RouteServices {
  instances: InstanceService;
  executions: ExecutionService;
  execute: ExecuteService;
  snapshots: SnapshotService;
  cache: ResultCache;
  sync: SyncService;
  /** Exposed ports and the connections of the port proxy (port-routes). */
  ports: PortService;
  /** config.portProxyTimeoutMs: how long the proxy waits for a service's response headers. */
  portProxyTimeoutMs: number;
  /** Readiness probes of instances (readiness-routes). */
  readiness: ReadinessService;
  /** SSH keys of instances (ssh-routes; the SSH gateway checks offered keys with it). */
  sshKeys: SshKeyService;
  /** Long-running sessions (session-routes). */
  sessions: SessionService;
  /**
   * Where the SSH gateway listens and its host key fingerprint, or null when no gateway runs
   * (GET .../ssh then answers `connection: null`). Read per request: whoever starts the gateway
   * passes it in `Dependencies.sshGatewayInfo` or assigns this after `build()`.
   */
  sshGatewayInfo: () => SshGatewayInfo | null;
  metrics: Metrics;
  /** The environment catalog and the warm pools (environment-routes). */
  environments: { catalog: EnvironmentCatalog; pool: WarmPool };
  /** config.maxInstances: the largest warm-pool target. */
  maxInstances: number;
  runtime: Pick<Runtime, 'name' | 'capabilities'>;
  clock: Clock;
  version: string;
}

/** What the SSH gateway tells clients about itself. */
export interface SshGatewayInfo {
  host: string;
  port: number;
  /** `SHA256:...` of its host key. */
  hostKeyFingerprint: string;
}

export type TypedApp = FastifyInstance & ReturnType<FastifyInstance['withTypeProvider']>;

export function typed(app: FastifyInstance) {
  return app.withTypeProvider<TypeBoxTypeProvider>();
}
