import type { Command } from 'commander';
import { parseDuration } from '../../args/duration.ts';
import { createClient } from '../../cli-context.ts';
import { formatDeadline } from '../../output/session-format.ts';

/** `faas session extend ID 30m`: moves the deadline later and prints the new one. */
export function registerSessionExtend(session: Command): void {
  session
    .command('extend')
    .summary("move a session's deadline later")
    .description('Move the deadline of a session later by DURATION. Refused (SESSION_EXTENSION_REFUSED) past the server\'s cap or the session\'s --max-extensions.')
    .argument('<id>', 'session id (sess-...) or the id of its execution')
    .argument('<duration>', 'how much later, e.g. 30m, 2h', parseDuration)
    .option('--json', 'print the session as JSON')
    .action(async (id: string, durationMs: number, options: { json?: boolean }, cmd: Command) => {
      const extended = await createClient(cmd).extendSession(id, durationMs);
      process.stdout.write(
        options.json ? `${JSON.stringify(extended, null, 2)}\n` : `deadline ${formatDeadline(extended.deadline)}, extension ${extended.extendedCount} of ${extended.maxExtensions}\n`,
      );
    });
}
