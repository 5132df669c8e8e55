/**
 * The per-instance faces of the client's resources (STYLE.md: `instance.ssh`, `instance.ports`,
 * `instance.readiness`, `instance.sessions`): the same API modules the flat
 * `FaaSPlatformClient` methods call, with the instance id bound.
 */
import type { PortsApi } from './ports-api.ts';
import type { PortFetchInit, ExposePortOptions, ExposedPort } from './port-types.ts';
import type { ReadinessApi } from './readiness-api.ts';
import type { ReadinessConfig, ReadinessStatus, WaitForReadyOptions } from './readiness-types.ts';
import type { Session } from './session-handle.ts';
import type { LongRunningOptions, LongRunningRequest } from './session-types.ts';
import type { SshApi } from './ssh-api.ts';
import type { RotateSSHKeyOptions, SshAccessKey, SshAuditEvent, SshAuditOptions, SshKey } from './ssh-types.ts';

/** What the sub-clients call, supplied by FaaSPlatformClient. */
export interface InstanceResourceApis {
  ssh: SshApi;
  ports: PortsApi;
  readiness: ReadinessApi;
  startSession(request: LongRunningRequest, options: LongRunningOptions): Promise<Session>;
}

/**
 * SSH keys of one instance (as `client.rotateSSHKey(id, ...)` and the rest).
 *
 * @example
 * const key = await instance.ssh.rotate({ algorithm: 'ed25519' });
 */
export class InstanceSsh {
  constructor(
    private readonly apis: InstanceResourceApis,
    private readonly instanceId: string,
  ) {}

  rotate(options: RotateSSHKeyOptions = {}): Promise<SshAccessKey> {
    return this.apis.ssh.rotate(this.instanceId, options);
  }

  current(): Promise<SshAccessKey> {
    return this.apis.ssh.current(this.instanceId);
  }

  list(): Promise<SshKey[]> {
    return this.apis.ssh.list(this.instanceId);
  }

  revoke(keyId: string): Promise<SshKey> {
    return this.apis.ssh.revoke(this.instanceId, keyId);
  }

  audit(options: SshAuditOptions = {}): Promise<SshAuditEvent[]> {
    return this.apis.ssh.audit(this.instanceId, options);
  }
}

/**
 * Ports of one instance: exposure and requests through the proxy.
 *
 * @example
 * const { url } = await instance.ports.expose(8000);
 * const res = await instance.ports.fetch(8000, '/health');
 */
export class InstancePorts {
  constructor(
    private readonly apis: InstanceResourceApis,
    private readonly instanceId: string,
  ) {}

  expose(port: number, options: ExposePortOptions = {}): Promise<ExposedPort> {
    return this.apis.ports.expose(this.instanceId, port, options);
  }

  unexpose(port: number): Promise<void> {
    return this.apis.ports.unexpose(this.instanceId, port);
  }

  list(): Promise<ExposedPort[]> {
    return this.apis.ports.list(this.instanceId);
  }

  fetch(port: number, path = '/', init: PortFetchInit = {}): Promise<Response> {
    return this.apis.ports.fetch(this.instanceId, port, path, init);
  }
}

/**
 * Readiness of one instance.
 *
 * @example
 * await instance.readiness.waitForReady({ probes: [{ type: 'http', port: 8000, path: '/health' }], timeout: 30_000 });
 */
export class InstanceReadiness {
  constructor(
    private readonly apis: InstanceResourceApis,
    private readonly instanceId: string,
  ) {}

  check(config: ReadinessConfig): Promise<ReadinessStatus> {
    return this.apis.readiness.check(this.instanceId, config);
  }

  waitForReady(options: WaitForReadyOptions): Promise<ReadinessStatus> {
    return this.apis.readiness.wait(this.instanceId, options);
  }
}

/**
 * Long-running sessions in one instance.
 *
 * @example
 * const session = await instance.sessions.start({ command: ['./serve'] }, { maxDuration: 3_600_000, heartbeatInterval: 30_000 });
 */
export class InstanceSessions {
  constructor(
    private readonly apis: InstanceResourceApis,
    private readonly instanceId: string,
  ) {}

  start(request: Omit<LongRunningRequest, 'instanceId'>, options: LongRunningOptions): Promise<Session> {
    return this.apis.startSession({ ...request, instanceId: this.instanceId }, options);
  }
}
