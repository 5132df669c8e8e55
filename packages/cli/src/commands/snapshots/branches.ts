import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';
import { formatTable } from '../../output/table.ts';
import { instanceRow } from '../instances/ls.ts';

/** `faas snapshot branches [REF]`: the instances made from a snapshot (or from any), as `instances ls` shows them. */
export function registerSnapshotBranches(snapshot: Command): void {
  snapshot
    .command('branches')
    .summary('list the instances restored or branched from a snapshot')
    .argument('[ref]', 'snapshot id or content hash; without it, instances made from any snapshot')
    .option('--json', 'print the instances as JSON')
    .action(async (ref: string | undefined, options: { json?: boolean }, cmd: Command) => {
      const { branches } = await createClient(cmd).listBranches(ref);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(branches, null, 2)}\n`);
        return;
      }
      process.stdout.write(formatTable(['ID', 'STATE', 'ENV', 'CREATED', 'LIMITS', 'SNAPSHOT'], branches.map((instance) => [...instanceRow(instance), instance.sourceSnapshotId ?? '-'])));
    });
}
