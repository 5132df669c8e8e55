/**
 * Durations on the command line: `500` (milliseconds), or a number with a unit: `ms`, `s`,
 * `m`, `h`, `d` (`90s`, `30d`, `1.5h`). The API takes integer milliseconds.
 */
import { InvalidArgumentError } from 'commander';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Commander parser for a duration >= 0, in milliseconds.
 *
 * @example
 * parseDuration('30d'); // 2_592_000_000
 * parseDuration('250'); // 250
 */
export function parseDuration(value: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (match === null) throw new InvalidArgumentError(`expected a duration like 500, 90s, 10m, 12h or 30d, got "${value}"`);
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] ?? 'ms']!);
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`duration "${value}" is too large`);
  return ms;
}
