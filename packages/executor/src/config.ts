import { cpus } from 'node:os';
import { hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

/** Server settings, every one with a default; `faas serve` flags and FAAS_* variables fill them. */
export interface ExecutorConfig {
  /** @default "./.faas" */
  dataDir: string;
  /** @default "127.0.0.1" */
  host: string;
  /** @default 8080 */
  port: number;
  /** Taken from FAAS_API_KEY, else `<dataDir>/api-key`, else generated there. */
  apiKey?: string;
  /** @default "info" */
  logLevel: string;
  /**
   * Browser origins allowed to call the API cross-origin (CORS), e.g. ["https://app.example"];
   * "*" allows any. From FAAS_CORS_ORIGINS (comma-separated). @default none: same origin only
   */
  corsOrigins: string[];
  /** Largest request body in bytes. @default 10 MiB */
  bodyLimit: number;
  /** Identifies this executor node in records. @default the host name */
  nodeId: string;
  defaults: { timeoutMs: number; memoryMb: number; cpuCores: number; pidsMax: number };
  maxima: { timeoutMs: number; memoryMb: number; cpuCores: number; pidsMax: number };
  /** Instances alive at once (starting or running). @default 256 */
  maxInstances: number;
  /** Output kept per execution (both streams); the rest is discarded and flagged. @default 16 MiB */
  maxOutputBytes: number;
  /**
   * Host uids given to instances: [uidBase, uidBase + uidCount). The default base depends on
   * the data dir, so servers sharing a host rarely share sandbox uids.
   * @default 1_000_000 + 65_536 × (hash of dataDir mod 256), 65_536
   */
  uidBase: number;
  uidCount: number;
  /** `cached` mode: total size of stored results; least recently used go first. From FAAS_RESULT_CACHE_MAX_BYTES. @default 256 MiB */
  resultCacheMaxBytes: number;
  /** `cached` mode: larger results are not stored. From FAAS_RESULT_CACHE_MAX_ENTRY_BYTES. @default 8 MiB */
  resultCacheMaxEntryBytes: number;
  /** `cached` mode: a result is served for this long after it was stored. From FAAS_RESULT_CACHE_TTL_MS. @default 24 h */
  resultCacheTtlMs: number;
  /** SSH keys expire this long after issue unless a request asks otherwise. From FAAS_SSH_KEY_TTL_MS. @default 30 days */
  sshKeyTtlMs: number;
  /** Longest lifetime (and rotation overlap) a request may ask for. From FAAS_SSH_KEY_MAX_TTL_MS. @default 365 days */
  sshKeyMaxTtlMs: number;
  /** Live SSH keys per instance; issuing one more revokes the oldest (reason `evicted`). From FAAS_SSH_MAX_KEYS_PER_INSTANCE. @default 3 */
  sshMaxKeysPerInstance: number;
  /**
   * Server-generated keys get a successor this long before they expire (keys whose lifetime is
   * shorter are not rotated automatically). From FAAS_SSH_AUTO_ROTATE_BEFORE_MS. @default undefined: off
   */
  sshAutoRotateBeforeMs?: number;
  /**
   * Port of the SSH gateway; 0 picks a free one, null turns the gateway off. From FAAS_SSH_PORT
   * (where "off" or -1 turns it off). @default 2222
   */
  sshPort: number | null;
  /** Address the SSH gateway listens on (and tells clients to use). From FAAS_SSH_HOST. @default the HTTP `host` */
  sshHost?: string;
  /**
   * The port proxy gives up (UPSTREAM_TIMEOUT, 504) when the service inside the instance sends no
   * response headers this long after the request; a response that has started streams without
   * limit. From FAAS_PORT_PROXY_TIMEOUT_MS. @default 60000
   */
  portProxyTimeoutMs: number;
  /**
   * Longest a long-running session may last, extensions included (its cap is started_at + this).
   * From FAAS_SESSION_MAX_DURATION_MS. @default 24 h
   */
  sessionMaxDurationMs: number;
  /**
   * The sandbox backend: `bwrap` (namespaces, the default) or `vm` (QEMU machines whose running
   * memory can be snapshotted; see docs/vm.md). From FAAS_RUNTIME. @default "bwrap"
   */
  runtime: RuntimeName;
}

export const RUNTIME_NAMES = ['bwrap', 'vm'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

export function defaultConfig(overrides: Partial<ExecutorConfig> = {}): ExecutorConfig {
  const base: ExecutorConfig = {
    dataDir: resolve('.faas'),
    host: '127.0.0.1',
    port: 8080,
    logLevel: 'info',
    corsOrigins: (process.env.FAAS_CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    bodyLimit: 10 * 1024 * 1024,
    nodeId: hostname(),
    defaults: { timeoutMs: 60_000, memoryMb: 512, cpuCores: 1, pidsMax: 512 },
    maxima: { timeoutMs: 24 * 3600_000, memoryMb: 65_536, cpuCores: cpus().length, pidsMax: 65_536 },
    maxInstances: 256,
    maxOutputBytes: 16 * 1024 * 1024,
    uidBase: defaultUidBase(resolve(overrides.dataDir ?? '.faas')),
    uidCount: 65_536,
    resultCacheMaxBytes: envInteger('FAAS_RESULT_CACHE_MAX_BYTES', 256 * 1024 * 1024),
    resultCacheMaxEntryBytes: envInteger('FAAS_RESULT_CACHE_MAX_ENTRY_BYTES', 8 * 1024 * 1024),
    resultCacheTtlMs: envInteger('FAAS_RESULT_CACHE_TTL_MS', 24 * 3600_000),
    sshKeyTtlMs: envInteger('FAAS_SSH_KEY_TTL_MS', 30 * 86_400_000),
    sshKeyMaxTtlMs: envInteger('FAAS_SSH_KEY_MAX_TTL_MS', 365 * 86_400_000),
    sshMaxKeysPerInstance: envInteger('FAAS_SSH_MAX_KEYS_PER_INSTANCE', 3),
    sshAutoRotateBeforeMs: process.env.FAAS_SSH_AUTO_ROTATE_BEFORE_MS ? envInteger('FAAS_SSH_AUTO_ROTATE_BEFORE_MS', 0) : undefined,
    sshPort: envSshPort(),
    portProxyTimeoutMs: envInteger('FAAS_PORT_PROXY_TIMEOUT_MS', 60_000),
    sessionMaxDurationMs: envInteger('FAAS_SESSION_MAX_DURATION_MS', 24 * 3600_000),
    runtime: envRuntime(),
    ...(process.env.FAAS_SSH_HOST ? { sshHost: process.env.FAAS_SSH_HOST } : {}),
  };
  return { ...base, ...overrides, dataDir: resolve(overrides.dataDir ?? base.dataDir), defaults: { ...base.defaults, ...overrides.defaults }, maxima: { ...base.maxima, ...overrides.maxima } };
}

function defaultUidBase(dataDir: string): number {
  const slot = createHash('sha256').update(dataDir).digest().readUInt8(0);
  return 1_000_000 + slot * 65_536;
}

/** A non-negative integer from the environment variable `name`, else `fallback`; garbage is an error, not a silent default. */
function envInteger(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  return value;
}

/** FAAS_SSH_PORT: a port (0 = any free one), or "off" / -1 for no SSH gateway. @default 2222 */
function envSshPort(): number | null {
  const raw = process.env.FAAS_SSH_PORT?.trim();
  if (raw === 'off' || raw === '-1') return null;
  const port = envInteger('FAAS_SSH_PORT', 2222);
  if (port > 65_535) throw new RangeError(`FAAS_SSH_PORT must be a port (0-65535), -1 or "off", got ${JSON.stringify(raw)}`);
  return port;
}

/** FAAS_RUNTIME: bwrap or vm. @default "bwrap" */
function envRuntime(): RuntimeName {
  const raw = process.env.FAAS_RUNTIME?.trim();
  if (raw === undefined || raw === '') return 'bwrap';
  if (!(RUNTIME_NAMES as readonly string[]).includes(raw)) throw new RangeError(`FAAS_RUNTIME must be one of ${RUNTIME_NAMES.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as RuntimeName;
}
