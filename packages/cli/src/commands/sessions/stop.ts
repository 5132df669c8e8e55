import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';

/** `faas session stop ID`: ends a session gracefully and prints how it ended. */
export function registerSessionStop(session: Command): void {
  session
    .command('stop')
    .summary('end a session: warning, final checkpoint, SIGTERM, SIGKILL after the grace period')
    .argument('<id>', 'session id (sess-...) or the id of its execution')
    .option('--json', 'print the session as JSON')
    .action(async (id: string, options: { json?: boolean }, cmd: Command) => {
      const stopped = await createClient(cmd).stopSession(id);
      const last = stopped.checkpoints.at(-1);
      process.stdout.write(
        options.json
          ? `${JSON.stringify(stopped, null, 2)}\n`
          : `${stopped.id} ${stopped.state}${stopped.stateReason === null ? '' : ` (${stopped.stateReason})`}${last === undefined ? '' : `, last checkpoint ${last.id}`}\n`,
      );
    });
}
