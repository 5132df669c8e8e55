import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';
import { formatDiff } from '../../output/snapshot-format.ts';

/** `faas snapshot diff FROM TO`: `+ path (size)`, `- path`, `M path (changes)`, a summary. */
export function registerSnapshotDiff(snapshot: Command): void {
  snapshot
    .command('diff')
    .summary('paths added, removed and modified between two snapshots')
    .argument('<from>', 'snapshot id or content hash')
    .argument('<to>', 'snapshot id or content hash')
    .option('--json', 'print the diff as JSON')
    .action(async (from: string, to: string, options: { json?: boolean }, cmd: Command) => {
      const diff = await createClient(cmd).diffSnapshots(from, to);
      process.stdout.write(options.json ? `${JSON.stringify(diff, null, 2)}\n` : formatDiff(diff));
    });
}
