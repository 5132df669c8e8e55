import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';
import { formatSession } from '../../output/session-format.ts';

/** `faas session status ID`: state, deadline (absolute and remaining), last heartbeat, checkpoints. */
export function registerSessionStatus(session: Command): void {
  session
    .command('status')
    .summary("show a session's state, deadline, last heartbeat and checkpoints")
    .argument('<id>', 'session id (sess-...) or the id of its execution')
    .option('--json', 'print the session as JSON')
    .action(async (id: string, options: { json?: boolean }, cmd: Command) => {
      const found = await createClient(cmd).getSession(id);
      process.stdout.write(options.json ? `${JSON.stringify(found, null, 2)}\n` : formatSession(found));
    });
}
