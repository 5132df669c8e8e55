import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';
import { formatLineage } from '../../output/snapshot-format.ts';

/** `faas snapshot lineage REF`: ancestors above, the snapshot marked `*`, descendants indented. */
export function registerSnapshotLineage(snapshot: Command): void {
  snapshot
    .command('lineage')
    .summary('ancestors and descendants of a snapshot, as a tree')
    .argument('<ref>', 'snapshot id or content hash')
    .option('--json', 'print the lineage as JSON')
    .action(async (ref: string, options: { json?: boolean }, cmd: Command) => {
      const lineage = await createClient(cmd).snapshotLineage(ref);
      process.stdout.write(options.json ? `${JSON.stringify(lineage, null, 2)}\n` : formatLineage(lineage));
    });
}
