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
}

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
  };
  return { ...base, ...overrides, dataDir: resolve(overrides.dataDir ?? base.dataDir), defaults: { ...base.defaults, ...overrides.defaults }, maxima: { ...base.maxima, ...overrides.maxima } };
}

function defaultUidBase(dataDir: string): number {
  const slot = createHash('sha256').update(dataDir).digest().readUInt8(0);
  return 1_000_000 + slot * 65_536;
}
