/**
 * Client configuration and where each setting comes from when the caller leaves it out:
 * the explicit option, then the environment (only where there is one: `process.env` is read
 * through `globalThis` so a browser bundle neither crashes nor needs a polyfill), then the
 * default.
 */
import { DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS } from './http-transport.ts';

/**
 * Options of `new FaaSPlatformClient()`.
 *
 * @example
 * const client = new FaaSPlatformClient({ platformUrl: 'http://10.0.0.5:8080', apiKey: 'secret', timeout: 10_000 });
 */
export interface FaaSPlatformClientOptions {
  /** Server base URL. @default process.env.FAAS_URL, else 'http://127.0.0.1:8080' */
  platformUrl?: string;
  /** API key sent as a bearer token. @default process.env.FAAS_API_KEY, else none */
  apiKey?: string;
  /**
   * Client timeout per request in ms. Calls that wait for an execution get at least its own
   * timeout plus 10 s, and no client timeout when the execution's timeout is unknown.
   * @default 30000
   */
  timeout?: number;
  /** Retries of idempotent requests after a connection failure or a 502/503/504. @default 3 */
  maxRetries?: number;
  /** fetch implementation, e.g. to add a proxy or for tests. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Settings after defaults and environment fallbacks were applied.
 *
 * @example
 * const { platformUrl, apiKey } = resolveClientOptions({ timeout: 5000 });
 */
export interface ResolvedClientOptions {
  platformUrl: string;
  apiKey: string | undefined;
  timeout: number;
  maxRetries: number;
  fetch: typeof fetch | undefined;
}

/**
 * Where a client connects when neither `platformUrl` nor FAAS_URL says otherwise: a local
 * `faas serve` with its defaults.
 *
 * @default 'http://127.0.0.1:8080'
 * @example
 * new FaaSPlatformClient().platformUrl === DEFAULT_PLATFORM_URL; // when FAAS_URL is unset
 */
export const DEFAULT_PLATFORM_URL = 'http://127.0.0.1:8080';

type Environment = Record<string, string | undefined>;

/** `process.env` when this runtime has one (Node, Deno's Node mode, Bun), else an empty object. */
function runtimeEnvironment(): Environment {
  const maybeProcess = (globalThis as { process?: { env?: Environment } }).process;
  return maybeProcess?.env ?? {};
}

/** Empty strings count as unset: `FAAS_URL= cmd` should not mean "connect to ''". */
function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Applies the fallbacks: option, then FAAS_URL / FAAS_API_KEY, then the defaults.
 *
 * @example
 * resolveClientOptions({}, { FAAS_URL: 'http://h:1' }).platformUrl; // "http://h:1"
 */
export function resolveClientOptions(options: FaaSPlatformClientOptions = {}, env: Environment = runtimeEnvironment()): ResolvedClientOptions {
  return {
    platformUrl: nonEmpty(options.platformUrl) ?? nonEmpty(env.FAAS_URL) ?? DEFAULT_PLATFORM_URL,
    apiKey: nonEmpty(options.apiKey) ?? nonEmpty(env.FAAS_API_KEY),
    timeout: options.timeout ?? DEFAULT_TIMEOUT_MS,
    maxRetries: options.maxRetries ?? DEFAULT_MAX_RETRIES,
    fetch: options.fetch,
  };
}
