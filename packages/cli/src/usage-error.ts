/**
 * A mistake in how the CLI was called that commander itself cannot see (found inside an
 * action). Reported as `error: <message>` with exit code 2, like commander's own usage errors.
 *
 * @example
 * throw new UsageError('nothing to run: give a command after --');
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
