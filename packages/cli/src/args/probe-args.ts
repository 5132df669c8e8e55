/**
 * The probe options of `faas wait`, each repeatable: `--http [HOST]:PORT[/PATH]`,
 * `--tcp [HOST:]PORT`, `--cmd CODE`, `--file PATH`, `--log EXEC_ID:REGEX`.
 */
import { InvalidArgumentError } from 'commander';
import type { ReadinessProbe } from '@faas/sdk';

/** `[HOST]:PORT[/PATH]` (`:8000/health`, `127.0.0.1:8000`, `[::1]:80/`) or `PORT[/PATH]`; an `http://` prefix is allowed. */
const HTTP_SPEC = /^(?:http:\/\/)?(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)?:)?([0-9]{1,5})(\/\S*)?$/;
const TCP_SPEC = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?([0-9]{1,5})$/;

function port(text: string, spec: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new InvalidArgumentError(`port must be 1..65535, got ${text} in "${spec}"`);
  return n;
}

function host(text: string | undefined): string | undefined {
  if (text === undefined || text === '') return undefined;
  return text.startsWith('[') ? text.slice(1, -1) : text;
}

/**
 * @example
 * parseHttpProbe(':8000/health'); // { type: 'http', port: 8000, path: '/health' }
 */
export function parseHttpProbe(value: string): ReadinessProbe {
  const m = HTTP_SPEC.exec(value.trim());
  if (m === null) throw new InvalidArgumentError(`expected [HOST]:PORT[/PATH] such as :8000/health, got "${value}"`);
  const probe: ReadinessProbe = { type: 'http', port: port(m[2]!, value) };
  const h = host(m[1]);
  if (h !== undefined) probe.host = h;
  if (m[3] !== undefined) probe.path = m[3];
  return probe;
}

/**
 * @example
 * parseTcpProbe('5432'); // { type: 'tcp', port: 5432 }
 */
export function parseTcpProbe(value: string): ReadinessProbe {
  const m = TCP_SPEC.exec(value.trim().replace(/^:/, ''));
  if (m === null) throw new InvalidArgumentError(`expected [HOST:]PORT such as 5432, got "${value}"`);
  const probe: ReadinessProbe = { type: 'tcp', port: port(m[2]!, value) };
  const h = host(m[1]);
  if (h !== undefined) probe.host = h;
  return probe;
}

/**
 * `EXEC_ID:REGEX`, split at the first ":" (the regex may contain more).
 *
 * @example
 * parseLogProbe('exec-1:listening on :\\d+'); // { type: 'log', executionId: 'exec-1', pattern: 'listening on :\\d+' }
 */
export function parseLogProbe(value: string): ReadinessProbe {
  const colon = value.indexOf(':');
  if (colon < 1 || colon === value.length - 1) throw new InvalidArgumentError(`expected EXEC_ID:REGEX, got "${value}"`);
  return { type: 'log', executionId: value.slice(0, colon), pattern: value.slice(colon + 1) };
}

/** A short name for a probe in progress lines: `http :8000/health`, `tcp 5432`, `cmd 'test -f /ready'`. */
export function probeLabel(probe: ReadinessProbe): string {
  switch (probe.type) {
    case 'http':
      return `http ${probe.host ?? ''}:${probe.port}${probe.path ?? '/'}`;
    case 'tcp':
      return `tcp ${probe.host === undefined ? '' : `${probe.host}:`}${probe.port}`;
    case 'command':
      return `cmd ${JSON.stringify(probe.code ?? probe.command?.join(' '))}`;
    case 'file':
      return `file ${probe.path}`;
    case 'log':
      return `log ${probe.executionId}:${String(probe.pattern)}`;
  }
}

/** Commander collector: appends each parsed value. */
export function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}
