/**
 * Readiness probes, SDK side (camelCase). The wire shapes and their meanings are in
 * docs/readiness.md; every duration is in milliseconds.
 */

/**
 * `GET path` on a port inside the instance (its own loopback included). Passes on a status in
 * `expectedStatus`, by default any of 200-399; redirects are not followed.
 *
 * @example
 * { type: 'http', port: 8000, path: '/health', expectedBody: 'ok' }
 */
export interface HttpProbe {
  type: 'http';
  port: number;
  /** @default '/' */
  path?: string;
  /** A loopback address or one of the instance's own. @default '127.0.0.1' */
  host?: string;
  /** @default any of 200-399 */
  expectedStatus?: number[];
  /** The body (its first 64 KiB) must contain this text. */
  expectedBody?: string;
  /** This probe's own timeout. @default the check's probeTimeoutMs */
  timeoutMs?: number;
}

/**
 * Passes when a TCP connection to the port inside the instance is established.
 *
 * @example
 * { type: 'tcp', port: 5432 }
 */
export interface TcpProbe {
  type: 'tcp';
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  timeoutMs?: number;
}

/**
 * Runs a process inside the instance; passes on exit 0. Give `command` (argv) or `code` (sh).
 *
 * @example
 * { type: 'command', code: 'pg_isready -q' }
 */
export type CommandProbe = { type: 'command'; timeoutMs?: number } & ({ command: string[]; code?: never } | { code: string; command?: never });

/**
 * Passes when the absolute path exists inside the instance (with `nonEmpty`: a file of at least
 * one byte, or a directory with an entry).
 *
 * @example
 * { type: 'file', path: '/workspace/ready', nonEmpty: true }
 */
export interface FileProbe {
  type: 'file';
  path: string;
  /** @default false */
  nonEmpty?: boolean;
  timeoutMs?: number;
}

/**
 * Passes once a line of an execution's output (of this instance) matches `pattern`. A RegExp
 * is sent as its source; flags cannot be sent (write `[Aa]` rather than /a/i).
 *
 * @example
 * { type: 'log', executionId: server.id, pattern: /listening on :\d+/ }
 */
export interface LogProbe {
  type: 'log';
  executionId: string;
  pattern: string | RegExp;
  /** @default 'both' */
  stream?: 'stdout' | 'stderr' | 'both';
  timeoutMs?: number;
}

export type ReadinessProbe = HttpProbe | TcpProbe | CommandProbe | FileProbe | LogProbe;

/**
 * A readiness check with Kubernetes' meanings (docs/readiness.md).
 *
 * @example
 * await client.checkReadiness(instance.id, { probes: [{ type: 'tcp', port: 5432 }], successThreshold: 2, periodMs: 100 });
 */
export interface ReadinessConfig {
  /** 1 to 16 probes; all must pass in one round. */
  probes: ReadinessProbe[];
  /** Before the first round. @default 0 */
  initialDelayMs?: number;
  /** Start to start of two rounds, at least 50. @default 500 */
  periodMs?: number;
  /** Timeout of every probe that sets none itself (the wire's `timeout_ms`). @default 1000 */
  probeTimeoutMs?: number;
  /** Consecutive passing rounds that make the instance ready. @default 1 */
  successThreshold?: number;
  /** Consecutive failing rounds that make it not ready. @default 3 */
  failureThreshold?: number;
}

/**
 * Options of `waitForReady`.
 *
 * @example
 * await client.waitForReady(id, { probes: [{ type: 'http', port: 8000, path: '/health' }], timeout: 60_000, periodMs: 100, onProbe: (r) => console.log(r.round, r.ok) });
 */
export interface WaitForReadyOptions extends ReadinessConfig {
  /** Give up after this long (the initial delay included); at most 600000. @default 30000 */
  timeout?: number;
  /** End (NOT_READY, `failed: true`) once failureThreshold consecutive rounds failed. @default false */
  stopOnFailure?: boolean;
  /** Called after every round, in order. */
  onProbe?: (round: ReadinessRound) => void;
  /** Aborting ends the wait (the promise rejects with the signal's reason) and the server stops checking. */
  signal?: AbortSignal;
}

/** What one probe saw in the last round. */
export interface ProbeResult {
  type: ReadinessProbe['type'];
  ok: boolean;
  latencyMs: number;
  message: string;
  /** This probe's most recent failure during the check, or null if it never failed. */
  lastFailure: string | null;
}

/** The result of a check or wait. */
export interface ReadinessStatus {
  ready: boolean;
  checksPerformed: number;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  /** When the last round ended (null when none ran). */
  lastCheck: Date | null;
  /** The last round's results, in the order of the probes given. */
  probes: ProbeResult[];
  message: string;
  timedOut: boolean;
  failed: boolean;
  elapsedMs: number;
}

/** One round of a wait, as `onProbe` receives it. */
export interface ReadinessRound {
  round: number;
  time: Date;
  /** Every probe passed in this round. */
  ok: boolean;
  /** Ready after this round (by the thresholds). */
  ready: boolean;
  consecutiveSuccesses: number;
  consecutiveFailures: number;
  probes: ProbeResult[];
}
