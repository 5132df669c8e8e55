import { cpus } from 'node:os';
import { hostname } from 'node:os';
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
  /** Host uids given to instances: [uidBase, uidBase + uidCount). @default 200000, 65536 */
  uidBase: number;
  uidCount: number;
}

export function defaultConfig(overrides: Partial<ExecutorConfig> = {}): ExecutorConfig {
  const base: ExecutorConfig = {
    dataDir: resolve('.faas'),
    host: '127.0.0.1',
    port: 8080,
    logLevel: 'info',
    bodyLimit: 10 * 1024 * 1024,
    nodeId: hostname(),
    defaults: { timeoutMs: 60_000, memoryMb: 512, cpuCores: 1, pidsMax: 512 },
    maxima: { timeoutMs: 24 * 3600_000, memoryMb: 65_536, cpuCores: cpus().length, pidsMax: 65_536 },
    maxInstances: 256,
    maxOutputBytes: 16 * 1024 * 1024,
    uidBase: 200_000,
    uidCount: 65_536,
  };
  return { ...base, ...overrides, dataDir: resolve(overrides.dataDir ?? base.dataDir), defaults: { ...base.defaults, ...overrides.defaults }, maxima: { ...base.maxima, ...overrides.maxima } };
}
