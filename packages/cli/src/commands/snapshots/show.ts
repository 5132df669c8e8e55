import type { Command } from 'commander';
import { createClient } from '../../cli-context.ts';
import { formatSnapshot } from '../../output/snapshot-format.ts';

/** `faas snapshot show REF`: one snapshot, field by field (or as JSON). */
export function registerSnapshotShow(snapshot: Command): void {
  snapshot
    .command('show')
    .summary('show a snapshot')
    .argument('<ref>', 'snapshot id (snap-...) or content hash')
    .option('--json', 'print the snapshot as JSON (env var values included)')
    .action(async (ref: string, options: { json?: boolean }, cmd: Command) => {
      const found = await createClient(cmd).getSnapshot(ref);
      process.stdout.write(options.json ? `${JSON.stringify(found, null, 2)}\n` : formatSnapshot(found));
    });
}
