import Fastify, { type FastifyInstance } from 'fastify';
import fastifyCors from '@fastify/cors';
import fastifySwagger from '@fastify/swagger';
import fastifyWebsocket from '@fastify/websocket';
import pino, { type Logger } from 'pino';
import { FaasError } from '@faas/protocol';
import type { ExecutorConfig } from './config.ts';
import { installAuth, redactUrl } from './routes/auth.ts';
import { installErrorHandler } from './routes/error-handler.ts';
import { executeRoutes } from './routes/execute-routes.ts';
import { executionRoutes } from './routes/execution-routes.ts';
import { instanceRoutes } from './routes/instance-routes.ts';
import type { RouteServices } from './routes/route-context.ts';
import { streamRoutes } from './routes/stream-routes.ts';
import { systemRoutes } from './routes/system-routes.ts';
import { snapshotRoutes } from './routes/snapshot-routes.ts';
import { modeRoutes } from './routes/mode-routes.ts';
import { syncRoutes } from './routes/sync-routes.ts';
import { SyncService } from './services/sync-service.ts';
import { portRoutes } from './routes/port-routes.ts';
import { PortService } from './services/port-service.ts';
import { readinessRoutes } from './routes/readiness-routes.ts';
import { ReadinessService } from './services/readiness/readiness-service.ts';
import { sshRoutes } from './routes/ssh-routes.ts';
import { SshKeyService } from './services/ssh-key-service.ts';
import { sessionRoutes } from './routes/session-routes.ts';
import { SessionService } from './services/sessions/session-service.ts';
import { PrivateKeyFiles } from './ssh/private-key-files.ts';
import { environmentRoutes } from './routes/environment-routes.ts';
import { EnvironmentCatalog } from './services/environment-catalog.ts';
import { WarmPool } from './services/warm-pool.ts';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { BlobStore } from './blobs/types.ts';
import { openLocalBlobStore } from './blobs/local/local-blob-store.ts';
import { TreeMaterializer } from './snapshots/tree-materializer.ts';
import { TreeReader } from './snapshots/tree-store.ts';
import { SnapshotService } from './services/snapshot-service.ts';
import { ResultCache } from './services/result-cache.ts';
import type { Runtime } from './runtime/types.ts';
import { ExecuteService } from './services/execute-service.ts';
import { ExecutionService } from './services/execution-service.ts';
import { InstanceService } from './services/instance-service.ts';
import { Metrics } from './services/metrics.ts';
import type { Store } from './store/types.ts';
import { systemClock, type Clock } from './util/clock.ts';
import { VERSION } from './version.ts';
import type { SshAuthority } from './ssh-gateway/auth.ts';
import { loadOrCreateHostKey } from './ssh-gateway/host-key.ts';
import type { InstanceAccess } from './ssh-gateway/instance-access.ts';
import { SshGateway } from './ssh-gateway/ssh-gateway.ts';

const CACHE_PURGE_INTERVAL_MS = 10 * 60_000;

/** Everything the app is made from; tests pass real or in-memory ones. */
export interface Dependencies {
  store: Store;
  runtime: Runtime;
  /** Content-addressed store of snapshot contents. @default a LocalBlobStore in `<dataDir>/blobs` */
  blobs?: BlobStore;
  apiKey: string;
  clock?: Clock;
  logger?: Logger;
}

export interface App {
  fastify: FastifyInstance;
  services: RouteServices;
  /** The SSH gateway, built but not listening (serve() starts it); undefined when config.sshPort is null. */
  sshGateway: SshGateway | undefined;
  /** Stops taking requests, stops every instance, waits for executions to settle, closes the store. */
  close(): Promise<void>;
}

/**
 * The composition root: the one place where services are created and wired. Recovery from a
 * previous run happens here, before any request is served.
 */
export async function build(deps: Dependencies, config: ExecutorConfig): Promise<App> {
  const clock = deps.clock ?? systemClock;
  const logger = deps.logger ?? pino({ level: config.logLevel });
  const metrics = new Metrics();
  const common = { store: deps.store, runtime: deps.runtime, config, clock, logger, metrics };
  const instances = new InstanceService(common);
  const executions = new ExecutionService(common);
  instances.onInstanceEnd((id) => executions.markInstanceEnding(id));
  // Warm pools: refills start instances through the instance service, which takes from them.
  const pool = new WarmPool({ host: instances, environments: deps.runtime.environments, clock, logger, metrics });
  instances.attachPool(pool);
  instances.onInstanceEnd((id) => pool.forget(id));
  const catalog = new EnvironmentCatalog({ runtime: deps.runtime, logger });
  let blobs = deps.blobs;
  if (blobs === undefined) {
    const root = join(config.dataDir, 'blobs');
    blobs = await openLocalBlobStore({ root });
    // Snapshot contents are the instances' files: root's alone, like the instances' dirs.
    chmodSync(root, 0o700);
  }
  const reader = new TreeReader(blobs);
  const trees = new TreeMaterializer({ dir: join(config.dataDir, 'snapshots', 'trees'), blobs, reader });
  const snapshots = new SnapshotService({ store: deps.store, runtime: deps.runtime, blobs, reader, trees, instances, clock, logger, metrics });
  const cache = new ResultCache({ store: deps.store, clock, config });
  const sync = new SyncService({ runtime: deps.runtime, instances, clock, logger });
  const readiness = new ReadinessService({ instances, executions, runtime: deps.runtime, clock, logger });
  instances.onInstanceEnd((id, reason) => readiness.instanceEnded(id, reason));
  // Private keys live in <dataDir>/ssh/keys (0700; files 0600), never in the database.
  const sshKeys = new SshKeyService({ store: deps.store, instances, files: await PrivateKeyFiles.open(join(config.dataDir, 'ssh', 'keys')), config, clock, logger });
  instances.onInstanceDeleted((id) =>
    sshKeys.instanceDeleted(id).catch((err: unknown) => logger.error({ err, instance: id }, 'revoking the SSH keys of a deleted instance failed; the sweep retries')),
  );
  const ports = new PortService({ store: deps.store, runtime: deps.runtime, instances, clock, logger });
  // Proxied requests and WebSockets end with their instance; exposures end with its deletion.
  instances.onInstanceEnd((id) => ports.endInstance(id));
  instances.onInstanceDeleted((id) =>
    ports.instanceDeleted(id).catch((err: unknown) => logger.error({ err, instance: id }, 'removing the exposed ports of a deleted instance failed; the next start removes them')),
  );
  const sessions = new SessionService({ store: deps.store, instances, executions, snapshots, config, clock, logger });
  const execute = new ExecuteService({
    store: deps.store,
    instances,
    executions,
    snapshots,
    cache,
    environmentIdentity: (env) => catalog.identity(env),
    runtimeName: deps.runtime.name,
    clock,
    logger,
    metrics,
  });

  await deps.runtime.checkHost();
  const interrupted = await executions.recover();
  await instances.recover((id) => executions.isEphemeralInstance(id));
  // After checkHost (the environments' base trees exist); tools are detected in the background.
  catalog.init();
  if (interrupted > 0) logger.warn({ interrupted }, 'executions interrupted by the previous shutdown');
  const leftovers = await snapshots.recover();
  if (leftovers.blobLeftovers + leftovers.treeLeftovers > 0) logger.warn(leftovers, 'removed what interrupted snapshots and restores left behind');
  // After instances.recover(): keys of instances deleted at recovery are revoked by its sweep.
  const sshLeftovers = await sshKeys.recover();
  if (sshLeftovers.removedFiles > 0) logger.warn(sshLeftovers, 'removed private key files of keys that had ended');
  sshKeys.start();
  // After instances.recover(): exposures of instances it deleted go too.
  const portLeftovers = await ports.recover();
  if (portLeftovers > 0) logger.info({ removed: portLeftovers }, 'removed exposed ports of deleted instances');
  // After executions and instances recovered: live sessions of the previous run end (executor_restart).
  const endedSessions = await sessions.recover();
  if (endedSessions > 0) logger.warn({ sessions: endedSessions }, 'sessions ended by the previous shutdown; resume them with POST /api/v1/executions/:id/resume');

  const sshGateway = createSshGateway(deps, sshKeys, config, instances, logger, metrics);
  const services: RouteServices = { instances, executions, execute, snapshots, cache, sync, ports, portProxyTimeoutMs: config.portProxyTimeoutMs, readiness, sshKeys, sessions, sshGatewayInfo: () => sshGateway?.info() ?? null, metrics, runtime: deps.runtime, clock, version: VERSION, environments: { catalog, pool }, maxInstances: config.maxInstances };
  const fastify: FastifyInstance = Fastify({
    loggerInstance: logger.child(
      {},
      {
        level: config.logLevel,
        // The access token of browser streams must never reach a log line.
        serializers: {
          req: (req: { method: string; url: string; ip?: string; id?: string }) => ({ method: req.method, url: redactUrl(req.url), remote: req.ip, id: req.id }),
          res: (res: { statusCode: number }) => ({ status: res.statusCode }),
        },
      },
    ),
    bodyLimit: config.bodyLimit,
    requestIdHeader: 'x-request-id',
    return503OnClosing: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  }) as unknown as FastifyInstance;
  installErrorHandler(fastify);
  // JSON only: a text/plain body is refused as such (415), not parsed into a string that then fails validation.
  fastify.removeContentTypeParser('text/plain');
  let shuttingDown = false;
  fastify.addHook('onRequest', async () => {
    if (shuttingDown) throw new FaasError('SHUTTING_DOWN', 'the server is shutting down; retry against another server or after it restarts');
  });
  // A keep-alive connection whose request finishes during shutdown would hold close() open.
  fastify.addHook('onSend', async (_request, reply) => {
    if (shuttingDown) void reply.header('connection', 'close');
  });
  // POST routes whose body is all optional accept an empty body as {}.
  fastify.addHook('preValidation', async (request) => {
    if (request.method === 'POST' && request.body === undefined) request.body = {};
  });
  await fastify.register(fastifySwagger, {
    openapi: {
      info: { title: 'faas executor API', version: VERSION, description: 'Sandboxed instances and streaming executions. See docs/api.md.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await fastify.register(fastifyWebsocket, { options: { maxPayload: 1024 * 1024 } });
  if (config.corsOrigins.length > 0) {
    // Browsers send no key with a preflight: CORS answers before auth, and only for listed origins.
    await fastify.register(fastifyCors, {
      origin: config.corsOrigins.includes('*') ? true : config.corsOrigins,
      methods: ['GET', 'POST', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'last-event-id', 'x-request-id'],
      maxAge: 600,
    });
  }
  installAuth(fastify, deps.apiKey);
  fastify.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => fastify.swagger());
  await fastify.register(systemRoutes(services));
  await fastify.register(executeRoutes(services));
  await fastify.register(instanceRoutes(services));
  await fastify.register(executionRoutes(services));
  await fastify.register(streamRoutes(services));
  await fastify.register(snapshotRoutes(services));
  await fastify.register(modeRoutes(services));
  await fastify.register(syncRoutes(services));
  await fastify.register(readinessRoutes(services));
  await fastify.register(sshRoutes(services));
  await fastify.register(portRoutes(services));
  await fastify.register(environmentRoutes(services));
  await fastify.register(sessionRoutes(services));

  // Lookups already skip expired results; this reclaims their space (off the request path).
  const purge = async () => {
    try {
      const removed = await cache.purgeExpired();
      if (removed > 0) logger.info({ removed }, 'expired cached results removed');
    } catch (err) {
      logger.error({ err }, 'purging the result cache failed');
    }
  };
  const purgeTimer = setInterval(() => void purge(), CACHE_PURGE_INTERVAL_MS);
  purgeTimer.unref();
  void purge();

  let closed: Promise<void> | undefined;
  return {
    fastify,
    services,
    sshGateway,
    close() {
      closed ??= (async () => {
        shuttingDown = true;
        clearInterval(purgeTimer);
        // Readiness waits end now (SHUTTING_DOWN), not when their wait_timeout_ms passes.
        readiness.close();
        await sshKeys.stop();
        // No new SSH logins, and sessions end before the instances they run in.
        await sshGateway?.close();
        // Stop listening, then end the work in-flight requests wait on, then let them finish.
        const closing = fastify.close();
        executions.interruptAll();
        await sessions.close();
        // The pool stops refilling and deletes its ready instances; handed-out ones go below.
        await pool.close();
        await instances.shutdown((id) => executions.isEphemeralInstance(id));
        await executions.drain();
        await sessions.drain();
        await execute.drain();
        await closing;
        await catalog.close();
        await sync.close();
        await deps.runtime.close();
        await deps.store.close();
      })();
      return closed;
    },
  };
}

/**
 * The SSH gateway (not listening yet), or undefined when turned off. Its host key is created
 * here, on first start, so the fingerprint exists before any client can ask for it.
 */
function createSshGateway(deps: Dependencies, authority: SshAuthority, config: ExecutorConfig, instances: InstanceService, logger: Logger, metrics: Metrics): SshGateway | undefined {
  if (config.sshPort === null) return undefined;
  const access: InstanceAccess = {
    instanceEnv: async (id) => (await instances.requireRunning(id)).envVars,
    execInteractive: (id, spec) => deps.runtime.execInteractive(id, spec),
    connect: (id, port, options) => deps.runtime.connect(id, port, options),
  };
  const gateway = new SshGateway({
    host: config.sshHost ?? config.host,
    port: config.sshPort,
    hostKey: loadOrCreateHostKey(config.dataDir),
    authority,
    access,
    logger: logger.child({ component: 'ssh-gateway' }),
    onLogin: (success) => metrics.sshLogins.inc({ result: success ? 'ok' : 'failed' }),
    onConnectionCount: (open) => metrics.sshConnections.set(open),
  });
  // A stopped, dead or deleted instance takes its SSH connections with it.
  instances.onInstanceEnd((id, reason) => gateway.endInstance(id, reason));
  return gateway;
}
