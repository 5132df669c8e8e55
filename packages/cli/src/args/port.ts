/**
 * A TCP port on the command line: digits only, 1..65535.
 */
import { InvalidArgumentError } from 'commander';

/**
 * Commander parser for a port argument.
 *
 * @example
 * parsePort('8000'); // 8000
 * parsePort('0');    // throws InvalidArgumentError (exit code 2)
 */
export function parsePort(value: string): number {
  const port = /^[0-9]{1,5}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new InvalidArgumentError(`expected a port in 1..65535, got "${value}"`);
  return port;
}
