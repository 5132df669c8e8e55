/**
 * Argument parsers shared by the commands: `-e K=V`, positive numbers, and the rule that
 * decides whether the words after `--` are a shell string or an argv.
 */
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../usage-error.ts';

const ENV_VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Commander collector for a repeatable `-e K=V`: splits at the first "=", so the value may
 * itself contain "=" (`-e URL=a=b`), and may be empty (`-e EMPTY=`).
 *
 * @example
 * parseEnvVar('A=1', parseEnvVar('B=x=y', {})); // { B: 'x=y', A: '1' }
 */
export function parseEnvVar(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const equals = value.indexOf('=');
  if (equals === -1) throw new InvalidArgumentError(`expected NAME=VALUE, got "${value}"`);
  const name = value.slice(0, equals);
  if (!ENV_VAR_NAME.test(name)) throw new InvalidArgumentError(`"${name}" is not a valid environment variable name`);
  return { ...previous, [name]: value.slice(equals + 1) };
}

/**
 * Commander collector for a repeatable `--meta KEY=VALUE` label: splits at the first "=", the
 * key must not be empty, the value may be.
 *
 * @example
 * parseMetadata('step=build', parseMetadata('note=a=b', {})); // { note: 'a=b', step: 'build' }
 */
export function parseMetadata(value: string, previous: Record<string, string> = {}): Record<string, string> {
  const equals = value.indexOf('=');
  if (equals < 1) throw new InvalidArgumentError(`expected KEY=VALUE, got "${value}"`);
  return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
}

/**
 * Commander parser for a whole number >= 1 (milliseconds, MiB, pids).
 *
 * @example
 * parsePositiveInteger('500'); // 500
 */
export function parsePositiveInteger(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`expected a whole number of at least 1, got "${value}"`);
  return Number(value);
}

/**
 * Commander parser for a whole number >= 0 (a sequence number).
 *
 * @example
 * parseNonNegativeInteger('0'); // 0
 */
export function parseNonNegativeInteger(value: string): number {
  if (!/^[0-9]+$/.test(value)) throw new InvalidArgumentError(`expected a whole number, got "${value}"`);
  return Number(value);
}

/**
 * Commander parser for a number > 0 (CPU cores, e.g. 0.5).
 *
 * @example
 * parsePositiveNumber('0.5'); // 0.5
 */
export function parsePositiveNumber(value: string): number {
  const number = Number(value);
  if (value.trim() === '' || !Number.isFinite(number) || number <= 0) throw new InvalidArgumentError(`expected a number above 0, got "${value}"`);
  return number;
}

/** What to run: a shell string (`code`) or an argv (`command`). */
export type RunTarget = { code: string } | { command: string[] };

/**
 * The words after `--`: a single word containing whitespace is a shell string, run by sh
 * (`faas exec -- 'echo hi | tr a-z A-Z'`); anything else is an argv, run without a shell
 * (`faas exec -- ls -la`, `faas exec -- date`).
 *
 * @example
 * toRunTarget(['echo hi | wc -c']); // { code: 'echo hi | wc -c' }
 * toRunTarget(['ls', '-la']);       // { command: ['ls', '-la'] }
 */
export function toRunTarget(words: string[]): RunTarget {
  if (words.length === 0) throw new UsageError('nothing to run: give a command after --');
  const [only] = words;
  if (words.length === 1 && only !== undefined && /\s/.test(only)) return { code: only };
  return { command: words };
}
