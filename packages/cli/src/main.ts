/**
 * Entry point of `faas` (bin/faas.js loads it): runs the command, then exits with its code once
 * stdout and stderr are flushed. Exiting explicitly matters: an idle keep-alive connection of
 * fetch must not keep a finished command alive.
 */
import { runCli } from './program.ts';

function flush(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}

const code = await runCli(process.argv);
await Promise.all([flush(process.stdout), flush(process.stderr)]);
process.exit(code);
