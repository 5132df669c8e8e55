import type { Command } from 'commander';
import { createClient, EXIT_FAILURE, reportError } from '../../cli-context.ts';

/** `faas snapshot rm REF... [--cascade]`: prints every id deleted; one failure does not stop the others. */
export function registerSnapshotRm(snapshot: Command): void {
  snapshot
    .command('rm')
    .alias('delete')
    .summary('delete snapshots')
    .description(
      'Delete snapshots and print the ids deleted. A snapshot with child snapshots or live instances ' +
        'made from it is refused (SNAPSHOT_IN_USE) unless --cascade, which deletes those instances and ' +
        'every descendant too.',
    )
    .argument('<ref...>', 'snapshot ids or content hashes')
    .option('--cascade', 'also delete every descendant and the instances made from them')
    .action(async (refs: string[], options: { cascade?: boolean }, cmd: Command) => {
      const client = createClient(cmd);
      for (const ref of refs) {
        try {
          const deleted = await client.deleteSnapshot(ref, { cascade: options.cascade });
          process.stdout.write(deleted.map((id) => `${id}\n`).join(''));
        } catch (error) {
          reportError(error);
          process.exitCode = EXIT_FAILURE;
        }
      }
    });
}
