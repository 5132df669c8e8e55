import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';

/** `faas session checkpoint ID`: takes a checkpoint now and prints its snapshot id. */
export function registerSessionCheckpoint(session: Command): void {
  session
    .command('checkpoint')
    .summary("snapshot a session's instance now and print the snapshot id")
    .argument('<id>', 'session id (sess-...) or the id of its execution')
    .option('--json', 'print the checkpoint as JSON')
    .action(async (id: string, options: { json?: boolean }, cmd: Command) => {
      const checkpoint = await createClient(cmd).checkpointSession(id);
      process.stdout.write(options.json ? `${JSON.stringify(checkpoint, null, 2)}\n` : `${checkpoint.id}\n`);
    });
}
