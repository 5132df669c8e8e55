import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';
import { formatDeadline } from '../../output/session-format.ts';

/** `faas session heartbeat ID`: one heartbeat (for scripts that keep a session alive themselves). */
export function registerSessionHeartbeat(session: Command): void {
  session
    .command('heartbeat')
    .summary('send one heartbeat (resets the idle timeout)')
    .argument('<id>', 'session id (sess-...) or the id of its execution')
    .option('--json', 'print the answer as JSON')
    .action(async (id: string, options: { json?: boolean }, cmd: Command) => {
      const beat = await createClient(cmd).sendHeartbeat(id);
      process.stdout.write(options.json ? `${JSON.stringify(beat, null, 2)}\n` : `${beat.state}, deadline ${formatDeadline(beat.deadline)}\n`);
    });
}
