import { isIP } from 'node:net';
import { FaasError, MAX_LOG_PATTERN_LENGTH, PROBE_TYPES, type ProbeType, type ReadinessProbe, type ReadinessRequest } from '@faas/protocol';
import { checkRootedPath } from '../../runtime/rooted-fs.ts';

/** Defaults of the settings a request leaves out (docs/readiness.md). */
export const READINESS_DEFAULTS = {
  initialDelayMs: 0,
  periodMs: 500,
  timeoutMs: 1000,
  successThreshold: 1,
  failureThreshold: 3,
  waitTimeoutMs: 30_000,
} as const;

export type LogStream = 'stdout' | 'stderr' | 'both';

export type ProbeSpec =
  | { type: 'http'; timeoutMs: number; host: string; port: number; path: string; expectedStatus?: readonly number[]; expectedBody?: string }
  | { type: 'tcp'; timeoutMs: number; host: string; port: number }
  | { type: 'command'; timeoutMs: number; argv: readonly string[] }
  /** `path` is relative to the instance's root ("ready" for "/ready"); `shown` is as the client wrote it. */
  | { type: 'file'; timeoutMs: number; path: string; shown: string; nonEmpty: boolean }
  | { type: 'log'; timeoutMs: number; executionId: string; pattern: RegExp; stream: LogStream };

/** Kubernetes' probe settings, in milliseconds. */
export interface ReadinessSettings {
  initialDelayMs: number;
  periodMs: number;
  /** Timeout of probes that set none. */
  timeoutMs: number;
  successThreshold: number;
  failureThreshold: number;
}

export interface ReadinessConfig extends ReadinessSettings {
  probes: ProbeSpec[];
  wait: boolean;
  waitTimeoutMs: number;
  stopOnFailure: boolean;
}

/** Fields each type takes besides `type` and `timeout_ms`; any other given field is a mistake. */
const FIELDS: Record<ProbeType, readonly (keyof ReadinessProbe)[]> = {
  http: ['port', 'host', 'path', 'expected_status', 'expected_body'],
  tcp: ['port', 'host'],
  command: ['command', 'code'],
  file: ['path', 'non_empty'],
  log: ['execution_id', 'pattern', 'stream'],
};

/** Printable ASCII without space: what may go into a request line unescaped. */
const HTTP_PATH = /^\/[\x21-\x7e]*$/;

function invalid(index: number, type: string, field: string, message: string): never {
  const path = `/probes/${index}${field === '' ? '' : `/${field}`}`;
  return fail(index, type, field, path, message);
}

function fail(index: number, type: string, field: string, path: string, message: string): never {
  throw new FaasError('INVALID_PROBE', `probe ${index} (${type}): ${field === '' ? '' : `${field} `}${message}`, { index, type, field, errors: [{ path, message }] });
}

/**
 * The request as settings and probe specs with every default filled in. The schema has checked
 * JSON types and the ranges of the settings; this checks what each probe type needs and takes.
 * Throws INVALID_PROBE naming the first probe and field at fault.
 */
export function parseReadinessRequest(body: ReadinessRequest): ReadinessConfig {
  const timeoutMs = body.timeout_ms ?? READINESS_DEFAULTS.timeoutMs;
  return {
    initialDelayMs: body.initial_delay_ms ?? READINESS_DEFAULTS.initialDelayMs,
    periodMs: body.period_ms ?? READINESS_DEFAULTS.periodMs,
    timeoutMs,
    successThreshold: body.success_threshold ?? READINESS_DEFAULTS.successThreshold,
    failureThreshold: body.failure_threshold ?? READINESS_DEFAULTS.failureThreshold,
    wait: body.wait ?? false,
    waitTimeoutMs: body.wait_timeout_ms ?? READINESS_DEFAULTS.waitTimeoutMs,
    stopOnFailure: body.stop_on_failure ?? false,
    probes: body.probes.map((probe, index) => parseProbe(probe, index, timeoutMs)),
  };
}

export function parseProbe(probe: ReadinessProbe, index: number, defaultTimeoutMs: number): ProbeSpec {
  const type = probe.type;
  if (!(PROBE_TYPES as readonly string[]).includes(type)) invalid(index, type, 'type', `is not a probe type: use one of ${PROBE_TYPES.join(', ')}`);
  const t = type as ProbeType;
  for (const key of Object.keys(probe) as (keyof ReadinessProbe)[]) {
    if (key === 'type' || key === 'timeout_ms' || probe[key] === undefined) continue;
    if (!FIELDS[t].includes(key)) invalid(index, t, key, `does not apply to ${t} probes (they take ${FIELDS[t].join(', ')})`);
  }
  const timeoutMs = probe.timeout_ms ?? defaultTimeoutMs;
  switch (t) {
    case 'http':
    case 'tcp': {
      const port = probe.port;
      if (port === undefined) invalid(index, t, 'port', 'is required');
      if (port < 1 || port > 65_535) invalid(index, t, 'port', `must be in 1..65535, got ${port}`);
      const host = probe.host ?? '127.0.0.1';
      if (host !== 'localhost' && isIP(host) === 0) invalid(index, t, 'host', `must be an IP address inside the instance or "localhost", got ${JSON.stringify(host)}`);
      if (t === 'tcp') return { type: t, timeoutMs, host, port };
      const path = probe.path ?? '/';
      if (!HTTP_PATH.test(path)) invalid(index, t, 'path', 'must start with "/" and hold only printable ASCII without spaces (percent-encode the rest)');
      for (const [i, status] of (probe.expected_status ?? []).entries()) {
        if (status < 100 || status > 599) fail(index, t, 'expected_status', `/probes/${index}/expected_status/${i}`, `must be HTTP statuses (100..599), got ${status}`);
      }
      return { type: t, timeoutMs, host, port, path, expectedStatus: probe.expected_status, expectedBody: probe.expected_body };
    }
    case 'command': {
      if ((probe.command === undefined) === (probe.code === undefined)) invalid(index, t, 'command', 'or code is required, not both');
      return { type: t, timeoutMs, argv: probe.command ?? ['/bin/sh', '-c', probe.code!] };
    }
    case 'file': {
      const shown = probe.path;
      if (shown === undefined) invalid(index, t, 'path', 'is required');
      if (!shown.startsWith('/')) invalid(index, t, 'path', `must be absolute, got ${JSON.stringify(shown)}`);
      const rel = shown.replace(/^\/+/, '').replace(/\/+$/, '');
      if (rel === '') invalid(index, t, 'path', 'must name something below "/"');
      try {
        checkRootedPath(rel);
      } catch (err) {
        invalid(index, t, 'path', `is not a plain path (${(err as Error).message})`);
      }
      return { type: t, timeoutMs, path: rel, shown, nonEmpty: probe.non_empty ?? false };
    }
    case 'log': {
      if (probe.execution_id === undefined) invalid(index, t, 'execution_id', 'is required');
      const source = probe.pattern;
      if (source === undefined) invalid(index, t, 'pattern', 'is required');
      if (source.length === 0 || source.length > MAX_LOG_PATTERN_LENGTH) invalid(index, t, 'pattern', `must be 1..${MAX_LOG_PATTERN_LENGTH} characters, got ${source.length}`);
      let pattern: RegExp;
      try {
        pattern = new RegExp(source);
      } catch (err) {
        invalid(index, t, 'pattern', `is not a valid regular expression: ${(err as Error).message}`);
      }
      const stream = probe.stream ?? 'both';
      if (stream !== 'stdout' && stream !== 'stderr' && stream !== 'both') invalid(index, t, 'stream', `must be stdout, stderr or both, got ${JSON.stringify(stream)}`);
      return { type: t, timeoutMs, executionId: probe.execution_id, pattern, stream };
    }
  }
}
